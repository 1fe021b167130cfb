"""Adversarial probes against classifiers whose weak spot is known exactly."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from bertkit import BertForMaskedLM, InputError, UsageError
from bertkit.security.adversarial import attack, attack_summary, mlm_substitutes, typos

from .conftest import tiny_config


class CountingClassifier(nn.Module):
    """Label 1 once ``needed`` copies of ``token_id`` are present, else label 0; with
    ``absent=True`` the rule flips: label 0 while the token is present."""

    def __init__(self, token_id: int, needed: int = 1, absent: bool = False):
        super().__init__()
        self.classifier = nn.Linear(1, 2)  # a head, so the audit accepts the model
        self.token_id, self.needed, self.absent = token_id, needed, absent

    def forward(self, input_ids, attention_mask):
        count = (input_ids == self.token_id).sum(1).float()
        margin = 3.0 * count - 3.0 * self.needed + 1.5          # > 0 ⇔ count ≥ needed
        if self.absent:
            margin = -margin
        return SimpleNamespace(logits=torch.stack([-margin, margin], dim=1))


def test_typos_hand_listed():
    assert typos("cat") == ["act", "caat", "ct", "cta"]
    assert typos("a") == []


def test_insertion_attack_needs_exactly_the_planted_edits(tokenizer):
    cf = tokenizer.convert_tokens_to_ids("cf")
    model = CountingClassifier(cf, needed=2)
    texts = ["the cat sat", "a dog ran far"]
    results = attack(model, tokenizer, texts, kinds=["insert"], insertions=["mn", "cf"],
                     max_edits=2)
    assert all(r.success for r in results)
    assert all([e.after for e in r.edits] == ["cf", "cf"] for r in results)
    assert all(r.adversarial.split().count("cf") == 2 for r in results)
    # queries: (words + 1) positions × 2 words, for each of 2 steps
    assert [r.queries for r in results] == [4 * 2 + 5 * 2, 5 * 2 + 6 * 2]
    assert attack_summary(results)["success_rate"] == 1.0
    one = attack(model, tokenizer, texts, kinds=["insert"], insertions=["mn", "cf"],
                 max_edits=1)
    assert not any(r.success for r in one)
    assert all(r.final_probability < r.original_probability for r in one)
    capped = attack(model, tokenizer, texts[:1], kinds=["insert"], insertions=["mn", "cf"],
                    max_queries=5)
    assert capped[0].queries == 5


def test_typo_attack_breaks_a_keyword_classifier(tokenizer):
    house = tokenizer.convert_tokens_to_ids("house")
    model = CountingClassifier(house, absent=True)  # label 0 ⇔ "house" is present
    [result] = attack(model, tokenizer, ["the red house"], kinds=["typo"])
    assert result.success and len(result.edits) == 1
    assert result.edits[0].kind == "typo" and result.edits[0].before == "house"


def test_substitution_with_the_models_own_mlm(tokenizer):
    torch.manual_seed(0)
    mlm = BertForMaskedLM(tiny_config(len(tokenizer))).eval()
    words = ["the", "cat", "sat", "on", "the", "mat"]
    subs = mlm_substitutes(mlm, tokenizer, words, 1, top_k=5)
    assert len(subs) == 5 and "cat" not in subs
    assert all(not s.startswith("[") for s in subs)
    cf = tokenizer.convert_tokens_to_ids("cf")
    [result] = attack(CountingClassifier(cf), tokenizer, [" ".join(words)],
                      kinds=["substitute"], mlm=mlm, mlm_tokenizer=tokenizer, top_k=len(tokenizer))
    assert result.success and result.edits[0].kind == "substitute"
    assert result.edits[0].after == "cf"


def test_bad_inputs(tokenizer):
    model = CountingClassifier(5)
    with pytest.raises(UsageError, match="candidate words"):
        attack(model, tokenizer, ["the cat"], kinds=["insert"])
    with pytest.raises(UsageError, match="masked LM"):
        attack(model, tokenizer, ["the cat"], kinds=["substitute"])
    with pytest.raises(UsageError, match="edit kind"):
        attack(model, tokenizer, ["the cat"], kinds=["paraphrase"])
    with pytest.raises(InputError):
        attack(model, tokenizer, [])
    with pytest.raises(UsageError, match="no classification head"):
        attack(BertForMaskedLM(tiny_config(len(tokenizer))), tokenizer, ["the cat"],
               kinds=["typo"])
