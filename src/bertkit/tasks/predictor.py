"""A fine-tuned model loaded ONCE, predicting on in-memory inputs (for the server and notebooks).

:func:`bertkit.tasks.evaluation.predict` loads the model on every call and reads files; a server
answers thousands of small requests with one model. :class:`Predictor` keeps the model, its
tokenizer and the training run's settings (window length, stride, aggregation, labels, null
threshold) and runs the task's parts (:mod:`bertkit.tasks.parts`), the same windowed prediction
code as ``bertkit predict``:

* classification: window logits aggregated;
* NER on RAW text: each word from its max-context window, entities with character offsets into
  the text itself (``bertkit predict ner`` on stdin splits at whitespace instead);
* QA: n-best spans over windows with character offsets into the context, the run's null
  threshold for SQuAD 2.0 models.

The model may be any module that behaves like the task's bertkit class — e.g.
:class:`bertkit.export.runtime.OnnxRuntimeModel` to predict through ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bertkit.errors import UsageError
from bertkit.tasks import parts
from bertkit.tasks.prediction import family_class
from bertkit.tasks.registry import TaskSpec, finetuned_spec
from bertkit.tasks.runfiles import require_model_dir, run_config
from bertkit.tokenization import Tokenizer
from bertkit.training.device import resolve_device

__all__ = ["Predictor"]


@dataclass
class Predictor:
    """``task`` is a fine-tuned task of the registry (``"classify"``, ``"ner"``, ``"qa"``);
    ``run`` the run's ``run_config.json`` (``{}`` for a plain checkpoint: then the tokenizer's
    length and the defaults apply); ``window`` overrides the run's tokens per window."""

    task: str
    model: nn.Module
    tokenizer: Tokenizer
    run: dict[str, Any]
    device: torch.device
    batch_size: int = 32
    window: int | None = None

    @classmethod
    def load(cls, task: str, model_dir: str | Path, *, device: str = "auto",
             model: nn.Module | None = None, batch_size: int = 32,
             max_length: int | None = None, quantize: str | None = None) -> Predictor:
        """Load ``model_dir`` as the task's model class (in the checkpoint's own family), or
        use ``model`` (an ONNX stand-in) with the directory's tokenizer and run settings.
        ``quantize="int8"`` loads it with int8 layers, for the CPU (``from_pretrained``)."""
        spec = finetuned_spec(task)
        directory = require_model_dir(model_dir)
        target = resolve_device(device)
        if model is None:
            model = family_class(spec.model_class, directory).from_pretrained(
                directory, device=target, quantize=quantize)
        elif quantize is not None:
            raise UsageError(f"quantize={quantize!r} applies to a model loaded here, not to a "
                             f"given {type(model).__name__}")
        tokenizer, run = Tokenizer.from_pretrained(directory), run_config(directory)
        model.to(target).eval()
        return cls(task, model, tokenizer, run, target, batch_size, max_length)

    @property
    def spec(self) -> TaskSpec:
        return finetuned_spec(self.task)

    @property
    def max_length(self) -> int:
        settings = self.run.get("finetune", {})
        return int(self.window or settings.get("max_length")
                   or self.tokenizer.model_max_length)

    @property
    def doc_stride(self) -> int | None:
        return self.run.get("finetune", {}).get("doc_stride")

    def _require(self, task: str) -> None:
        if self.task != task:
            raise UsageError(f"this is a {self.task!r} model; {task!r} needs another one")

    def serve(self, payloads: list[Any]) -> list[dict[str, Any]]:
        """One record per payload of the task's server route (:class:`TaskSpec` ``serve``)."""
        return self.spec.serve(self, payloads)  # type: ignore[misc]

    def classify(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None
                 ) -> list[dict[str, Any]]:
        """Per text ``{"label", "scores"}`` (multi-class), ``{"labels", "scores"}``
        (multi-label) or ``{"score"}`` (regression), as ``bertkit predict classify`` writes."""
        self._require("classify")
        return parts.classify_texts(self, texts, text_pairs)

    def ner(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Per text its entities ``{"type", "start", "end", "text"}`` (``text[start:end]``),
        plus the words and their tags."""
        self._require("ner")
        return parts.ner_texts(self, texts)

    def qa(self, questions: Sequence[str], contexts: Sequence[str]) -> list[dict[str, Any]]:
        """Per question ``{"answer", "start", "end", "score"}``: the answer is
        ``context[start:end]`` and ``score`` its n-best probability; a SQuAD 2.0 model says
        ``"answer": ""`` (start = end = -1) when the null score wins by the run's threshold."""
        self._require("qa")
        return parts.qa_texts(self, questions, contexts)
