"""``evaluate`` and ``predict`` on files: load a fine-tuned model directory, read the task's
format (classification table, CoNLL, SQuAD JSON) with the training run's settings, and run the
task's prediction part (:class:`~bertkit.tasks.registry.TaskSpec` ``predict``). Loads the
model per call; a server keeps one loaded through :class:`bertkit.tasks.predictor.Predictor`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bertkit._fileio import write_json
from bertkit.errors import UsageError
from bertkit.tasks.parts import Records, Source
from bertkit.tasks.predictor import Predictor
from bertkit.tasks.registry import finetuned_spec
from bertkit.tasks.runfiles import write_jsonl

__all__ = ["evaluate", "predict"]


def _infer(task: str, model_dir: str | Path, path: str | Path | None, *, labelled: bool,
           texts: Sequence[str] | None = None, text_column: str | None = None,
           text_pair_column: str | None = None, label_column: str | None = None,
           batch_size: int = 32, device: str = "auto", max_length: int | None = None,
           quantize: str | None = None) -> Records:
    spec = finetuned_spec(task)
    loaded = Predictor.load(task, model_dir, device=device, batch_size=batch_size,
                            max_length=max_length, quantize=quantize)
    source = Source(Path(path) if path is not None else None, texts,
                    {"text_column": text_column, "text_pair_column": text_pair_column,
                     "label_column": label_column})
    return spec.predict(loaded, source, labelled)  # type: ignore[misc]


def evaluate(task: str, model: str | Path, data: str | Path, *,
             output: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """The task's metrics of a fine-tuned ``model`` on labelled ``data`` (same formats as
    training; column names default to the training run's). A label the model was not trained
    on is a :class:`DataFormatError` naming it and its line. ``output`` also writes the
    metrics JSON (atomically)."""
    metrics, _ = _infer(task, model, data, labelled=True, **options)
    assert metrics is not None
    if output is not None:
        write_json(output, metrics)
    return metrics


def predict(task: str, model: str | Path, data: str | Path | None = None, *,
            texts: Sequence[str] | None = None, output: str | Path | None = None,
            **options: Any) -> list[dict[str, Any]]:
    """Predictions of a fine-tuned ``model``: on a file (classification table, CoNLL words,
    SQuAD JSON) or on raw ``texts`` (classify; NER splits them at whitespace). ``output``
    writes them as JSONL, atomically."""
    if texts is None and data is None:
        raise UsageError("predict needs a data file or texts")
    if texts is not None and not finetuned_spec(task).reads_texts:
        raise UsageError(f"{task} prediction needs a file (QA: SQuAD-format questions with "
                         "contexts)")
    _, records = _infer(task, model, data, labelled=False, texts=texts, **options)
    if output is not None:
        write_jsonl(Path(output), records)
    return records
