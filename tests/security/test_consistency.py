"""Behaviour consistency: flip rates under meaning-preserving edits."""

from __future__ import annotations

import pytest
import torch

from bertkit import BertForSequenceClassification, BertModel, InputError, UsageError
from bertkit.security.confidence import classifier_logits
from bertkit.security.consistency import consistency_check

from .conftest import tiny_config

TEXTS = ["the cat sat on the mat .", "a big dog ran far", "the red house", "a blue tree .",
         "the small cat was big", "a dog is red"]


@pytest.fixture
def classifier(tokenizer):
    torch.manual_seed(3)
    return BertForSequenceClassification(tiny_config(len(tokenizer), num_labels=3)).eval()


def test_edits_the_tokenizer_erases_never_flip(classifier, tokenizer):
    # the tokenizer lower-cases and splits on whitespace: these edits give identical ids
    results = {r.name: r for r in consistency_check(
        classifier, tokenizer, TEXTS, perturbations=None)}
    assert results["upper"].flip_rate == 0.0 and results["upper"].changed == len(TEXTS)
    assert results["extra_whitespace"].flip_rate == 0.0


def test_flip_rate_matches_a_direct_count(classifier, tokenizer):
    suffix = "cf mn bb tq cf mn"
    results = consistency_check(classifier, tokenizer, TEXTS, perturbations={},
                                suffixes=[suffix])
    before = classifier_logits(classifier, tokenizer, TEXTS).argmax(1)
    after = classifier_logits(classifier, tokenizer, [f"{t} {suffix}" for t in TEXTS]).argmax(1)
    assert results[0].flips == int((before != after).sum())
    assert results[0].flip_rate == pytest.approx(float((before != after).mean()))
    assert len(results[0].examples) == results[0].flips
    for flip in results[0].examples:
        assert flip.perturbed.endswith(suffix) and flip.before != flip.after


def test_bad_inputs(classifier, tokenizer):
    with pytest.raises(UsageError, match="no classification head"):
        consistency_check(BertModel(tiny_config(len(tokenizer))), tokenizer, TEXTS)
    with pytest.raises(InputError):
        consistency_check(classifier, tokenizer, [])
    erased = consistency_check(classifier, tokenizer, TEXTS, perturbations={"erase": lambda t: ""})
    assert erased[0].changed == 0 and erased[0].flips == 0  # empty edits keep the original
