"""Masking statistics on >100,000 tokens, invariants that must hold on every position, and the
vectorised whole-word greedy checked against Google's loop written out in Python."""

from __future__ import annotations

import pytest
import torch

from bertkit.data.masking import (
    IGNORE_INDEX,
    MaskingConfig,
    _greedy_words,
    mask_tokens,
    prediction_budget,
    word_starts_from_continuation,
)
from bertkit.errors import ConfigError, InputError

SPECIAL = (0, 1, 2, 3, 4)


def run(ids, special, attention, *, seed=0, **kwargs):
    kwargs.setdefault("vocab_size", 1000)
    kwargs.setdefault("mask_token_id", 4)
    kwargs.setdefault("exclude_random_ids", SPECIAL)
    return mask_tokens(ids, special, attention_mask=attention,
                       generator=torch.Generator().manual_seed(seed), **kwargs)


def split_outcomes(ids, masked, labels):
    """Fractions of the chosen positions that became [MASK], a random token, or stayed."""
    chosen = labels != IGNORE_INDEX
    n = chosen.sum().item()
    as_mask = (masked[chosen] == 4).sum().item() / n
    kept = (masked[chosen] == ids[chosen]).sum().item() / n
    return as_mask, 1 - as_mask - kept, kept


def assert_invariants(ids, special, masked, labels):
    chosen = labels != IGNORE_INDEX
    assert not (chosen & special).any(), "a special or padding position was chosen"
    assert torch.equal(masked[~chosen], ids[~chosen]), "an unchosen position changed"
    assert torch.equal(labels[chosen], ids[chosen]), "labels must hold the original ids"
    replaced = chosen & (masked != ids) & (masked != 4)
    assert not torch.isin(masked[replaced], torch.tensor(SPECIAL)).any(), \
        "a random replacement drew a special id"


@pytest.mark.parametrize("selection", ["exact", "bernoulli"])
def test_rate_and_80_10_10_split(batch_ids, selection):
    ids, special, attention = batch_ids
    candidates = (~special).sum().item()
    assert candidates >= 100_000
    masked, labels = run(ids, special, attention, selection=selection)
    assert_invariants(ids, special, masked, labels)
    rate = (labels != IGNORE_INDEX).sum().item() / candidates
    assert rate == pytest.approx(0.15, abs=0.01)
    as_mask, as_random, kept = split_outcomes(ids, masked, labels)
    assert as_mask == pytest.approx(0.8, abs=0.01)
    assert as_random == pytest.approx(0.1, abs=0.01)
    assert kept == pytest.approx(0.1, abs=0.01)


def test_exact_count_is_googles_rule_per_sequence(batch_ids):
    ids, special, attention = batch_ids
    _, labels = run(ids, special, attention, max_predictions=12)
    counts = (labels != IGNORE_INDEX).sum(1)
    n = (~special).sum(1)
    expected = [min(12, max(1, round(c * 0.15))) for c in n.tolist()]
    assert counts.tolist() == expected
    assert torch.equal(counts, prediction_budget(n, 0.15, 12))


def test_bernoulli_counts_vary_and_respect_the_cap(batch_ids):
    ids, special, attention = batch_ids
    _, labels = run(ids, special, attention, selection="bernoulli")
    counts = (labels != IGNORE_INDEX).sum(1)
    assert counts.float().std() > 1.0  # binomial, not a fixed count
    _, capped = run(ids, special, attention, selection="bernoulli", rate=0.4, max_predictions=20)
    capped_counts = (capped != IGNORE_INDEX).sum(1)
    assert capped_counts.max() == 20
    assert (capped_counts < 20).any()  # short rows keep their smaller binomial count


def test_padding_never_chosen_even_when_not_flagged_special(batch_ids):
    ids, _, attention = batch_ids
    only_specials = torch.isin(ids, torch.tensor([2, 3]))  # padding left to attention_mask
    _, labels = run(ids, only_specials, attention, rate=0.9)
    assert not ((labels != IGNORE_INDEX) & (attention == 0)).any()


def test_edge_rows():
    ids = torch.tensor([[2, 3, 0, 0], [2, 9, 3, 0]])
    special = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 1]], dtype=torch.bool)
    _, labels = run(ids, special, None)
    assert (labels[0] == IGNORE_INDEX).all()  # no candidate: nothing chosen
    assert labels[1].tolist() == [IGNORE_INDEX, 9, IGNORE_INDEX, IGNORE_INDEX]  # max(1, …)


def test_reproducible_with_seed_and_different_with_another(batch_ids):
    ids, special, attention = batch_ids
    for kwargs in ({}, {"selection": "bernoulli"}, {"word_starts": ids > -1}):
        a = run(ids, special, attention, seed=3, **kwargs)
        b = run(ids, special, attention, seed=3, **kwargs)
        c = run(ids, special, attention, seed=4, **kwargs)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert not torch.equal(a[1], c[1])


# --------------------------------------------------------------------------- whole words


def continuation_pieces(starts, special):
    """(B, T) bool: candidate positions that continue the word of the position before them —
    the definition of a word the masker documents, written independently."""
    candidate = ~special
    previous = torch.zeros_like(candidate)
    previous[:, 1:] = candidate[:, :-1]
    return candidate & ~starts & previous


@pytest.mark.parametrize("selection", ["exact", "bernoulli"])
def test_whole_words_chosen_together_with_80_10_10_per_piece(batch_ids, synth, selection):
    ids, special, attention = batch_ids
    starts = synth.make_word_starts(ids, seed=5)
    masked, labels = run(ids, special, attention, word_starts=starts, selection=selection,
                         max_predictions=30)
    assert_invariants(ids, special, masked, labels)
    chosen = labels != IGNORE_INDEX
    piece = continuation_pieces(starts, special)
    rows, cols = piece.nonzero(as_tuple=True)
    # Every piece shares its predecessor's fate, so a word is chosen whole or not at all.
    assert torch.equal(chosen[rows, cols], chosen[rows, cols - 1])
    rate = chosen.sum().item() / (~special).sum().item()
    assert rate == pytest.approx(0.15, abs=0.01)
    assert (chosen.sum(1) <= 30).all()
    as_mask, as_random, kept = split_outcomes(ids, masked, labels)
    assert as_mask == pytest.approx(0.8, abs=0.01)
    assert as_random == pytest.approx(0.1, abs=0.01)
    assert kept == pytest.approx(0.1, abs=0.01)
    # Per piece, not per word (Hugging Face forces [MASK] on whole words): given that the
    # previous piece of a chosen word became [MASK], this one still does only ~80 % of the time.
    in_chosen = chosen[rows, cols]
    after_mask = in_chosen & (masked[rows, cols - 1] == 4)
    conditional = (masked[rows, cols][after_mask] == 4).float().mean().item()
    assert conditional == pytest.approx(0.8, abs=0.03)
    assert in_chosen.sum() > 2000  # enough multi-piece words for the statistic


def test_whole_word_budget_never_overflows(batch_ids, synth):
    ids, special, attention = batch_ids
    starts = synth.make_word_starts(ids, seed=6)
    _, labels = run(ids, special, attention, word_starts=starts, max_predictions=7)
    counts = (labels != IGNORE_INDEX).sum(1)
    budget = prediction_budget((~special).sum(1), 0.15, 7)
    assert (counts <= budget).all()
    assert (counts == budget).float().mean() > 0.95  # single-piece words fill the gaps


def googles_greedy(lengths, order, eligible, budget):
    """Google's loop: visit words in order, skip one that would overflow the budget."""
    taken, count = set(), 0
    for slot in order:
        if not eligible[slot]:
            continue
        if count >= budget:
            break
        if count + lengths[slot] > budget:
            continue
        taken.add(slot)
        count += lengths[slot]
    return taken


def test_vectorised_greedy_equals_googles_loop():
    g = torch.Generator().manual_seed(11)
    batch, slots = 300, 40
    word_len = torch.randint(1, 6, (batch, slots), generator=g)
    n_words = torch.randint(0, slots + 1, (batch,), generator=g)
    eligible = torch.arange(slots) < n_words[:, None]
    budget = torch.randint(0, 25, (batch,), generator=g)
    state = g.get_state()
    chosen = _greedy_words(word_len, eligible, budget, g)
    g.set_state(state)  # replay the visit order the function drew
    scores = torch.rand(word_len.shape, generator=g).masked_fill(~eligible, 2.0)
    order = scores.argsort(dim=1)
    for row in range(batch):
        expected = googles_greedy(word_len[row].tolist(), order[row].tolist(),
                                  eligible[row].tolist(), int(budget[row]))
        assert set(chosen[row].nonzero().flatten().tolist()) == expected, f"row {row}"


def test_word_starts_from_continuation_table():
    continuation = torch.zeros(10, dtype=torch.bool)
    continuation[[7, 8]] = True  # e.g. "##ing", "##s"
    ids = torch.tensor([[2, 5, 7, 8, 6, 3]])
    assert word_starts_from_continuation(ids, continuation).tolist() == [
        [True, True, False, False, True, True]]


# --------------------------------------------------------------------------- config and errors


def test_masking_config_finds_specials_by_id(batch_ids):
    ids, _, attention = batch_ids
    config = MaskingConfig(vocab_size=1000, mask_token_id=4, special_ids=SPECIAL).validate()
    masked, labels = config.apply(ids, generator=torch.Generator().manual_seed(0),
                                  attention_mask=attention)
    special = torch.isin(ids, torch.tensor(SPECIAL)) | (attention == 0)
    assert_invariants(ids, special, masked, labels)


@pytest.mark.parametrize("field,value", [
    ("rate", 1.5), ("mask_fraction", 0.95), ("max_predictions", 0), ("selection", "sometimes"),
    ("mask_token_id", 5000),
])
def test_bad_config_names_the_field(field, value):
    config = MaskingConfig(**{"vocab_size": 1000, "mask_token_id": 4, field: value})
    with pytest.raises(ConfigError, match=field):
        config.validate()


def test_shape_mismatch_is_an_input_error():
    with pytest.raises(InputError, match="special_tokens_mask"):
        mask_tokens(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 4, dtype=torch.bool),
                    vocab_size=10, mask_token_id=4, generator=torch.Generator())
