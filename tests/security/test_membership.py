"""Membership inference: metrics by hand, pseudo-log-likelihood against a one-at-a-time loop."""

from __future__ import annotations

import pytest
import torch

from bertkit import BertForMaskedLM, BertForSequenceClassification, InputError, UsageError
from bertkit.security.membership import (
    PseudoLikelihood,
    likelihood_ratio_scores,
    loss_attack_scores,
    membership_audit,
    membership_metrics,
    pseudo_log_likelihood,
)

from .conftest import tiny_config

TEXTS = ["the cat sat on the mat .", "a big dog ran far", "red"]


@pytest.fixture
def mlm(tokenizer):
    torch.manual_seed(0)
    return BertForMaskedLM(tiny_config(len(tokenizer))).eval()


def test_membership_metrics_hand_computed():
    report = membership_metrics([10.0, 9.0, 8.0, 0.5], [i / 100 for i in range(99)] + [8.5])
    # AUC: 10, 9 beat all 100; 8 beats 99; 0.5 beats 0.00..0.49 (50) and ties 0.50 (0.5)
    assert report["auc"] == pytest.approx((100 + 100 + 99 + 50.5) / 400)
    assert report["tpr_at_0.01_fpr"] == 0.75
    assert report["n_members"] == 4


def test_pll_equals_the_hand_computed_sum(mlm, tokenizer):
    plls = pseudo_log_likelihood(mlm, tokenizer, TEXTS, batch_size=3)  # rows mix texts
    for text, pll in zip(TEXTS, plls, strict=True):
        ids = tokenizer.encode(text)
        expected = 0.0
        with torch.no_grad():
            for t in range(1, len(ids) - 1):  # every token but [CLS] and [SEP]
                masked = torch.tensor([ids])
                masked[0, t] = tokenizer.mask_token_id
                log_probs = torch.log_softmax(mlm(masked).logits[0, t], dim=-1)
                expected += float(log_probs[ids[t]])
        assert pll.tokens == len(ids) - 2
        assert pll.total == pytest.approx(expected, abs=1e-4)
        assert pll.mean == pytest.approx(expected / pll.tokens, abs=1e-5)


def test_pll_does_not_depend_on_batching(mlm, tokenizer):
    one = pseudo_log_likelihood(mlm, tokenizer, TEXTS, batch_size=1)
    many = pseudo_log_likelihood(mlm, tokenizer, TEXTS, batch_size=64)
    for a, b in zip(one, many, strict=True):
        assert a.total == pytest.approx(b.total, abs=1e-4)


def test_attack_scores():
    plls = [PseudoLikelihood(-6.0, 3), PseudoLikelihood(-2.0, 4)]
    assert loss_attack_scores(plls).tolist() == [-2.0, -0.5]
    ref = [PseudoLikelihood(-5.0, 3), PseudoLikelihood(-4.0, 4)]
    assert likelihood_ratio_scores(plls, ref).tolist() == [-1.0, 2.0]
    with pytest.raises(InputError):
        likelihood_ratio_scores(plls, ref[:1])


def test_audit_with_the_target_as_its_own_reference_is_chance(mlm, tokenizer):
    report = membership_audit(mlm, tokenizer, TEXTS[:2], TEXTS[2:], reference_model=mlm)
    assert report["likelihood_ratio"]["auc"] == 0.5  # every ratio is 0: all ties
    assert 0.0 <= report["loss_attack"]["auc"] <= 1.0


def test_memorised_members_are_detected(tokenizer):
    """A tiny MLM trained to memorise four texts assigns them higher PLL than four unseen
    texts from the same vocabulary."""
    members = ["the cat sat on the mat", "a big red house", "the dog ran far", "blue tree"]
    others = ["the mat sat on a cat", "red big a house", "far dog the ran", "tree blue"]
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config(len(tokenizer)))
    batch = tokenizer(members, padding=True, return_tensors="pt")
    ids, attention = batch["input_ids"], batch["attention_mask"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(80):
        pick = (torch.rand(ids.shape, generator=generator) < 0.3) & (ids > 4)
        labels = torch.where(pick, ids, torch.full_like(ids, -100))
        loss = model(torch.where(pick, tokenizer.mask_token_id, ids), attention,
                     labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    report = membership_audit(model.eval(), tokenizer, members, others)
    assert report["loss_attack"]["auc"] >= 0.9


def test_bad_inputs(tokenizer, mlm):
    classifier = BertForSequenceClassification(tiny_config(len(tokenizer), num_labels=2))
    with pytest.raises(UsageError, match="no masked-LM head"):
        pseudo_log_likelihood(classifier, tokenizer, TEXTS)
    with pytest.raises(InputError, match="no texts"):
        pseudo_log_likelihood(mlm, tokenizer, [])
    with pytest.raises(InputError, match="members"):
        membership_audit(mlm, tokenizer, [], TEXTS)
    with pytest.raises(InputError, match="empty"):
        membership_metrics([], [1.0])
