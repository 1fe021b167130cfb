"""Distillation pieces: the student starts as exactly the chosen teacher layers, and each loss
term equals its formula written out by hand (KL at temperature × T² over masked positions,
cosine over real tokens only, the weighted sum), with the teacher frozen.

Oracles: tensors compared with ``torch.equal`` against the teacher's; losses recomputed from
the models' dense outputs (``BertForMaskedLM(...).logits``) with explicit sums of
``p · (log p − log q)`` and ``x·y / (|x| |y|)``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bertkit import BertForPreTraining, DistilBertForMaskedLM
from bertkit.data.batch import Batch
from bertkit.errors import ConfigError, UsageError
from bertkit.objectives import PAD_LOGIT
from bertkit.objectives.distillation import (
    DistillationLoss,
    DistillationObjective,
    cosine_loss,
    init_student,
    soft_target_loss,
    student_config,
    summarize_distillation,
    teacher_layers,
)
from tiny import tiny_config

VOCAB = 90  # not a multiple of 64: the padded decoder path runs


def teacher(layers: int = 6, seed: int = 0) -> BertForPreTraining:
    torch.manual_seed(seed)
    return BertForPreTraining(tiny_config(VOCAB, num_hidden_layers=layers)).eval()


def make_batch(seed: int = 0) -> Batch:
    """Two rows, the second padded; a few masked positions on real tokens."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (2, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    labels = torch.full_like(ids, -100)
    for row, col in ((0, 1), (0, 6), (1, 2), (1, 7)):
        labels[row, col] = ids[row, col]
        ids[row, col] = 4  # [MASK]
    return Batch(ids, torch.zeros_like(ids), mask, labels)


def test_teacher_layers_are_evenly_spaced() -> None:
    assert teacher_layers(12, 6) == [0, 2, 4, 6, 8, 10]
    assert teacher_layers(12, 4) == [0, 3, 6, 9]
    assert teacher_layers(6, 3) == [0, 2, 4]
    assert teacher_layers(3, 3) == [0, 1, 2]
    with pytest.raises(ConfigError, match="between 1 and the teacher's"):
        teacher_layers(4, 5)


def test_student_starts_as_exactly_the_chosen_teacher_layers() -> None:
    big = teacher(6)
    student = DistilBertForMaskedLM(student_config(big.config))
    assert student.config.num_hidden_layers == 3 and student.config.type_vocab_size == 0
    assert init_student(student, big) == [0, 2, 4]
    for i, j in enumerate([0, 2, 4]):
        mine = student.bert.layers[i].state_dict()
        theirs = big.bert.layers[j].state_dict()
        other = big.bert.layers[j + 1].state_dict()  # the neighbour: must *not* be the copy
        assert mine.keys() == theirs.keys()
        for name in mine:
            assert torch.equal(mine[name], theirs[name]), (i, j, name)
        assert not torch.equal(mine["attention.qkv.weight"], other["attention.qkv.weight"])
    emb, src = student.bert.embeddings, big.bert.embeddings
    assert torch.equal(emb.word.weight, src.word.weight)
    assert torch.equal(emb.position.weight, src.position.weight + src.token_type.weight[0])
    assert torch.equal(emb.norm.weight, src.norm.weight) and torch.equal(emb.norm.bias,
                                                                         src.norm.bias)
    for name, tensor in student.mlm.state_dict().items():
        assert torch.equal(tensor, big.mlm.state_dict()[name]), name
    # Another choice of layers (Hugging Face's script keeps the last one).
    init_student(student, big, [0, 3, 5])
    assert torch.equal(student.bert.layers[2].attention.qkv.weight,
                       big.bert.layers[5].attention.qkv.weight)


def test_full_depth_student_reproduces_the_teacher() -> None:
    """The segment-0 fold makes the student's embeddings the teacher's on single segments."""
    big = teacher(2)
    copy = DistilBertForMaskedLM(student_config(big.config, num_hidden_layers=2))
    init_student(copy, big)
    copy.eval()
    batch = make_batch()
    ours = copy(batch.input_ids, batch.attention_mask).logits
    theirs = big(batch.input_ids, batch.attention_mask).prediction_logits
    real = batch.attention_mask.bool()
    assert (ours[real] - theirs[real]).abs().max() <= 1e-5


def test_student_of_another_width_is_refused_naming_both() -> None:
    config = teacher(4).config
    with pytest.raises(ConfigError, match=r"hidden_size=48.*hidden_size=32"):
        student_config(config, hidden_size=48, num_attention_heads=4)
    with pytest.raises(ConfigError, match="max_position_embeddings"):
        student_config(config, max_position_embeddings=64)
    with pytest.raises(ConfigError, match=r"\(5\).*\(4\)"):
        student_config(config, num_hidden_layers=5)


def test_soft_target_loss_is_kl_at_temperature_times_t_squared() -> None:
    g = torch.Generator().manual_seed(3)
    student, teacher_logits = torch.randn(3, 7, generator=g), torch.randn(3, 7, generator=g) * 3
    T = 2.0
    expected = 0.0
    for s_row, t_row in zip(student.tolist(), teacher_logits.tolist(), strict=True):
        zs = sum(math.exp(v / T) for v in s_row)
        zt = sum(math.exp(v / T) for v in t_row)
        for s, t in zip(s_row, t_row, strict=True):
            p, q = math.exp(t / T) / zt, math.exp(s / T) / zs
            expected += p * math.log(p / q)
    expected *= T * T
    assert soft_target_loss(student, teacher_logits, T).item() == pytest.approx(expected, rel=1e-5)
    # Padded vocabulary columns (the sparse decoder's) add exactly nothing.
    padded = [F.pad(x, (0, 5), value=PAD_LOGIT) for x in (student, teacher_logits)]
    assert soft_target_loss(*padded, T).item() == pytest.approx(expected, rel=1e-5)
    assert soft_target_loss(teacher_logits, teacher_logits, T).item() == pytest.approx(0,
                                                                                      abs=1e-5)


def test_cosine_loss_counts_real_tokens_only() -> None:
    g = torch.Generator().manual_seed(4)
    s, t = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    total, count = cosine_loss(s, t, mask)
    expected = 0.0
    for b, i in ((0, 0), (0, 1), (0, 2), (1, 0)):
        x, y = s[b, i].tolist(), t[b, i].tolist()
        dot = sum(a * c for a, c in zip(x, y, strict=True))
        norms = math.sqrt(sum(a * a for a in x)) * math.sqrt(sum(c * c for c in y))
        expected += 1 - dot / norms
    assert count == 4
    assert total.item() == pytest.approx(expected, rel=1e-5)
    s[1, 1:] = 1e3  # padded positions: whatever they hold changes nothing
    assert cosine_loss(s, t, mask)[0].item() == pytest.approx(expected, rel=1e-5)


def test_objective_is_the_weighted_sum_with_a_frozen_teacher() -> None:
    big = teacher(4, seed=1)
    student = DistilBertForMaskedLM(student_config(big.config))
    init_student(student, big)
    with torch.no_grad():  # move the student away from the teacher: every term non-zero
        for p in student.parameters():
            p.add_(0.05 * torch.randn_like(p))
    weights = DistillationLoss(temperature=3.0, alpha_ce=0.7, alpha_mlm=1.3, alpha_cos=2.0)
    objective = DistillationObjective(student, big, weights).train()
    batch = make_batch(seed=2)
    loss, metrics = objective(batch)

    # The same terms from the models' dense outputs.
    labels = batch.mlm_labels
    at = labels != -100
    s_out = student(batch.input_ids, batch.attention_mask, output_hidden_states=True)
    t_out = big(batch.input_ids, batch.attention_mask, output_hidden_states=True)
    s_logits, t_logits = s_out.logits[at], t_out.prediction_logits[at]           # (M, V)
    T = 3.0
    kl = (F.softmax(t_logits / T, -1) * (F.log_softmax(t_logits / T, -1)
                                         - F.log_softmax(s_logits / T, -1))).sum(-1).mean()
    mlm = F.cross_entropy(s_logits, labels[at])
    real = batch.attention_mask.bool()
    cos = (1 - F.cosine_similarity(s_out.hidden_states[-1][real],
                                   t_out.hidden_states[-1][real], dim=-1)).mean()
    expected = 0.7 * kl * T * T + 1.3 * mlm + 2.0 * cos
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    assert metrics["kl_loss"].item() == pytest.approx((kl * T * T).item(), rel=1e-4)
    assert metrics["cos_count"].item() == real.sum().item() == 20

    loss.backward()
    assert all(p.grad is not None for p in objective.parameters())
    assert all(p.grad is None and not p.requires_grad for p in big.parameters())
    assert not big.training  # objective.train() does not reach the teacher
    assert objective.state_dict().keys() == student.state_dict().keys()

    figures = summarize_distillation(metrics)
    agree = (s_logits.argmax(-1) == t_logits.argmax(-1)).float().mean().item()
    assert figures["teacher_agreement"] == pytest.approx(agree)
    assert figures["kl_loss"] == pytest.approx((kl * T * T).item(), rel=1e-4)


def test_teacher_without_mlm_head_is_refused() -> None:
    from bertkit import BertForSequenceClassification

    classifier = BertForSequenceClassification(tiny_config(VOCAB))
    student = DistilBertForMaskedLM(student_config(classifier.config))
    with pytest.raises(UsageError, match=r"teacher.*BertForSequenceClassification"):
        DistillationObjective(student, classifier)
