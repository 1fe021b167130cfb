"""Each fine-tuned task's prediction parts, named by its :class:`~bertkit.tasks.registry.TaskSpec`.

Two entries per task, both on a *loaded* model (:class:`Loaded`: the model, its tokenizer, the
training run's settings; :class:`~bertkit.tasks.predictor.Predictor` is one):

* ``predict_*(loaded, source, labelled)``: a file in the training format (columns default to
  the training run's) or raw texts → ``(metrics or None, records)``, what ``bertkit predict`` /
  ``evaluate`` write;
* ``*_texts(loaded, …)``: in-memory inputs → one JSON-ready record per input, what
  :class:`Predictor` and the server answer (NER with character offsets into the raw text).

Both run the windowed prediction of :mod:`bertkit.tasks.prediction`, so a file, a notebook call
and an HTTP request get the same answer for the same text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from bertkit.data.readers import (
    LabelMap,
    NerSentence,
    QAExample,
    TextExample,
    read_classification,
    read_conll,
    read_squad,
)
from bertkit.errors import DataFormatError
from bertkit.tasks.multiple_choice import (
    ChoiceExample,
    choice_features,
    choice_logits,
    choice_records,
    read_choices,
)
from bertkit.tasks.prediction import (
    classify_run,
    forward_windows,
    model_label_kind,
    ner_run,
    qa_run,
    trim,
)
from bertkit.tasks.question_answering import collate_qa, postprocess_qa, qa_features
from bertkit.tasks.token_classification import (
    collate_token_classification,
    decode_entities,
    token_classification_features,
)
from bertkit.tokenization import Tokenizer

__all__ = ["Loaded", "Records", "Source", "choice_texts", "classify_texts", "ner_texts",
           "predict_choice", "predict_classify", "predict_ner", "predict_qa", "qa_texts"]

Records = tuple[dict[str, Any] | None, list[dict[str, Any]]]


class Loaded(Protocol):
    """A fine-tuned model ready to predict: what every part reads."""

    model: nn.Module
    tokenizer: Tokenizer
    run: dict[str, Any]
    device: torch.device
    batch_size: int

    @property
    def max_length(self) -> int: ...

    @property
    def doc_stride(self) -> int | None: ...


@dataclass(frozen=True)
class Source:
    """What to predict on: a ``path`` in the task's format, or raw ``texts``; ``columns``
    override the training run's column names (classification tables only)."""

    path: Path | None = None
    texts: Sequence[str] | None = None
    columns: Mapping[str, str | None] = field(default_factory=dict)


def _labels(loaded: Loaded) -> LabelMap:
    return LabelMap.from_config(loaded.model.config.to_dict())  # type: ignore[operator]


def _classify(loaded: Loaded, examples: Sequence[TextExample], labelled: bool) -> Records:
    kind = model_label_kind(loaded.model, loaded.run)
    label_map = None if kind == "regression" else _labels(loaded)
    return classify_run(loaded.model, loaded.tokenizer, examples, kind, label_map,
                        max_length=loaded.max_length, doc_stride=loaded.doc_stride,
                        batch_size=loaded.batch_size,
                        aggregate=loaded.run.get("finetune", {}).get("aggregate", "mean"),
                        device=loaded.device, labelled=labelled)


def predict_classify(loaded: Loaded, source: Source, labelled: bool) -> Records:
    if source.texts is not None:
        examples = [TextExample(t, line=i + 1) for i, t in enumerate(source.texts)]
    else:
        run, columns = loaded.run, source.columns
        examples = read_classification(
            source.path,  # type: ignore[arg-type]
            text_column=columns.get("text_column") or run.get("text_column", "text"),
            text_pair_column=columns.get("text_pair_column") or run.get("text_pair_column"),
            label_column=(columns.get("label_column") or run.get("label_column", "label"))
            if labelled else None,
            label_kind=model_label_kind(loaded.model, run),  # type: ignore[arg-type]
            label_separator=run.get("label_separator"))
    return _classify(loaded, examples, labelled)


def classify_texts(loaded: Loaded, texts: Sequence[str],
                   text_pairs: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Per text ``{"label", "scores"}`` (multi-class), ``{"labels", "scores"}``
    (multi-label) or ``{"score"}`` (regression), as ``bertkit predict classify`` writes."""
    pairs = list(text_pairs) if text_pairs is not None else [None] * len(texts)
    examples = [TextExample(text, pair) for text, pair in zip(texts, pairs, strict=True)]
    _, records = _classify(loaded, examples, labelled=False)
    for record in records:  # the caller holds its inputs; echoing them costs bandwidth
        for key in ("line", "text", "text_pair"):
            record.pop(key, None)
    return records


def predict_ner(loaded: Loaded, source: Source, labelled: bool) -> Records:
    if source.texts is not None:
        sentences = [NerSentence(t.split(), None, None, i + 1)
                     for i, t in enumerate(source.texts)]
    else:
        sentences = read_conll(source.path, has_tags=labelled)  # type: ignore[arg-type]
    if not sentences:
        raise DataFormatError("no sentences; expected CoNLL lines", source.path)
    return ner_run(loaded.model, loaded.tokenizer, sentences, _labels(loaded),
                   max_length=loaded.max_length, doc_stride=loaded.doc_stride,
                   batch_size=loaded.batch_size, device=loaded.device, labelled=labelled)


def ner_texts(loaded: Loaded, texts: Sequence[str]) -> list[dict[str, Any]]:
    """Per text its entities ``{"type", "start", "end", "text"}`` (``text[start:end]``),
    plus the words and their tags."""
    features = token_classification_features(loaded.tokenizer, list(texts),
                                             max_length=loaded.max_length,
                                             doc_stride=loaded.doc_stride)
    pad = loaded.tokenizer.pad_token_id
    rows = forward_windows(
        loaded.model, len(features),
        lambda idx: collate_token_classification(features, idx, pad_id=pad),
        loaded.batch_size, loaded.device,
        lambda out, batch: [r.argmax(-1) for r in trim(out.logits, batch)])
    return [{"entities": [{"type": e.type, "start": e.start, "end": e.end, "text": e.text}
                          for e in pred.entities],
             "words": pred.words, "tags": pred.tags}
            for pred in decode_entities(features.windows, rows, _labels(loaded))]


def predict_qa(loaded: Loaded, source: Source, labelled: bool) -> Records:
    data = read_squad(source.path)  # type: ignore[arg-type]
    run = loaded.run
    metrics, records, _ = qa_run(
        loaded.model, loaded.tokenizer, data.examples, data.version,
        max_length=loaded.max_length, doc_stride=run.get("doc_stride", 128),
        batch_size=loaded.batch_size, device=loaded.device, labelled=labelled,
        null_threshold=run.get("null_threshold", 0.0),
        max_answer_length=run.get("max_answer_length", 30))
    return metrics, records


def qa_texts(loaded: Loaded, questions: Sequence[str],
             contexts: Sequence[str]) -> list[dict[str, Any]]:
    """Per question ``{"answer", "start", "end", "score"}``: the answer is
    ``context[start:end]`` and ``score`` its n-best probability; a SQuAD 2.0 model says
    ``"answer": ""`` (start = end = -1) when the null score wins by the run's threshold."""
    run = loaded.run
    examples = [QAExample(str(i), q, c)
                for i, (q, c) in enumerate(zip(questions, contexts, strict=True))]
    features = qa_features(loaded.tokenizer, examples, max_length=loaded.max_length,
                           doc_stride=run.get("doc_stride", 128))
    pad = loaded.tokenizer.pad_token_id
    pairs = forward_windows(
        loaded.model, len(features), lambda idx: collate_qa(features, idx, pad_id=pad),
        loaded.batch_size, loaded.device,
        lambda out, batch: list(zip(trim(out.start_logits, batch),
                                    trim(out.end_logits, batch), strict=True)))
    predictions = postprocess_qa(features, [p[0] for p in pairs], [p[1] for p in pairs],
                                 version=run.get("version", "1.1"),
                                 max_answer_length=run.get("max_answer_length", 30),
                                 null_threshold=run.get("null_threshold", 0.0))
    out = []
    for example in examples:
        prediction = predictions[example.id]
        chosen = next((c for c in prediction.nbest if c.text == prediction.text), None)
        record: dict[str, Any] = {"answer": prediction.text, "start": -1, "end": -1,
                                  "score": 0.0}
        if chosen is not None:
            record.update(start=chosen.start, end=chosen.end, score=chosen.probability)
        if prediction.null_score_diff is not None and math.isfinite(prediction.null_score_diff):
            record["null_score_diff"] = prediction.null_score_diff
        out.append(record)
    return out


def _choose(loaded: Loaded, examples: Sequence[ChoiceExample], labelled: bool) -> Records:
    features = choice_features(loaded.tokenizer, examples, max_length=loaded.max_length,
                               labelled=labelled)
    logits = choice_logits(loaded.model, features, pad_id=loaded.tokenizer.pad_token_id,
                           batch_size=loaded.batch_size, device=loaded.device)
    return choice_records(examples, logits, labelled)


def predict_choice(loaded: Loaded, source: Source, labelled: bool) -> Records:
    return _choose(loaded, read_choices(source.path, labelled=labelled),  # type: ignore[arg-type]
                   labelled)


def choice_texts(loaded: Loaded, contexts: Sequence[str],
                 choices: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Per context ``{"label", "choice", "scores"}``: the index and text of the best choice
    and every choice's probability. The batch's contexts all have the same number of choices
    (the server batches by it)."""
    examples = [ChoiceExample(c, tuple(options), line=i + 1)
                for i, (c, options) in enumerate(zip(contexts, choices, strict=True))]
    _, records = _choose(loaded, examples, labelled=False)
    for record in records:
        record.pop("line")
    return records
