"""The confidence / OOD audit of a fine-tuned classifier, end to end from texts.

Why a separate module: :mod:`~bertkit.security.confidence` is model-independent numpy (so it
can be tested by hand); this module runs the model and keeps the splits honest. Three disjoint
text sets go in:

- a *calibration* split with labels: fits the temperature and the class-conditional
  Mahalanobis statistics (of the last layer's [CLS] state);
- an *evaluation* split with labels: ECE before/after is reported here, and it is the
  in-distribution side of the OOD metrics;
- an *out-of-distribution* set (no labels).

Nothing reported is fitted on the data it is reported on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from bertkit.errors import InputError, UsageError
from bertkit.security.confidence import (
    Mahalanobis,
    TemperatureScaler,
    check_labels,
    classifier_logits,
    energy_score,
    entropy,
    expected_calibration_error,
    max_softmax,
    ood_metrics,
    reliability_diagram,
    softmax,
)
from bertkit.security.embedding_shift import extract_features
from bertkit.tokenization import Tokenizer


def _label_ids(model: nn.Module, labels: Sequence[int | str], name: str) -> np.ndarray:
    """Map label names through ``config.label2id`` (ids pass through), then range-check."""
    config = model.config
    label2id = getattr(config, "label2id", None) or {}
    ids = []
    for label in labels:
        if isinstance(label, str):
            if label not in label2id:
                known = sorted(label2id) if label2id else "none (the config names no labels)"
                raise InputError(f"{name}: label {label!r} unseen by the model; known: {known}")
            ids.append(int(label2id[label]))
        else:
            ids.append(int(label))
    return check_labels(np.array(ids, dtype=np.int64), int(config.num_labels), name=name)


def confidence_audit(model: nn.Module, tokenizer: Tokenizer, *,
                     calibration_texts: Sequence[str], calibration_labels: Sequence[int | str],
                     eval_texts: Sequence[str], eval_labels: Sequence[int | str],
                     ood_texts: Sequence[str], plot: str | Path | None = None,
                     bins: int = 15, batch_size: int = 32) -> dict[str, Any]:
    """ECE before/after temperature scaling, and AUROC / FPR@95 %TPR of max-softmax,
    entropy, energy and Mahalanobis scores for evaluation (in) vs OOD texts."""
    if getattr(model, "classifier", None) is None:
        raise UsageError(f"{type(model).__name__} has no classification head; the confidence "
                         "audit needs a fine-tuned BertForSequenceClassification")
    for name, texts in (("calibration_texts", calibration_texts), ("eval_texts", eval_texts),
                        ("ood_texts", ood_texts)):
        if not texts:
            raise InputError(f"{name} is empty")
    overlap = set(calibration_texts) & (set(eval_texts) | set(ood_texts))
    if overlap:
        raise UsageError(f"{len(overlap)} calibration text(s) also appear in the reported "
                         "sets; calibration must be held out")
    cal_y = _label_ids(model, calibration_labels, "calibration_labels")
    eval_y = _label_ids(model, eval_labels, "eval_labels")
    if len(cal_y) != len(calibration_texts) or len(eval_y) != len(eval_texts):
        raise InputError("each text needs exactly one label")
    logits = {name: classifier_logits(model, tokenizer, texts, batch_size=batch_size)
              for name, texts in (("cal", calibration_texts), ("eval", eval_texts),
                                  ("ood", ood_texts))}
    scaler = TemperatureScaler.fit(logits["cal"], cal_y)
    before, after = softmax(logits["eval"]), scaler.probabilities(logits["eval"])
    report: dict[str, Any] = {
        "accuracy": float((before.argmax(1) == eval_y).mean()),
        "temperature": scaler.temperature,
        "ece_before": expected_calibration_error(before, eval_y, bins),
        "ece_after": expected_calibration_error(after, eval_y, bins),
        "counts": {"calibration": len(cal_y), "eval": len(eval_y), "ood": len(ood_texts)},
        "ood": {},
    }
    scores = {"max_softmax": max_softmax, "neg_entropy": lambda z: -entropy(z),
              "energy": energy_score}
    for name, fn in scores.items():
        report["ood"][name] = ood_metrics(fn(logits["eval"]), fn(logits["ood"]))
    key = f"layer{model.config.num_hidden_layers}/cls"
    feats = {name: extract_features(model, tokenizer, texts, layers=[-1], poolings=["cls"],
                                    batch_size=batch_size)[key]
             for name, texts in (("cal", calibration_texts), ("eval", eval_texts),
                                 ("ood", ood_texts))}
    if len(feats["cal"]) >= 2:
        maha = Mahalanobis.fit(feats["cal"], cal_y)
        report["ood"]["mahalanobis"] = ood_metrics(maha.score(feats["eval"]),
                                                   maha.score(feats["ood"]))
    if plot is not None:
        report["plot"] = str(reliability_diagram(before, eval_y, plot, bins=bins,
                                                 compare=after))
    return report
