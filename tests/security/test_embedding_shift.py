"""Embedding-shift detection on a tiny random encoder: batching invariance, calibrated
thresholds, leakage guards and leave-one-out attribution."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from bertkit import BertForSequenceClassification, BertModel, InputError, UsageError
from bertkit.security.embedding_shift import (
    PREDICTION,
    ShiftDetector,
    cosine_shift,
    explain_detection,
    explain_shift,
    extract_features,
    fit_detector,
    pooled,
)

from .conftest import tiny_config

SUBJECTS = ["the cat", "a dog", "the big dog", "a small cat", "the red house", "a blue tree"]
VERBS = ["sat on the mat", "ran far", "is big", "was small", "is red", "was blue"]
CLEAN = [f"{s} {v} ." for s, v in itertools.product(SUBJECTS, VERBS)]  # 36 texts
# 72 texts, shuffled once: disjoint fit / calibration / fresh-test splits
POOL = [CLEAN[i] if i < 36 else CLEAN[i - 36][:-2]
        for i in np.random.default_rng(0).permutation(72)]


@pytest.fixture
def encoder(tokenizer):
    torch.manual_seed(0)
    return BertModel(tiny_config(len(tokenizer))).eval()


def test_features_do_not_depend_on_batching(encoder, tokenizer):
    texts = ["red", "the cat sat on the mat .", "a dog"]
    together = extract_features(encoder, tokenizer, texts, batch_size=3)
    alone = extract_features(encoder, tokenizer, texts[:1], batch_size=1)
    assert set(together) == {"layer1/mean", "layer1/cls", "layer2/mean", "layer2/cls"}
    for key in alone:
        np.testing.assert_allclose(together[key][:1], alone[key], atol=1e-5)
    same = cosine_shift(together, together)
    assert all(np.allclose(v, 0.0, atol=1e-6) for v in same.values())


def test_detector_flags_trigger_insertions(encoder, tokenizer):
    fit_texts, calibration, fresh = POOL[:36], POOL[36:54], POOL[54:]
    detector = fit_detector(encoder, tokenizer, fit_texts, calibration, fpr=0.1,
                            poolings=["mean"])
    assert detector.threshold is not None and detector.calibration_size == 18
    # fresh clean inputs vs the same texts with rare tokens inserted
    attacked = [f"cf mn {t} bb tq" for t in fresh]
    features = {name: extract_features(encoder, tokenizer, texts, poolings=["mean"])
                for name, texts in (("clean", fresh), ("attacked", attacked))}
    report = detector.evaluate(features["clean"], features["attacked"])
    assert report["auroc"] > 0.9
    assert report["tpr"] > report["fpr"]
    assert detector.flag(features["attacked"]).mean() == report["tpr"]


def test_calibration_must_not_reuse_fitting_texts(encoder, tokenizer):
    with pytest.raises(UsageError, match="held-out clean data"):
        fit_detector(encoder, tokenizer, CLEAN[:10], CLEAN[5:15])


def test_empty_reference_and_unfitted_threshold(encoder, tokenizer):
    with pytest.raises(InputError, match="empty reference set"):
        fit_detector(encoder, tokenizer, [], CLEAN)
    with pytest.raises(InputError, match="empty reference set"):
        ShiftDetector.fit({})
    detector = ShiftDetector.fit(extract_features(encoder, tokenizer, CLEAN, layers=[1]))
    with pytest.raises(UsageError, match="calibrate"):
        detector.flag(extract_features(encoder, tokenizer, CLEAN[:2], layers=[1]))
    with pytest.raises(UsageError, match="layer 9 does not exist"):
        extract_features(encoder, tokenizer, CLEAN, layers=[9])


def test_leave_one_out_names_the_inserted_token(encoder, tokenizer):
    original = "the cat sat on the mat ."
    modified = "the cat sat on cf the mat ."
    attribution = explain_shift(encoder, tokenizer, original, modified)
    # removing the inserted token restores the original exactly: its delta is the whole shift
    assert attribution.top(1) == ["cf"]
    assert attribution.tokens[0].delta == pytest.approx(attribution.score, abs=1e-6)
    assert attribution.tokens[0].position == 5


def test_explain_detection_runs_on_the_fitted_layers(encoder, tokenizer):
    detector = ShiftDetector.fit(extract_features(encoder, tokenizer, CLEAN, layers=[2],
                                                  poolings=["mean"]))
    attribution = explain_detection(detector, encoder, tokenizer, "the cat cf mn sat")
    assert sorted(t.token for t in attribution.tokens) == sorted(["the", "cat", "cf", "mn",
                                                                   "sat"])
    assert attribution.score == pytest.approx(
        float(detector.score(extract_features(encoder, tokenizer, ["the cat cf mn sat"],
                                              layers=[2], poolings=["mean"]))[0]), rel=1e-5)


def test_the_conditional_score_is_the_gap_between_predicted_and_nearest_class():
    rng = np.random.default_rng(0)
    centres = np.array([[4.0, 0.0, 0.0], [-4.0, 0.0, 0.0]])
    labels = np.repeat([0, 1], 50)
    clean = {"layer1/mean": centres[labels] + rng.normal(size=(100, 3)), PREDICTION: labels}
    detector = ShiftDetector.fit(clean, shrinkage=0.0)
    assert detector.conditional and detector.score_name == "layer-disagreement gap"
    near_class_0 = np.array([[4.0, 0.0, 0.0]] * 3)
    scores = detector.score({"layer1/mean": near_class_0, PREDICTION: np.array([0, 1, 7])})
    stats = detector.stats["layer1/mean"]
    d = stats.distances(near_class_0[:1])[0] / 3
    # agreeing layer: 0; predicted 1 but nearest 0: the distance gap; a label no clean input
    # was predicted as: the largest distance, the most suspicious reading
    np.testing.assert_allclose(scores, [0.0, d[1] - d[0], d.max() - d.min()], rtol=1e-9)
    assert scores[1] > 1.0
    with pytest.raises(InputError, match="lack the classifier's predictions"):
        detector.score({"layer1/mean": near_class_0})
    class_free = ShiftDetector.fit(clean, conditional=False)
    assert not class_free.conditional and len(class_free.stats["layer1/mean"].classes) == 1


def test_classifier_features_carry_predictions(tokenizer):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(len(tokenizer), num_labels=3)).eval()
    features = extract_features(model, tokenizer, CLEAN[:5], layers=[1], poolings=["cls"])
    assert set(features) == {"layer1/cls", PREDICTION}
    enc = tokenizer(CLEAN[:5], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    np.testing.assert_array_equal(features[PREDICTION], logits.argmax(-1).numpy())
    assert fit_detector(model, tokenizer, CLEAN[:20], CLEAN[20:], fpr=0.1, layers=[1]).conditional
    with pytest.raises(UsageError, match="needs the classifier's predictions"):
        ShiftDetector.fit(pooled(features), conditional=True)
