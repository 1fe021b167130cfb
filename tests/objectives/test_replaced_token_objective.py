"""ELECTRA's replaced-token objective on hand-built inputs: the labels (a sample equal to the
original is original), padding kept out of the discriminator's loss, tied embeddings, the
generator's size, and the settings it refuses."""

from __future__ import annotations

import pytest
import torch

from bertkit.data.batch import Batch
from bertkit.errors import ConfigError
from bertkit.model.losses import IGNORE_INDEX
from bertkit.model.pretrained import ElectraForMaskedLM, ElectraForPreTraining
from bertkit.objectives import (
    ElectraObjective,
    corrupt_with_samples,
    generator_config,
    summarize,
)
from bertkit.variants.electra import electra_base_discriminator, electra_small_discriminator

VOCAB = 40
MASK = 4


def _objective(**kwargs: object) -> ElectraObjective:
    torch.manual_seed(0)
    config = electra_small_discriminator(
        vocab_size=VOCAB, hidden_size=32, embedding_size=16, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=16,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    generator = ElectraForMaskedLM(generator_config(config, 0.25))
    return ElectraObjective(generator, ElectraForPreTraining(config), **kwargs)  # type: ignore[arg-type]


def test_labels_mark_only_changed_tokens() -> None:
    # [CLS] w5 [MASK] w7 [MASK] [SEP] pad pad; the originals at 2 and 4 are 9 and 11.
    input_ids = torch.tensor([[2, 5, MASK, 7, MASK, 3, 0, 0]])
    positions = torch.tensor([2, 4])
    targets = torch.tensor([9, 11])
    sampled = torch.tensor([9, 30])  # position 2: the generator guessed right
    corrupted, labels = corrupt_with_samples(input_ids, positions, targets, sampled)
    assert corrupted.tolist() == [[2, 5, 9, 7, 30, 3, 0, 0]]
    assert labels.tolist() == [[0, 0, 0, 0, 1, 0, 0, 0]]


def test_masked_position_keeping_its_token_is_original_when_sampled_back() -> None:
    # 15 % of ELECTRA's chosen positions keep their token; sampling it back changes nothing.
    input_ids = torch.tensor([[2, 6, 8, 3], [2, 7, 7, 3]])
    positions = torch.tensor([1, 6])          # flat: row 0 col 1, row 1 col 2
    corrupted, labels = corrupt_with_samples(input_ids, positions, torch.tensor([6, 7]),
                                             torch.tensor([6, 12]))
    assert corrupted.tolist() == [[2, 6, 8, 3], [2, 7, 12, 3]]
    assert labels.tolist() == [[0, 0, 0, 0], [0, 0, 1, 0]]


def _batch(pad_fill: int) -> Batch:
    """Two sequences, the second padded; ``pad_fill`` is written into its padding."""
    ids = torch.tensor([[2, 10, MASK, 12, 13, MASK, 15, 3],
                        [2, 20, MASK, 22, 3, pad_fill, pad_fill, pad_fill]])
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[0, 2], labels[0, 5], labels[1, 2] = 11, 14, 21
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    return Batch(ids, torch.zeros_like(ids), mask, mlm_labels=labels)


def test_padding_is_out_of_the_discriminator_loss() -> None:
    objective = _objective().eval()  # eval: samples with a fixed seed
    with torch.no_grad():
        _, clean = objective(_batch(0))
        _, noisy = objective(_batch(33))  # other ids in the padding, same attention mask
    assert clean["rtd_count"].item() == 13  # real tokens only
    assert noisy["rtd_loss"].item() == pytest.approx(clean["rtd_loss"].item(), abs=1e-6)
    assert noisy["rtd_correct"].item() == clean["rtd_correct"].item()
    # The padded positions' own logits do change with their ids: excluding them is what kept
    # the loss equal.
    discriminator = objective.discriminator
    with torch.no_grad():
        a = discriminator(_batch(0).input_ids, _batch(0).attention_mask).logits[1, 5:]
        b = discriminator(_batch(33).input_ids, _batch(33).attention_mask).logits[1, 5:]
    assert not torch.allclose(a, b)
    exact = summarize(clean)
    assert exact["rtd_baseline"] == pytest.approx(1 - clean["rtd_replaced"].item() / 13)


def test_loss_is_mlm_plus_weighted_rtd() -> None:
    batch = _batch(0)
    losses = []
    for weight in (1.0, 50.0):
        objective = _objective(rtd_weight=weight).eval()
        with torch.no_grad():
            loss, metrics = objective(batch)
        assert loss.item() == pytest.approx(
            metrics["mlm_loss"].item() + weight * metrics["rtd_loss"].item(), rel=1e-5)
        losses.append(loss.item())
    assert losses[1] > losses[0]


def test_embeddings_are_tied_and_projections_are_not() -> None:
    objective = _objective()
    generator, discriminator = objective.generator.bert, objective.discriminator.bert
    for name in ("word", "position", "token_type", "norm"):
        ours, theirs = getattr(generator.embeddings, name), getattr(discriminator.embeddings, name)
        assert ours.weight.data_ptr() == theirs.weight.data_ptr(), name
    # E = 16 projects to each network's own width: 8 for the generator, 32 for the other.
    assert generator.embeddings.projection.weight.shape == (8, 16)
    assert discriminator.embeddings.projection.weight.shape == (32, 16)
    # One backward pass reaches the shared table from both losses, and it is counted once.
    loss, _ = objective(_batch(0))
    loss.backward()
    assert discriminator.embeddings.word.weight.grad is not None
    shared = sum(p.numel() for p in discriminator.embeddings.parameters()
                 if p is not discriminator.embeddings.projection.weight
                 and p is not discriminator.embeddings.projection.bias)
    separate = (sum(p.numel() for p in objective.generator.parameters())
                + sum(p.numel() for p in objective.discriminator.parameters()))
    assert sum(p.numel() for p in objective.parameters()) == separate - shared


def test_generator_config_follows_electra() -> None:
    base = generator_config(electra_base_discriminator(), 0.25)
    assert (base.hidden_size, base.num_attention_heads, base.intermediate_size) == (192, 3, 768)
    assert base.embedding_size == 768 and base.num_hidden_layers == 12
    small = generator_config(electra_small_discriminator(), 0.25)
    assert (small.hidden_size, small.num_attention_heads, small.embedding_size) == (64, 1, 128)
    with pytest.raises(ConfigError, match="generator size"):
        generator_config(electra_small_discriminator(), 0.0)


@pytest.mark.parametrize("bad", [{"rtd_weight": 0.0}, {"rtd_weight": -1.0},
                                 {"rtd_weight": float("nan")}, {"temperature": 0.0}])
def test_non_positive_weights_are_refused(bad: dict[str, float]) -> None:
    name = next(iter(bad))
    with pytest.raises(ConfigError, match=name):
        _objective(**bad)
