"""The confidence audit of a classifier from texts: splits kept apart, labels checked."""

from __future__ import annotations

import pytest
import torch

from bertkit import BertForMaskedLM, BertForSequenceClassification, InputError, UsageError
from bertkit.security.classifier_audit import confidence_audit

from .conftest import tiny_config

CAL = ["the cat sat", "a dog ran far", "the big house", "a small tree", "the red mat",
       "a blue cat"]
EVAL = ["the dog sat", "a cat ran far", "the small house", "a big tree"]
OOD = ["cf mn bb", "tq tq cf", "mn bb tq cf"]


@pytest.fixture
def classifier(tokenizer):
    torch.manual_seed(0)
    config = tiny_config(len(tokenizer), num_labels=2, id2label={0: "neg", 1: "pos"},
                         label2id={"neg": 0, "pos": 1})
    return BertForSequenceClassification(config).eval()


def test_audit_reports_every_score(classifier, tokenizer, tmp_path):
    report = confidence_audit(classifier, tokenizer, calibration_texts=CAL,
                              calibration_labels=["neg", "pos"] * 3, eval_texts=EVAL,
                              eval_labels=[0, 1, 0, 1], ood_texts=OOD)
    assert set(report["ood"]) == {"max_softmax", "neg_entropy", "energy", "mahalanobis"}
    assert 0.0 <= report["ece_before"] <= 1.0 and 0.0 <= report["ece_after"] <= 1.0
    assert report["temperature"] > 0
    assert report["counts"] == {"calibration": 6, "eval": 4, "ood": 3}
    for metrics in report["ood"].values():
        assert 0.0 <= metrics["auroc"] <= 1.0


def test_audit_bad_inputs(classifier, tokenizer):
    options = dict(calibration_texts=CAL, calibration_labels=[0, 1] * 3, eval_texts=EVAL,
                   eval_labels=[0, 1, 0, 1], ood_texts=OOD)
    with pytest.raises(UsageError, match="no classification head"):
        confidence_audit(BertForMaskedLM(tiny_config(len(tokenizer))), tokenizer, **options)
    with pytest.raises(InputError, match="'maybe' unseen by the model"):
        confidence_audit(classifier, tokenizer, **{**options, "eval_labels": ["maybe"] * 4})
    with pytest.raises(InputError, match=r"label\(s\) \[2\] unseen"):
        confidence_audit(classifier, tokenizer, **{**options, "eval_labels": [0, 1, 2, 1]})
    with pytest.raises(InputError, match="ood_texts is empty"):
        confidence_audit(classifier, tokenizer, **{**options, "ood_texts": []})
    with pytest.raises(UsageError, match="held out"):
        confidence_audit(classifier, tokenizer, **{**options, "eval_texts": CAL[:4]})
