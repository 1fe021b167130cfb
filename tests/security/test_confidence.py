"""Confidence / OOD metrics against hand-computed cases, and calibration on synthetic data."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from bertkit import BertModel, InputError, UsageError
from bertkit.security.confidence import (
    Mahalanobis,
    TemperatureScaler,
    auroc,
    calibration_report,
    classifier_logits,
    energy_score,
    entropy,
    expected_calibration_error,
    fpr_at_tpr,
    max_softmax,
    ood_metrics,
    reliability_diagram,
    roc_curve,
    softmax,
    threshold_at_fpr,
    tpr_at_fpr,
)

from .conftest import tiny_config


def test_auroc_hand_computed_with_ties():
    assert auroc([3, 2], [1, 0]) == 1.0
    assert auroc([0, 1], [2, 3]) == 0.0
    assert auroc([1.0], [1.0]) == 0.5
    # 0.9 beats all 3; 0.4 beats 0.1, ties 0.4, loses to 0.5 (1.5); 0.6 beats all 3 → 7.5 / 9
    assert auroc([0.9, 0.4, 0.6], [0.5, 0.4, 0.1]) == pytest.approx(7.5 / 9)


def test_auroc_equals_the_area_under_the_roc_curve():
    rng = np.random.default_rng(0)
    pos = rng.integers(0, 6, 40).astype(float)  # many ties
    neg = rng.integers(0, 5, 30).astype(float)
    curve = roc_curve(pos, neg)
    fpr, tpr = curve.fpr, curve.tpr
    area = float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2))
    assert auroc(pos, neg) == pytest.approx(area)
    assert fpr[-1] == tpr[-1] == 1.0


def test_fpr_at_95_tpr_hand_computed():
    inside = np.arange(1, 21, dtype=float)  # 19 of 20 must pass → threshold 2
    outside = [19.5, 18.5, 5.0, 0.0]        # three of four are ≥ 2
    assert fpr_at_tpr(inside, outside, 0.95) == 0.75
    assert ood_metrics(inside, outside)["fpr_at_95_tpr"] == 0.75
    assert fpr_at_tpr([2, 3], [0, 1], 0.95) == 0.0


def test_tpr_at_1_percent_fpr_hand_computed():
    members = [10.0, 9.0, 8.0, 0.5]
    nonmembers = [i / 100 for i in range(99)] + [8.5]  # one non-member (1 %) scores 8.5
    # threshold 8 → TPR 3/4 with FPR 1/100; threshold 0.5 would need FPR 0.5
    assert tpr_at_fpr(members, nonmembers, 0.01) == 0.75
    assert tpr_at_fpr(members, nonmembers, 0.0) == 0.5


def test_scores_hand_computed():
    flat = [[0.0, 0.0]]
    assert max_softmax(flat)[0] == pytest.approx(0.5)
    assert entropy(flat)[0] == pytest.approx(math.log(2))
    assert energy_score(flat)[0] == pytest.approx(math.log(2))
    assert energy_score([[1000.0, 0.0]])[0] == pytest.approx(1000.0)  # stable, no overflow
    assert entropy([[50.0, 0.0]])[0] == pytest.approx(0.0, abs=1e-12)


def test_ece_hand_computed():
    probs = [[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]]
    labels = [0, 1, 0, 1]  # right, wrong, right, wrong
    # 15 bins: 0.9 → bin 13 (gap 0.1), 0.8 → bin 11 (gap 0.8), 0.6 and 0.55 → bin 8
    # (acc 0.5, conf 0.575, gap 0.075): 0.25·0.1 + 0.25·0.8 + 0.5·0.075
    assert expected_calibration_error(probs, labels) == pytest.approx(0.2625)
    # one bin: |mean accuracy − mean confidence| = |0.5 − 0.7125|
    assert expected_calibration_error(probs, labels, bins=1) == pytest.approx(0.2125)


def _overconfident(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    true_logits = rng.normal(0, 1.5, (n, 5))
    p = softmax(true_logits)
    labels = np.array([rng.choice(5, p=row) for row in p])
    return 3.0 * true_logits, labels  # the model's logits are 3× too sharp


def test_temperature_scaling_fixes_overconfidence_on_held_out_data():
    rng = np.random.default_rng(1)
    fit_logits, fit_labels = _overconfident(1500, rng)
    eval_logits, eval_labels = _overconfident(1500, rng)
    report = calibration_report(fit_logits, fit_labels, eval_logits, eval_labels)
    assert report["temperature"] == pytest.approx(3.0, rel=0.15)
    assert report["ece_before"] > 0.1
    assert report["ece_after"] < report["ece_before"] / 3
    # temperature never changes the predicted class
    scaler = TemperatureScaler(report["temperature"])
    np.testing.assert_array_equal(scaler.probabilities(eval_logits).argmax(1),
                                  eval_logits.argmax(1))


def test_mahalanobis_separates_a_shifted_cluster():
    rng = np.random.default_rng(2)
    dim = 16
    means = np.zeros((2, dim))
    means[0, 0], means[1, 0] = 3.0, -3.0
    labels = rng.integers(0, 2, 400)
    clean = means[labels] + rng.normal(size=(400, dim))
    scorer = Mahalanobis.fit(clean, labels)
    test_in = means[rng.integers(0, 2, 300)] + rng.normal(size=(300, dim))
    shifted = rng.normal(size=(300, dim))
    shifted[:, 1] += 6.0  # off both class clusters, along a direction clean data never moved
    metrics = ood_metrics(scorer.score(test_in), scorer.score(shifted))
    assert metrics["auroc"] > 0.95
    assert metrics["fpr_at_95_tpr"] < 0.1
    # the class-conditional fit matters: one pooled Gaussian sees the shifted cluster as central
    pooled = Mahalanobis.fit(clean)
    assert auroc(pooled.score(test_in), pooled.score(shifted)) < metrics["auroc"]


def test_mahalanobis_shrinkage_keeps_more_dims_than_examples_finite():
    rng = np.random.default_rng(3)
    scorer = Mahalanobis.fit(rng.normal(size=(10, 64)))  # singular raw covariance
    assert np.all(np.isfinite(scorer.distance(rng.normal(size=(5, 64)))))
    # Finite is not enough: the shrunk covariance must still rank distance from the clean
    # data, or every score is an equally useless number.
    near, far = rng.normal(size=(50, 64)), rng.normal(size=(50, 64)) + 4.0
    assert auroc(scorer.score(near), scorer.score(far)) > 0.95
    assert np.all(scorer.distance(np.zeros((1, 64))) < scorer.distance(far))


def test_threshold_hand_computed_and_too_few_examples():
    scores = np.arange(1, 20, dtype=float)  # n = 19; k = ceil(20 · 0.9) = 18
    assert threshold_at_fpr(scores, 0.1) == 18.0
    with pytest.raises(InputError, match="at least 99"):
        threshold_at_fpr(np.arange(10.0), 0.01)
    with pytest.raises(UsageError):
        threshold_at_fpr(scores, 1.5)


def test_threshold_from_clean_calibration_holds_its_fpr_on_fresh_clean_data():
    rng = np.random.default_rng(4)
    dim = 8
    scorer = Mahalanobis.fit(rng.normal(size=(500, dim)))
    calibration = scorer.distance(rng.normal(size=(1000, dim)))
    fresh = scorer.distance(rng.normal(size=(5000, dim)))
    for fpr in (0.05, 0.1):
        threshold = threshold_at_fpr(calibration, fpr)
        assert abs(float((fresh > threshold).mean()) - fpr) < 0.02


def test_bad_inputs_give_clear_errors():
    with pytest.raises(InputError, match="empty"):
        Mahalanobis.fit(np.zeros((0, 4)))
    with pytest.raises(InputError, match="at least 2"):
        Mahalanobis.fit(np.zeros((1, 4)))
    with pytest.raises(InputError, match=r"label\(s\) \[5\] unseen by the model"):
        TemperatureScaler.fit(np.zeros((2, 3)), [0, 5])
    with pytest.raises(InputError, match="unseen"):
        expected_calibration_error([[0.5, 0.5]], [-1])
    with pytest.raises(InputError, match="empty"):
        auroc([], [1.0])
    with pytest.raises(InputError, match="NaN"):
        auroc([float("nan")], [1.0])


def test_classifier_audit_needs_a_classification_head(tokenizer):
    encoder = BertModel(tiny_config(len(tokenizer)))
    with pytest.raises(UsageError, match="no classification head"):
        classifier_logits(encoder, tokenizer, ["the cat sat"])


def test_classifier_logits_shape_and_unseen_labels(tokenizer):
    from bertkit import BertForSequenceClassification

    model = BertForSequenceClassification(tiny_config(len(tokenizer), num_labels=3))
    texts = ["the cat sat", "a dog ran far", "red"]
    model.train()  # classifier_logits must switch dropout off itself, and restore the mode
    logits = classifier_logits(model, tokenizer, texts, batch_size=2)
    assert logits.shape == (3, 3) and model.training
    model.eval()
    with torch.no_grad():  # each text alone, unpadded: padding and batching change nothing
        alone = np.concatenate([model(**{k: v for k, v in tokenizer([t], return_tensors="pt")
                                         .items() if k in ("input_ids", "attention_mask")})
                                .logits.double().numpy() for t in texts])
    np.testing.assert_allclose(logits, alone, rtol=1e-5, atol=1e-6)
    assert not np.allclose(logits[0], logits[1])  # rows follow their own text, in order
    with pytest.raises(InputError, match="unseen"):
        TemperatureScaler.fit(logits, [0, 1, 3])


def test_reliability_diagram_png(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(5)
    logits, labels = _overconfident(200, rng)
    path = reliability_diagram(softmax(logits), labels, tmp_path / "rel.png",
                               compare=softmax(logits, 3.0))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reliability_diagram_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UsageError, match="matplotlib"):
        reliability_diagram([[0.9, 0.1]], [0], tmp_path / "rel.png")
