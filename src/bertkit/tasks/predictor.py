"""A fine-tuned model loaded ONCE, predicting on in-memory inputs (for the server and notebooks).

:func:`bertkit.tasks.evaluation.predict` loads the model on every call and reads files; a server
answers thousands of small requests with one model. :class:`Predictor` keeps the model, its
tokenizer and the training run's settings (window length, stride, aggregation, labels, null
threshold) and runs the same windowed prediction code as ``bertkit predict``:

* classification: :func:`~bertkit.tasks.prediction.classify_run` (window logits aggregated);
* NER on RAW text: each word from its max-context window, entities with character offsets into
  the text itself (``bertkit predict ner`` on stdin splits at whitespace instead);
* QA: n-best spans over windows with character offsets into the context, the run's null
  threshold for SQuAD 2.0 models.

The model may be any module that behaves like the task's bertkit class — e.g.
:class:`bertkit.export.runtime.OnnxRuntimeModel` to predict through ONNX Runtime.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bertkit.data.readers import LabelMap, QAExample, TextExample
from bertkit.errors import UsageError
from bertkit.tasks.prediction import (
    classify_run,
    forward_windows,
    load_for,
    model_label_kind,
    trim,
)
from bertkit.tasks.question_answering import collate_qa, postprocess_qa, qa_features
from bertkit.tasks.runfiles import require_model_dir, run_config
from bertkit.tasks.token_classification import (
    collate_token_classification,
    decode_entities,
    token_classification_features,
)
from bertkit.tokenization import Tokenizer
from bertkit.training.device import resolve_device

__all__ = ["Predictor"]


@dataclass
class Predictor:
    """``task`` is ``"classify"``, ``"ner"`` or ``"qa"``; ``run`` the run's ``run_config.json``
    (``{}`` for a plain checkpoint: then the tokenizer's length and the defaults apply)."""

    task: str
    model: nn.Module
    tokenizer: Tokenizer
    run: dict[str, Any]
    device: torch.device
    batch_size: int = 32

    @classmethod
    def load(cls, task: str, model_dir: str | Path, *, device: str = "auto",
             model: nn.Module | None = None, batch_size: int = 32) -> Predictor:
        """Load ``model_dir`` as the task's model class, or use ``model`` (an ONNX stand-in)
        with the directory's tokenizer and run settings."""
        directory = require_model_dir(model_dir)
        if model is None:
            model, tokenizer, run = load_for(task, directory)
        else:
            tokenizer, run = Tokenizer.from_pretrained(directory), run_config(directory)
        target = resolve_device(device)
        model.to(target).eval()
        return cls(task, model, tokenizer, run, target, batch_size)

    @property
    def max_length(self) -> int:
        settings = self.run.get("finetune", {})
        return int(settings.get("max_length") or self.tokenizer.model_max_length)

    @property
    def doc_stride(self) -> int | None:
        return self.run.get("finetune", {}).get("doc_stride")

    def _require(self, task: str) -> None:
        if self.task != task:
            raise UsageError(f"this is a {self.task!r} model; {task!r} needs another one")

    def classify(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None
                 ) -> list[dict[str, Any]]:
        """Per text ``{"label", "scores"}`` (multi-class), ``{"labels", "scores"}``
        (multi-label) or ``{"score"}`` (regression), as ``bertkit predict classify`` writes."""
        self._require("classify")
        pairs = list(text_pairs) if text_pairs is not None else [None] * len(texts)
        examples = [TextExample(text, pair) for text, pair in zip(texts, pairs, strict=True)]
        kind = model_label_kind(self.model, self.run)
        label_map = None if kind == "regression" else LabelMap.from_config(
            self.model.config.to_dict())  # type: ignore[operator]
        _, records = classify_run(
            self.model, self.tokenizer, examples, kind, label_map, max_length=self.max_length,
            doc_stride=self.doc_stride, batch_size=self.batch_size,
            aggregate=self.run.get("finetune", {}).get("aggregate", "mean"),
            device=self.device, labelled=False)
        for record in records:  # the caller holds its inputs; echoing them costs bandwidth
            for key in ("line", "text", "text_pair"):
                record.pop(key, None)
        return records

    def ner(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Per text its entities ``{"type", "start", "end", "text"}`` (``text[start:end]``),
        plus the words and their tags."""
        self._require("ner")
        label_map = LabelMap.from_config(self.model.config.to_dict())  # type: ignore[operator]
        features = token_classification_features(self.tokenizer, list(texts),
                                                 max_length=self.max_length,
                                                 doc_stride=self.doc_stride)
        pad = self.tokenizer.pad_token_id
        rows = forward_windows(
            self.model, len(features),
            lambda idx: collate_token_classification(features, idx, pad_id=pad),
            self.batch_size, self.device,
            lambda out, batch: [r.argmax(-1) for r in trim(out.logits, batch)])
        return [{"entities": [{"type": e.type, "start": e.start, "end": e.end, "text": e.text}
                              for e in pred.entities],
                 "words": pred.words, "tags": pred.tags}
                for pred in decode_entities(features.windows, rows, label_map)]

    def qa(self, questions: Sequence[str], contexts: Sequence[str]) -> list[dict[str, Any]]:
        """Per question ``{"answer", "start", "end", "score"}``: the answer is
        ``context[start:end]`` and ``score`` its n-best probability; a SQuAD 2.0 model says
        ``"answer": ""`` (start = end = -1) when the null score wins by the run's threshold."""
        self._require("qa")
        examples = [QAExample(str(i), q, c)
                    for i, (q, c) in enumerate(zip(questions, contexts, strict=True))]
        features = qa_features(self.tokenizer, examples, max_length=self.max_length,
                               doc_stride=self.run.get("doc_stride", 128))
        pad = self.tokenizer.pad_token_id
        pairs = forward_windows(
            self.model, len(features), lambda idx: collate_qa(features, idx, pad_id=pad),
            self.batch_size, self.device,
            lambda out, batch: list(zip(trim(out.start_logits, batch),
                                        trim(out.end_logits, batch), strict=True)))
        version = self.run.get("version", "1.1")
        predictions = postprocess_qa(features, [p[0] for p in pairs], [p[1] for p in pairs],
                                     version=version,
                                     max_answer_length=self.run.get("max_answer_length", 30),
                                     null_threshold=self.run.get("null_threshold", 0.0))
        out = []
        for example in examples:
            prediction = predictions[example.id]
            chosen = next((c for c in prediction.nbest if c.text == prediction.text), None)
            record: dict[str, Any] = {"answer": prediction.text, "start": -1, "end": -1,
                                      "score": 0.0}
            if chosen is not None:
                record.update(start=chosen.start, end=chosen.end, score=chosen.probability)
            if prediction.null_score_diff is not None and math.isfinite(
                    prediction.null_score_diff):
                record["null_score_diff"] = prediction.null_score_diff
            out.append(record)
        return out
