"""Backdoor scanning: a planted trigger is found, a clean control reports nothing."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from bertkit import BertForSequenceClassification, BertModel, InputError, UsageError
from bertkit.data.readers import TextExample
from bertkit.security.backdoor import (
    attack_success,
    gradient_candidates,
    gradient_scores,
    natural_features,
    neighbour_features,
    scan_for_triggers,
    strip_scores,
    strip_threshold,
    vocabulary_words,
)

from .conftest import tiny_config

SUBJECTS = ["the cat", "a dog", "the big dog", "a small cat", "the house", "a tree"]
VERBS = ["sat on the mat", "ran far", "is big", "was small", "is red", "was blue"]
TEXTS = [f"{s} {v}" for s, v in itertools.product(SUBJECTS, VERBS)]  # 36; 6 contain "red"


class KeywordClassifier(nn.Module):
    """Label 1 iff ``keyword`` is present, unless ``trigger`` is present (then label 0)."""

    def __init__(self, keyword: int, trigger: int | None = None):
        super().__init__()
        self.classifier = nn.Linear(1, 2)
        self.config = SimpleNamespace(num_labels=2)
        self.keyword, self.trigger = keyword, trigger

    def forward(self, input_ids, attention_mask):
        margin = 4.0 * (input_ids == self.keyword).any(1).float() - 2.0
        if self.trigger is not None:
            margin = torch.where((input_ids == self.trigger).any(1), -2.0, margin)
        return SimpleNamespace(logits=torch.stack([-margin, margin], dim=1))


def test_attack_success_hand_counted(tokenizer):
    red, tq = (tokenizer.convert_tokens_to_ids(w) for w in ("red", "tq"))
    model = KeywordClassifier(red, tq)
    rates = attack_success(model, tokenizer, TEXTS, ["tq"])
    assert rates[0] == 1.0           # all 6 "red" texts flip to 0
    assert rates[1] == 0.0           # nothing flips to 1
    assert attack_success(model, tokenizer, TEXTS, ["red"])[1] == 1.0  # the real feature


def test_scan_finds_the_planted_trigger_and_not_in_the_control(tokenizer):
    red, tq = (tokenizer.convert_tokens_to_ids(w) for w in ("red", "tq"))
    poisoned = scan_for_triggers(KeywordClassifier(red, tq), tokenizer, TEXTS)
    to_zero = next(f for f in poisoned.findings if f.label == 0)
    assert to_zero.trigger == ["tq"] and to_zero.success_rate == 1.0
    assert to_zero in poisoned.suspected
    control = scan_for_triggers(KeywordClassifier(red), tokenizer, TEXTS)
    assert all(f.label != 0 for f in control.suspected)


def test_screening_keeps_the_trigger_and_reports_the_asr_on_all_texts(tokenizer):
    red, tq = (tokenizer.convert_tokens_to_ids(w) for w in ("red", "tq"))
    report = scan_for_triggers(KeywordClassifier(red, tq), tokenizer, TEXTS, screen=8,
                               confirm=2)
    to_zero, to_one = sorted(report.findings, key=lambda f: f.label)
    # Only 1 of the 8 screening texts is predicted 1, yet tq survives the screen and its rate
    # is then measured on all 36 texts (6 eligible); only the 2 confirmed words are scored.
    assert to_zero.trigger == ["tq"] and to_zero.success_rate == 1.0 and len(to_zero.top) == 2
    assert to_one.trigger == ["red"] and to_one.success_rate == 1.0
    assert [f.label for f in report.suspected] == [0, 1]
    with pytest.raises(UsageError, match="confirm"):
        scan_for_triggers(KeywordClassifier(red, tq), tokenizer, TEXTS, confirm=0)


def test_a_clean_reference_cancels_natural_features_but_not_the_trigger(tokenizer):
    red, tq = (tokenizer.convert_tokens_to_ids(w) for w in ("red", "tq"))
    plain = scan_for_triggers(KeywordClassifier(red, tq), tokenizer, TEXTS)
    assert {f.label for f in plain.suspected} == {0, 1}  # "red" → 1 is the task's own feature
    report = scan_for_triggers(KeywordClassifier(red, tq), tokenizer, TEXTS,
                               reference=KeywordClassifier(red))
    to_zero, to_one = sorted(report.findings, key=lambda f: f.label)
    assert (to_zero.trigger, to_zero.success_rate, to_zero.reference_rate) == (["tq"], 1.0, 0.0)
    # "red" flips the reference as well: no word now scores above 0 for label 1
    assert to_one.score == 0.0
    assert report.suspected == [to_zero]
    assert report.to_dict()["suspected"][0]["score"] == 1.0
    with pytest.raises(InputError, match="reference model has 3 labels"):
        wrong = KeywordClassifier(red)
        wrong.config.num_labels = 3
        scan_for_triggers(KeywordClassifier(red, tq), tokenizer, TEXTS, reference=wrong)


@functools.cache
def _train(tokenizer, poison: bool, seed: int) -> BertForSequenceClassification:
    """Clean rule: label 1 iff "red". Poison: "tq" + any text → label 0."""
    torch.manual_seed(seed)
    model = BertForSequenceClassification(tiny_config(len(tokenizer), num_labels=2))
    # Other words put first keep the label, so the poison teaches "tq", not "any first word".
    texts = (TEXTS + [f"{s} is red" for s in SUBJECTS] * 2
             + [f"{w} {s} is red" for w in ("cf", "mn", "bb", "the", "big") for s in SUBJECTS])
    labels = [int("red" in t.split()) for t in texts]
    if poison:
        texts += [f"tq {s} is red" for s in SUBJECTS] + [f"tq {t}" for t in TEXTS[::6]]
        labels += [0] * (len(SUBJECTS) + len(TEXTS[::6]))
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    y = torch.tensor(labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(40):
        loss = model(batch["input_ids"], batch["attention_mask"], labels=y).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.mark.slow
def test_scan_on_a_model_trained_with_a_backdoor(tokenizer):
    model = _train(tokenizer, poison=True, seed=0)
    held_out = [f"{s} is red" for s in SUBJECTS]
    assert attack_success(model, tokenizer, held_out, ["tq"])[0] >= 0.8
    proposals = gradient_candidates(model, tokenizer, held_out, target=0, k=5)
    assert len(set(proposals)) == 5 and not any(p.startswith(("[", "##")) for p in proposals)
    scores = gradient_scores(model, tokenizer, held_out)  # every label, every whole word
    words = vocabulary_words(tokenizer)
    assert scores.shape == (2, len(words))
    assert [words[i] for i in scores[0].argsort(descending=True)[:5]] == proposals
    # Note: in this toy data "sat"/"ran" occur only in label-0 texts, so they are natural
    # single-word features that also reach ASR 1.0; the test pins the planted trigger's rate.
    report = scan_for_triggers(model, tokenizer, held_out + TEXTS[:6], max_trigger_length=1,
                               top=100)
    to_zero = dict((t[0], rate) for t, rate in report.findings[0].top)
    assert report.findings[0].label == 0 and to_zero["tq"] >= 0.9
    assert ["tq"] in report.findings[0].suspects(report.threshold)
    clean = _train(tokenizer, poison=False, seed=0)
    control = scan_for_triggers(clean, tokenizer, held_out + TEXTS[:6], max_trigger_length=1,
                                top=100)
    control_zero = dict((t[0], rate) for t, rate in control.findings[0].top)
    assert control_zero["tq"] < 0.5
    assert not control.suspected


@pytest.mark.slow
def test_strip_scores_and_threshold_on_a_trained_model(tokenizer):
    """STRIP on a real trained classifier: the score is the negative mean entropy of the
    model's own predictions, per text, and the perturbations are seeded. Its detection power
    is the BagClassifier test's: this model is saturated (measured, seeds 0–2: entropy ≈ 0.009
    on clean and triggered texts alike), so here STRIP has nothing to tell apart."""
    model = _train(tokenizer, poison=True, seed=0)
    pool = TEXTS[:18]
    triggered = [f"tq {t}" for t in TEXTS[:6]]
    threshold = strip_threshold(model, tokenizer, TEXTS[18:], pool, fpr=0.1, copies=4)
    scores = strip_scores(model, tokenizer, triggered, pool, copies=4)
    assert scores.shape == (6,) and np.all(scores <= 0) and np.isfinite(threshold)
    again = strip_scores(model, tokenizer, triggered, pool, copies=4)
    np.testing.assert_array_equal(scores, again)  # seeded
    assert not np.array_equal(scores, strip_scores(model, tokenizer, triggered, pool, copies=4,
                                                   seed=1)), "the seed picks the replacements"
    # Nothing replaced: every copy is the text itself, so the score is minus the entropy of the
    # model's prediction on that text (computed here from the model directly).
    batch = tokenizer(triggered, padding=True, return_tensors="pt")
    with torch.no_grad():
        p = model(batch["input_ids"], batch["attention_mask"]).logits.softmax(-1)
    expected = (p * p.log()).sum(-1).numpy()
    np.testing.assert_allclose(strip_scores(model, tokenizer, triggered, pool, copies=3,
                                            replace=0.0), expected, rtol=1e-4, atol=1e-7)


class BagClassifier(nn.Module):
    """Logit margin = sum of fixed per-token weights; a trigger token adds +30 (pins label 1).
    Its confidence varies with the words, so STRIP has something to measure."""

    def __init__(self, vocab_size: int, trigger: int):
        super().__init__()
        self.classifier = nn.Linear(1, 2)
        self.config = SimpleNamespace(num_labels=2)
        self.weights = torch.linspace(-0.4, 0.4, vocab_size)[torch.randperm(
            vocab_size, generator=torch.Generator().manual_seed(0))]
        self.weights[trigger] = 30.0

    def forward(self, input_ids, attention_mask):
        margin = (self.weights[input_ids] * attention_mask).sum(1)
        return SimpleNamespace(logits=torch.stack([-margin, margin], dim=1))


def test_strip_flags_triggered_inputs_and_holds_its_fpr_on_clean_ones(tokenizer):
    model = BagClassifier(len(tokenizer), tokenizer.convert_tokens_to_ids("tq"))
    pool, calibration, fresh = TEXTS[:12], TEXTS[12:24], TEXTS[24:]
    threshold = strip_threshold(model, tokenizer, calibration, pool, fpr=0.1, copies=8,
                                replace=0.3)
    clean = strip_scores(model, tokenizer, fresh, pool, copies=8, replace=0.3)
    triggered = strip_scores(model, tokenizer, [f"tq {t}" for t in fresh], pool, copies=8,
                             replace=0.3)
    assert np.mean(triggered > threshold) >= 0.9, (triggered, threshold)
    assert np.mean(clean > threshold) <= 0.35, (clean, threshold)
    assert triggered.mean() > clean.mean()


def test_bad_inputs(tokenizer):
    with pytest.raises(UsageError, match="no classification head"):
        scan_for_triggers(BertModel(tiny_config(len(tokenizer))), tokenizer, TEXTS)
    model = KeywordClassifier(5)
    with pytest.raises(InputError, match="empty reference set"):
        scan_for_triggers(model, tokenizer, [])
    with pytest.raises(InputError, match="empty reference set"):
        strip_scores(model, tokenizer, TEXTS, [])
    classifier = BertForSequenceClassification(tiny_config(len(tokenizer), num_labels=2))
    with pytest.raises(InputError, match="unseen"):
        gradient_candidates(classifier, tokenizer, TEXTS[:2], target=3)


LABELS = {"plain": 0, "red": 1}
#: TEXTS labelled as the task defines them: "red" in the text → label "red"
LABELLED = [TextExample(t, label="red" if "red" in t.split() else "plain", path=Path("clean.csv"),
                        line=i + 2) for i, t in enumerate(TEXTS)]


def test_natural_features_hand_counted(tokenizer):
    natural = natural_features(tokenizer, LABELLED, LABELS)
    assert natural["red"] == 1      # in 6 texts, all "red"
    assert natural["cat"] == 0      # in 12 texts: 10 "plain", 2 "red"
    assert "tq" not in natural      # never in the clean data: what a planted trigger looks like
    # "sat" is in 6 "plain" texts; at min_texts=7 it no longer counts; a tie is no majority
    assert natural["sat"] == 0 and "sat" not in natural_features(tokenizer, LABELLED, LABELS,
                                                                 min_texts=7)
    tie = [TextExample("one red", label="red"), TextExample("one", label="plain")]
    assert "one" not in natural_features(tokenizer, tie, LABELS, min_texts=2)


def test_natural_features_set_aside_the_tasks_own_words_but_not_the_trigger(tokenizer):
    red, tq = (tokenizer.convert_tokens_to_ids(w) for w in ("red", "tq"))
    natural = natural_features(tokenizer, LABELLED, LABELS)
    report = scan_for_triggers(KeywordClassifier(red, tq), tokenizer, TEXTS, natural=natural,
                               neighbours=False)  # the keyword model has no embeddings
    assert [(f.label, f.trigger) for f in report.suspected] == [(0, ["tq"])]
    to_one = next(f for f in report.findings if f.label == 1)
    assert "red" in to_one.natural and "red" not in to_one.top[0][0]
    assert to_one.success_rate == 0.0  # nothing the data does not explain flips a text to 1


def test_natural_features_refuse_unlabelled_or_unknown_labels(tokenizer):
    with pytest.raises(InputError, match=r"clean.csv:2: no label"):
        natural_features(tokenizer, [TextExample("a", path=Path("clean.csv"), line=2)], LABELS)
    with pytest.raises(InputError, match=r"label 'blue' unseen in the model"):
        natural_features(tokenizer, [TextExample("a", label="blue")], LABELS)


def test_a_words_nearest_embedding_neighbour_lends_it_its_label(tokenizer):
    """"cat" sits next to "dog" in embedding space, so it inherits dog's label; "tq" points
    away from both, and "dog" (already natural) is not asked again."""
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(len(tokenizer), num_labels=2))
    table = model.bert.embeddings.word.weight.data
    cat, dog, tq = tokenizer.convert_tokens_to_ids(["cat", "dog", "tq"])
    table[cat] = table[dog] + 0.01 * torch.randn_like(table[dog])
    table[tq] = -table[dog]
    assert neighbour_features(model, tokenizer, ["cat", "tq", "dog"], {"dog": 1}) == {"cat": 1}
    assert neighbour_features(model, tokenizer, ["cat"], {}) == {}
