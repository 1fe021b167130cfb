"""Batches: padding, label alignment, device moves, and dynamic masking per draw."""

from __future__ import annotations

import pytest
import torch

from bertkit.data.batch import Batch, DynamicMaskingCollator, Example, collate, pad_sequences
from bertkit.data.masking import IGNORE_INDEX, MaskingConfig
from bertkit.errors import UsageError

PAD, CLS, SEP, MASK = 0, 2, 3, 4
SPECIAL = (0, 1, 2, 3, 4)


def test_pad_sequences_to_longest_or_multiple():
    out = pad_sequences([[5, 6, 7], torch.tensor([8])], pad_value=PAD)
    assert out.tolist() == [[5, 6, 7], [8, 0, 0]] and out.dtype == torch.long
    assert pad_sequences([[5] * 9], pad_value=1, pad_to_multiple_of=8).shape == (1, 16)
    assert pad_sequences([[5] * 8], pad_value=1, pad_to_multiple_of=8).shape == (1, 8)


def test_collate_pads_every_field_consistently():
    examples = [
        Example(torch.tensor([2, 5, 3, 6, 3]), torch.tensor([0, 0, 0, 1, 1]),
                torch.tensor([-100, 5, -100, -100, -100]), 1),
        Example(torch.tensor([2, 7, 3]), torch.tensor([0, 0, 0]),
                torch.tensor([-100, -100, -100]), 0),
    ]
    batch = collate(examples, pad_id=PAD)
    assert batch.input_ids.tolist() == [[2, 5, 3, 6, 3], [2, 7, 3, 0, 0]]
    assert batch.attention_mask.tolist() == [[1] * 5, [1, 1, 1, 0, 0]]
    assert batch.token_type_ids.tolist() == [[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]]
    assert batch.mlm_labels[1].tolist() == [IGNORE_INDEX] * 5
    assert batch.next_sentence_labels.tolist() == [1, 0]
    assert len(batch) == 2
    plain = collate([Example(torch.tensor([2, 3]))], pad_id=PAD, pad_to_multiple_of=8)
    assert plain.mlm_labels is None and plain.next_sentence_labels is None
    assert plain.input_ids.shape == (1, 8) and plain.token_type_ids.sum() == 0


def test_collate_refuses_mixed_labels_and_empty_lists():
    with pytest.raises(UsageError, match="1 of 2 examples have next_sentence_label"):
        collate([Example(torch.tensor([2]), next_sentence_label=1), Example(torch.tensor([2]))],
                pad_id=PAD)
    with pytest.raises(UsageError):
        collate([], pad_id=PAD)


def test_batch_to_moves_every_present_tensor():
    batch = collate([Example(torch.tensor([2, 5, 3]), next_sentence_label=0)], pad_id=PAD)
    moved = batch.to("meta")
    assert isinstance(moved, Batch) and moved is not batch
    assert all(t.device.type == "meta" for t in
               (moved.input_ids, moved.token_type_ids, moved.attention_mask,
                moved.next_sentence_labels))
    assert moved.mlm_labels is None and batch.input_ids.device.type == "cpu"


def make_collator(seed: int, **kwargs) -> DynamicMaskingCollator:
    config = MaskingConfig(vocab_size=1000, mask_token_id=MASK, special_ids=SPECIAL,
                           **kwargs.pop("masking", {}))
    return DynamicMaskingCollator(config, pad_id=PAD, seed=seed, **kwargs)


def sequences(n: int = 64) -> list[list[int]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        body = torch.randint(5, 1000, (40 + i % 30,), generator=g).tolist()
        body[len(body) // 2] = SEP  # a document separator inside a packed sequence
        out.append([CLS, *body, SEP])
    return out


def test_dynamic_masking_draws_a_fresh_mask_each_time():
    collator = make_collator(0)
    seqs = sequences()
    first, second = collator(seqs), collator(seqs)
    assert not torch.equal(first.mlm_labels, second.mlm_labels)
    for batch in (first, second):
        chosen = batch.mlm_labels != IGNORE_INDEX
        original = pad_sequences(seqs, pad_value=PAD)
        assert not (chosen & torch.isin(original, torch.tensor(SPECIAL))).any()
        assert torch.equal(torch.where(chosen, batch.mlm_labels, batch.input_ids), original)
        assert batch.next_sentence_labels is None and batch.token_type_ids.sum() == 0


def test_dynamic_masking_is_reproducible_and_resumable():
    seqs = sequences()
    a, b = make_collator(5), make_collator(5)
    assert torch.equal(a(seqs).input_ids, b(seqs).input_ids)
    state = a.state_dict()
    expected = a(seqs)
    resumed = make_collator(99)
    resumed.load_state_dict(state)
    got = resumed(seqs)
    assert torch.equal(got.input_ids, expected.input_ids)
    assert torch.equal(got.mlm_labels, expected.mlm_labels)
    assert not torch.equal(make_collator(6)(seqs).mlm_labels, expected.mlm_labels)


def test_dynamic_whole_word_masking_with_a_continuation_table():
    continuation = torch.zeros(1000, dtype=torch.bool)
    continuation[500:] = True  # ids >= 500 continue the previous word
    collator = make_collator(1, word_continuation=continuation,
                             masking={"selection": "bernoulli"}, pad_to_multiple_of=8)
    seqs = sequences(200)
    batch = collator(seqs)
    original = pad_sequences(seqs, pad_value=PAD, pad_to_multiple_of=8)
    chosen = batch.mlm_labels != IGNORE_INDEX
    candidate = ~torch.isin(original, torch.tensor(SPECIAL))
    piece = candidate[:, 1:] & candidate[:, :-1] & continuation[original[:, 1:]]
    assert torch.equal(chosen[:, 1:][piece], chosen[:, :-1][piece])
    assert chosen.sum() / candidate.sum() == pytest.approx(0.15, abs=0.02)
