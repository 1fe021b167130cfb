"""``evaluate`` and ``predict`` on files: load a fine-tuned model directory, read the task's
format (classification table, CoNLL, SQuAD JSON) with the training run's settings, and run the
shared windowed prediction of :mod:`bertkit.tasks.prediction`. Loads the model per call; a
server keeps one loaded through :class:`bertkit.tasks.predictor.Predictor`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bertkit._fileio import write_json
from bertkit.data.readers import (
    LabelMap,
    NerSentence,
    TextExample,
    read_classification,
    read_conll,
    read_squad,
)
from bertkit.errors import DataFormatError, UsageError
from bertkit.tasks.prediction import (
    Task,
    classify_run,
    load_for,
    model_label_kind,
    ner_run,
    qa_run,
)
from bertkit.tasks.runfiles import require_model_dir, write_jsonl
from bertkit.training.device import resolve_device

__all__ = ["evaluate", "predict"]

def _infer(task: str, model_dir: str | Path, path: str | Path | None, *, labelled: bool,
           texts: Sequence[str] | None = None, text_column: str | None = None,
           text_pair_column: str | None = None, label_column: str | None = None,
           batch_size: int = 32, device: str = "auto", max_length: int | None = None,
           ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    model_dir = require_model_dir(model_dir)
    model, tokenizer, run = load_for(task, model_dir)
    settings = run.get("finetune", {})
    length = max_length or settings.get("max_length") or tokenizer.model_max_length
    stride = settings.get("doc_stride")
    dev = resolve_device(device)
    if task == "classify":
        kind = model_label_kind(model, run)
        label_map = None if kind == "regression" else LabelMap.from_config(
            model.config.to_dict())  # type: ignore[operator]
        if texts is not None:
            examples = [TextExample(t, line=i + 1) for i, t in enumerate(texts)]
        else:
            examples = read_classification(
                path,  # type: ignore[arg-type]
                text_column=text_column or run.get("text_column", "text"),
                text_pair_column=text_pair_column or run.get("text_pair_column"),
                label_column=(label_column or run.get("label_column", "label")) if labelled
                else None,
                label_kind=kind,  # type: ignore[arg-type]
                label_separator=run.get("label_separator"))
        return classify_run(model, tokenizer, examples, kind, label_map, max_length=length,
                             doc_stride=stride, batch_size=batch_size,
                             aggregate=settings.get("aggregate", "mean"), device=dev,
                             labelled=labelled)
    if task == "ner":
        label_map = LabelMap.from_config(model.config.to_dict())  # type: ignore[operator]
        if texts is not None:
            sentences = [NerSentence(t.split(), None, None, i + 1) for i, t in enumerate(texts)]
        else:
            sentences = read_conll(path, has_tags=labelled)  # type: ignore[arg-type]
        if not sentences:
            raise DataFormatError("no sentences; expected CoNLL lines", path)
        return ner_run(model, tokenizer, sentences, label_map, max_length=length,
                        doc_stride=stride, batch_size=batch_size, device=dev,
                        labelled=labelled)
    data = read_squad(path)  # type: ignore[arg-type]
    metrics, records, _ = qa_run(
        model, tokenizer, data.examples, data.version, max_length=length,
        doc_stride=run.get("doc_stride", 128), batch_size=batch_size, device=dev,
        labelled=labelled, null_threshold=run.get("null_threshold", 0.0),
        max_answer_length=run.get("max_answer_length", 30))
    return metrics, records


def evaluate(task: Task, model: str | Path, data: str | Path, *,
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


def predict(task: Task, model: str | Path, data: str | Path | None = None, *,
            texts: Sequence[str] | None = None, output: str | Path | None = None,
            **options: Any) -> list[dict[str, Any]]:
    """Predictions of a fine-tuned ``model``: on a file (classification table, CoNLL words,
    SQuAD JSON) or on raw ``texts`` (classify; NER splits them at whitespace). ``output``
    writes them as JSONL, atomically."""
    if texts is None and data is None:
        raise UsageError("predict needs a data file or texts")
    if texts is not None and task == "qa":
        raise UsageError("QA prediction needs a SQuAD-format file (questions with contexts)")
    _, records = _infer(task, model, data, labelled=False, texts=texts, **options)
    if output is not None:
        write_jsonl(Path(output), records)
    return records
