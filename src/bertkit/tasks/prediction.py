"""The model over sliding windows, per task: the ONE prediction path shared by the fine-tuning
run's per-epoch evaluation and the tasks' prediction parts (:mod:`bertkit.tasks.parts`:
``bertkit predict``/``evaluate``, :class:`Predictor`, the server).

Long inputs are windowed, never truncated (:mod:`bertkit.data.windows`): classification
averages (or maxes) window logits, NER takes each word from its max-context window, QA picks
n-best spans over windows. Each ``*_run`` returns ``(metrics or None, records)``: the metrics
when the examples are labelled, the records as ``predictions.jsonl`` holds them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bertkit.data.readers import LabelMap, NerSentence, QAExample, TextExample, gold_answers
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import PreTrainedModel
from bertkit.tasks import metrics as M
from bertkit.tasks.classification import (
    PROBLEM_TYPES,
    aggregate_windows,
    classification_features,
    collate_classification,
    encode_targets,
)
from bertkit.tasks.question_answering import (
    apply_null_threshold,
    collate_qa,
    postprocess_qa,
    qa_features,
    tune_null_threshold,
)
from bertkit.tasks.token_classification import (
    collate_token_classification,
    decode_entities,
    encode_tags,
    token_classification_features,
)
from bertkit.tokenization import Tokenizer

__all__ = [
    "classify_run",
    "family_class",
    "forward_windows",
    "model_label_kind",
    "ner_run",
    "qa_run",
    "trim",
]



@torch.no_grad()
def forward_windows(model: nn.Module, n: int, collate: Callable[[list[int]], dict[str, Any]],
                     batch_size: int, device: torch.device,
                     outputs: Callable[[Any, dict[str, Any]], list[Any]]) -> list[Any]:
    """Run ``model`` over windows ``0..n-1`` in batches; ``outputs`` turns one batch's model
    output into one entry per window (trimmed to the window's real length)."""
    model.eval()
    results: list[Any] = []
    for begin in range(0, n, batch_size):
        batch = collate(list(range(begin, min(n, begin + batch_size))))
        inputs = {k: v.to(device) for k, v in batch.items()
                  if k in ("input_ids", "attention_mask", "token_type_ids")}
        results.extend(outputs(model(**inputs), batch))
    return results


def trim(tensor: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> list[np.ndarray]:
    """Per-row arrays cut to each row's real (unpadded) length."""
    lengths = batch["attention_mask"].sum(-1).tolist()
    rows = tensor.detach().float().cpu().numpy()
    return [row[:int(length)] for row, length in zip(rows, lengths, strict=True)]



def _classify_metrics(label_kind: str, label_map: LabelMap | None, gold: Any,
                      scores: np.ndarray) -> dict[str, Any]:
    """The task's metrics from aggregated logits ``scores`` ``(E, C)``."""
    if label_kind == "regression":
        pred = scores.reshape(-1)
        return {"mse": M.mse(gold, pred), "pearson": M.pearson(gold, pred),
                "spearman": M.spearman(gold, pred)}
    if label_kind == "multilabel":
        pred = (scores > 0).astype(int)  # sigmoid > 0.5
        return dict(M.multilabel_metrics(np.asarray(gold, dtype=int), pred))
    pred = scores.argmax(-1)
    n = len(label_map)  # type: ignore[arg-type]
    macro = M.precision_recall_f1(gold, pred, "macro", labels=list(range(n)))
    micro = M.precision_recall_f1(gold, pred, "micro", labels=list(range(n)))
    return {
        "accuracy": M.accuracy(gold, pred),
        "macro_f1": macro.f1,  # type: ignore[union-attr]
        "micro_f1": micro.f1,  # type: ignore[union-attr]
        "mcc": M.matthews_corrcoef(gold, pred),
        "confusion_matrix": M.confusion_matrix(gold, pred, n).tolist(),
        "labels": list(label_map.labels),  # type: ignore[union-attr]
        "report": M.classification_report(gold, pred, labels=list(range(n)),
                                          names=list(label_map.labels)),  # type: ignore[union-attr]
    }


def _classify_records(examples: Sequence[TextExample], label_kind: str,
                      label_map: LabelMap | None, scores: np.ndarray) -> list[dict[str, Any]]:
    records = []
    for example, row in zip(examples, scores, strict=True):
        record: dict[str, Any] = {"line": example.line, "text": example.text}
        if example.text_pair is not None:
            record["text_pair"] = example.text_pair
        if label_kind == "regression":
            record["score"] = float(np.asarray(row).reshape(-1)[0])
        elif label_kind == "multilabel":
            probs = 1 / (1 + np.exp(-row))
            record["labels"] = [lab for lab, p in zip(label_map.labels, probs, strict=True)  # type: ignore[union-attr]
                                if p > 0.5]
            record["scores"] = {lab: round(float(p), 6)
                                for lab, p in zip(label_map.labels, probs, strict=True)}  # type: ignore[union-attr]
        else:
            probs = np.exp(row - row.max())
            probs /= probs.sum()
            record["label"] = label_map.labels[int(row.argmax())]  # type: ignore[union-attr]
            record["scores"] = {lab: round(float(p), 6)
                                for lab, p in zip(label_map.labels, probs, strict=True)}  # type: ignore[union-attr]
        if example.label is not None:
            record["gold"] = list(example.label) if isinstance(example.label, tuple) \
                else example.label
        records.append(record)
    return records


def classify_run(model: nn.Module, tokenizer: Tokenizer, examples: Sequence[TextExample],
                  label_kind: str, label_map: LabelMap | None, *, max_length: int,
                  doc_stride: int | None, batch_size: int, aggregate: str,
                  device: torch.device, labelled: bool
                  ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Predict ``examples`` through windows (and score them when ``labelled``)."""
    features = classification_features(tokenizer, examples, max_length=max_length,
                                       doc_stride=doc_stride)
    gold = None
    if labelled:  # unknown labels fail here, naming path:line, before any compute
        gold = encode_targets(examples, label_kind, label_map)  # type: ignore[arg-type]
    pad = tokenizer.pad_token_id
    model.to(device)
    logits = forward_windows(
        model, len(features), lambda idx: collate_classification(features, idx, pad_id=pad),
        batch_size, device, lambda out, batch: list(out.logits.detach().float().cpu().numpy()))
    scores = aggregate_windows(np.stack(logits), features.windows.window_example,
                               len(examples), how=aggregate)  # type: ignore[arg-type]
    records = _classify_records(examples, label_kind, label_map, scores)
    metrics = _classify_metrics(label_kind, label_map, gold, scores) if labelled else None
    return metrics, records



def ner_run(model: nn.Module, tokenizer: Tokenizer, sentences: Sequence[NerSentence],
             label_map: LabelMap, *, max_length: int, doc_stride: int | None,
             batch_size: int, device: torch.device, labelled: bool
             ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    if labelled:  # an unknown tag fails here with its file line
        encode_tags(sentences, label_map)
    features = token_classification_features(tokenizer, sentences, max_length=max_length,
                                             doc_stride=doc_stride)
    pad = tokenizer.pad_token_id
    model.to(device)
    rows = forward_windows(
        model, len(features),
        lambda idx: collate_token_classification(features, idx, pad_id=pad),
        batch_size, device, lambda out, batch: [r.argmax(-1) for r in trim(out.logits, batch)])
    decoded = decode_entities(features.windows, rows, label_map)
    records = []
    for sentence, pred in zip(sentences, decoded, strict=True):
        record: dict[str, Any] = {"line": sentence.line, "words": pred.words, "tags": pred.tags,
                                  "entities": [{"type": e.type, "start": e.start, "end": e.end,
                                                "text": e.text} for e in pred.entities]}
        if sentence.tags is not None:
            record["gold"] = list(sentence.tags)
        records.append(record)
    if not labelled:
        return None, records
    gold = [list(s.tags or ()) for s in sentences]
    pred_tags = [p.tags for p in decoded]
    scores = M.entity_scores(gold, pred_tags)
    metrics = {"precision": scores.micro.precision, "recall": scores.micro.recall,
               "f1": scores.micro.f1, "token_accuracy": M.token_accuracy(gold, pred_tags),
               "report": scores.as_dict()}
    return metrics, records



def qa_run(model: nn.Module, tokenizer: Tokenizer, examples: Sequence[QAExample],
            version: str, *, max_length: int, doc_stride: int, batch_size: int,
            device: torch.device, labelled: bool, null_threshold: float | None,
            max_answer_length: int = 30) -> tuple[dict[str, Any] | None, list[dict[str, Any]],
                                                  float]:
    """Predict answers; on labelled SQuAD 2.0 data tune the null threshold on these examples
    (``null_threshold=None``) or apply the given one."""
    features = qa_features(tokenizer, examples, max_length=max_length, doc_stride=doc_stride)
    pad = tokenizer.pad_token_id
    model.to(device)
    pairs = forward_windows(
        model, len(features), lambda idx: collate_qa(features, idx, pad_id=pad), batch_size,
        device, lambda out, batch: list(zip(trim(out.start_logits, batch),
                                            trim(out.end_logits, batch), strict=True)))
    preds = postprocess_qa(features, [p[0] for p in pairs], [p[1] for p in pairs],
                           version=version, max_answer_length=max_answer_length)  # type: ignore[arg-type]
    threshold = 0.0 if null_threshold is None else null_threshold
    metrics = None
    if labelled:
        gold = gold_answers(examples)
        if version == "2.0" and null_threshold is None:
            _, threshold = tune_null_threshold(examples, preds, "f1")
            if not math.isfinite(threshold):
                threshold = 0.0
        answers = apply_null_threshold(preds, threshold) if version == "2.0" else \
            {q: p.best_text for q, p in preds.items()}
        metrics = dict(M.squad_evaluate(gold, answers, version=version))  # type: ignore[arg-type]
        metrics["null_threshold"] = threshold
    else:
        answers = apply_null_threshold(preds, threshold) if version == "2.0" else \
            {q: p.best_text for q, p in preds.items()}
    records = [{"id": qid, "answer": answers[qid], "best_span": p.best_text,
                "null_score_diff": p.null_score_diff if p.null_score_diff is None
                or math.isfinite(p.null_score_diff) else None}
               for qid, p in preds.items()]
    return metrics, records, threshold



def family_class(head: type[PreTrainedModel], model_dir: Path) -> type[PreTrainedModel]:
    """``head``'s class in the checkpoint's own family: an ELECTRA discriminator or an ALBERT
    checkpoint fine-tunes through the same code as BERT (``ElectraForSequenceClassification``
    …), and a family without that head gets a clear error."""
    return head.for_family(BertConfig.from_pretrained(model_dir).model_type)



def model_label_kind(model: nn.Module, run: Mapping[str, Any]) -> str:
    problem = model.config.problem_type  # type: ignore[union-attr]
    for kind, name in PROBLEM_TYPES.items():
        if name == problem:
            return kind
    if "model_label_kind" in run:
        return str(run["model_label_kind"])
    # One label and no problem type is a regression head (a cross-encoder's relevance logit),
    # as transformers reads it: a softmax over one label would always say 1.0.
    return "regression" if model.config.num_labels == 1 else "multiclass"  # type: ignore[union-attr]

