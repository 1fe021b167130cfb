"""Embedding-shift detection on a tiny random encoder: batching invariance, calibrated
thresholds, leakage guards and leave-one-out attribution."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from bertkit import BertModel, InputError, UsageError
from bertkit.security.embedding_shift import (
    ShiftDetector,
    cosine_shift,
    explain_detection,
    explain_shift,
    extract_features,
    fit_detector,
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
