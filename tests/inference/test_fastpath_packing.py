"""The fast form's speed paths compute what the core encoder computes.

Each fast path is forced on a tiny model (the thresholds that choose it in real use are set to
zero) and compared with the same model on the plain path: packed real tokens vs padded
batches (:class:`bertkit.inference.fastpath.packing.Packing`, with attention in length
buckets, :mod:`bertkit.inference.fastpath.buckets`), split vs fused Q/K/V
projections and row-blocked vs whole feed-forward
(:data:`bertkit.inference.fastpath.layers.BUFFER_BYTES`). Then the choice itself: when
packing is used, and what padded positions hold.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertkit.inference.fastpath import buckets, to_fast_form
from bertkit.inference.fastpath import layers as fast_layers
from bertkit.inference.fastpath.layers import FastBert, feed_forward_blocks, split_projection
from bertkit.inference.fastpath.packing import Packing, packing_for
from bertkit.model import Bert, BertConfig

TOL = {"atol": 1e-5, "rtol": 0.0}


@pytest.fixture
def tiny_config() -> BertConfig:
    """The model tests' tiny encoder: odd sizes so shape mix-ups cannot hide."""
    return BertConfig(vocab_size=101, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                      intermediate_size=37, max_position_embeddings=40, type_vocab_size=2)


def make_model(config: BertConfig, seed: int = 0) -> FastBert:
    """A core encoder in its fast form, unprepacked so that it still computes gradients."""
    torch.manual_seed(seed)
    return to_fast_form(Bert(config).eval(), prepack=False)


def ragged_batch(config: BertConfig, lengths: list[int], seed: int = 0):
    """Right-padded ids of the given lengths; the padded slots hold arbitrary real ids."""
    gen = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(1, config.vocab_size, (len(lengths), width), generator=gen)
    types = torch.randint(0, config.type_vocab_size, (len(lengths), width), generator=gen)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    return ids, types, mask


def forced(model: FastBert, packed: bool) -> FastBert:
    """Pin the packing decision of ``model`` (an instance setting; the class keeps its own)."""
    model.unpad_min_padding = 0.0 if packed else 2.0
    model.unpad_min_saved_flops = 0.0
    return model


def run(model: Bert, ids, types, mask, **kwargs):
    with torch.no_grad():
        return model(ids, mask, types, **kwargs)


def test_packing_round_trip_and_zero_fill():
    keep = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    packing = Packing(keep)
    x = torch.arange(3 * 4 * 2, dtype=torch.float32).view(3, 4, 2)
    packed = packing.pack(x)
    assert packed.shape == (8, 2)
    torch.testing.assert_close(packed, x[keep])  # row-major order of the real tokens
    unpacked = packing.unpack(packed)
    torch.testing.assert_close(unpacked[keep], x[keep])
    assert unpacked[~keep].abs().sum() == 0


@pytest.mark.parametrize("lengths", [[13, 4, 9, 1], [2, 13, 13, 7]])
def test_packed_path_equals_padded_path_at_real_positions(tiny_config, lengths):
    ids, types, mask = ragged_batch(tiny_config, lengths)
    keep = mask.bool()
    padded = run(forced(make_model(tiny_config), packed=False), ids, types, mask,
                 output_hidden_states=True, output_attentions=True)
    packed = run(forced(make_model(tiny_config), packed=True), ids, types, mask,
                 output_hidden_states=True, output_attentions=True)
    torch.testing.assert_close(packed.last_hidden_state[keep], padded.last_hidden_state[keep],
                               **TOL)
    torch.testing.assert_close(packed.pooler_output, padded.pooler_output, **TOL)
    assert len(packed.hidden_states) == len(padded.hidden_states) == 4
    for a, b in zip(packed.hidden_states, padded.hidden_states, strict=True):
        torch.testing.assert_close(a[keep], b[keep], **TOL)
    for a, b in zip(packed.attentions, padded.attentions, strict=True):
        # rows of real queries (B, N, T, T) → (B, T, N, T)[keep]: every key column compared,
        # so a padded key that gained weight would show.
        torch.testing.assert_close(a.transpose(1, 2)[keep], b.transpose(1, 2)[keep], **TOL)
    # The documented padded-position values: zeros in the layer outputs.
    assert packed.last_hidden_state[~keep].abs().sum() == 0
    for layer_output in packed.hidden_states[1:]:
        assert layer_output[~keep].abs().sum() == 0


def test_packed_path_matches_each_sequence_alone(tiny_config):
    lengths = [11, 3, 7]
    ids, types, mask = ragged_batch(tiny_config, lengths, seed=3)
    model = forced(make_model(tiny_config), packed=True)
    batched = run(model, ids, types, mask)
    for row, n in enumerate(lengths):
        alone = run(model, ids[row:row + 1, :n], types[row:row + 1, :n], None)
        torch.testing.assert_close(batched.last_hidden_state[row, :n], alone.last_hidden_state[0],
                                   **TOL)
        torch.testing.assert_close(batched.pooler_output[row], alone.pooler_output[0], **TOL)


def test_packed_path_gradients_equal_padded_path(tiny_config):
    """Training on packed batches: same loss and same parameter gradients (dropout off)."""
    ids, types, mask = ragged_batch(tiny_config, [12, 5, 8], seed=5)
    keep = mask.bool()
    grads = []
    for packed in (False, True):
        model = forced(make_model(tiny_config), packed=packed)
        out = model(ids, mask, types)
        loss = (out.last_hidden_state[keep] ** 2).mean() + out.pooler_output.sum()
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, **TOL, msg=name)


def test_inputs_embeds_on_the_packed_path(tiny_config):
    ids, types, mask = ragged_batch(tiny_config, [9, 4], seed=7)
    model = forced(make_model(tiny_config), packed=True)
    embeds = model.embeddings.word(ids)
    from_ids = run(model, ids, types, mask).last_hidden_state
    with torch.no_grad():
        from_embeds = model(None, mask, types, inputs_embeds=embeds).last_hidden_state
    torch.testing.assert_close(from_embeds, from_ids, **TOL)


def test_packing_choice():
    mask = torch.ones(4, 10, dtype=torch.long)
    mask[0, 5:] = 0                                    # 5 of 40 padded: 12.5 %
    assert packing_for(mask, 0.1, 1e6, 1e6) is not None
    assert packing_for(mask, 0.2, 1e6, 1e6) is None    # not enough padding
    assert packing_for(mask, 0.1, 1e3, 1e6) is None    # too little work saved (a toy model)
    assert packing_for(torch.ones(4, 10), 0.0, 1e6, 0.0) is None  # nothing padded
    assert packing_for(None, 0.0, 1e6, 0.0) is None
    left = mask.flip(1)                                # left padding: position 0 is padded
    assert packing_for(left, 0.1, 1e6, 1e6) is None


def test_default_thresholds_pack_a_ragged_batch_of_a_real_sized_model():
    """With the class defaults, a MiniLM-sized model packs a 66 %-padded batch, and a toy model
    (or a batch without padding) stays on the padded path."""
    config = BertConfig(vocab_size=50, hidden_size=384, num_hidden_layers=1,
                        num_attention_heads=12, intermediate_size=1536)
    h, i = config.hidden_size, config.intermediate_size
    per_token = 2.0 * (4 * h * h + 2 * h * i)
    mask = torch.zeros(4, 30, dtype=torch.long)
    for row, n in enumerate([30, 5, 8, 3]):
        mask[row, :n] = 1
    assert packing_for(mask, FastBert.unpad_min_padding, per_token, FastBert.unpad_min_saved_flops)
    assert not packing_for(torch.ones_like(mask), FastBert.unpad_min_padding, per_token,
                           FastBert.unpad_min_saved_flops)
    toy = 2.0 * (4 * 32 * 32 + 2 * 32 * 37)
    assert not packing_for(mask, FastBert.unpad_min_padding, toy, FastBert.unpad_min_saved_flops)


def test_left_padded_batch_is_correct(tiny_config):
    ids, types, mask = ragged_batch(tiny_config, [10, 6], seed=9)
    ids, types, mask = ids.flip(1), types.flip(1), mask.flip(1)
    keep = mask.bool()
    padded = run(forced(make_model(tiny_config), packed=False), ids, types, mask)
    packed = run(forced(make_model(tiny_config), packed=True), ids, types, mask)
    torch.testing.assert_close(packed.last_hidden_state, padded.last_hidden_state, **TOL)
    assert keep[:, 0].logical_not().any()


def test_split_projections_and_row_blocks_equal_fused(tiny_config, monkeypatch):
    """Above BUFFER_BYTES, Q/K/V come from three projections and the feed-forward network runs
    in row blocks: same numbers as one fused projection and one whole pass."""
    ids, types, mask = ragged_batch(tiny_config, [13, 13, 9, 13, 12], seed=11)
    model = forced(make_model(tiny_config), packed=False)
    whole = run(model, ids, types, mask, output_hidden_states=True)
    monkeypatch.setattr(fast_layers, "BUFFER_BYTES", 512)  # every layer splits, 7-10 blocks
    layer = model.layers[0]
    rows = ids.numel()
    assert rows * 3 * tiny_config.hidden_size * 4 > fast_layers.BUFFER_BYTES
    assert rows * tiny_config.intermediate_size * 4 > 5 * fast_layers.BUFFER_BYTES
    split = run(model, ids, types, mask, output_hidden_states=True)
    for a, b in zip(split.hidden_states, whole.hidden_states, strict=True):
        torch.testing.assert_close(a, b, **TOL)
    x = torch.randn(2, 13, tiny_config.hidden_size)
    blocks = feed_forward_blocks(layer.feed_forward, x, layer.dropout)
    monkeypatch.setattr(fast_layers, "BUFFER_BYTES", 2**40)
    torch.testing.assert_close(blocks, feed_forward_blocks(layer.feed_forward, x, layer.dropout),
                               **TOL)
    fused = [t.clone() for t in split_projection(layer.attention.qkv, x)]
    monkeypatch.setattr(fast_layers, "BUFFER_BYTES", 512)
    for a, b in zip(split_projection(layer.attention.qkv, x), fused, strict=True):
        torch.testing.assert_close(a, b, **TOL)


def test_row_blocks_carry_gradients(tiny_config, monkeypatch):
    monkeypatch.setattr(fast_layers, "BUFFER_BYTES", 512)
    model = make_model(tiny_config)
    x = torch.randn(3, 11, tiny_config.hidden_size, requires_grad=True)
    layer = model.layers[0]
    feed_forward_blocks(layer.feed_forward, x, layer.dropout).sum().backward()
    blocked = x.grad.clone()
    x.grad = None
    monkeypatch.setattr(fast_layers, "BUFFER_BYTES", 2**40)
    feed_forward_blocks(layer.feed_forward, x, layer.dropout).sum().backward()
    torch.testing.assert_close(blocked, x.grad, **TOL)


def test_bucket_groups_cover_every_sequence_once(monkeypatch):
    lengths = np.array([5, 30, 5, 12, 29, 1, 12])
    groups = buckets.bucket_groups(lengths, width=32)
    assert sorted(np.concatenate(groups).tolist()) == list(range(len(lengths)))
    maxima = [int(lengths[g].max()) for g in groups]
    assert maxima == sorted(maxima, reverse=True)                       # longest bucket first
    monkeypatch.setattr(buckets, "CALL_OVERHEAD", 0.0)                  # calls are free
    assert len(buckets.bucket_groups(lengths, width=32)) == 5           # one per distinct length
    monkeypatch.setattr(buckets, "CALL_OVERHEAD", 1e12)                 # calls are dear
    assert len(buckets.bucket_groups(lengths, width=32)) == 1           # the padded batch


@pytest.mark.parametrize("overhead", [0.0, 2e4], ids=["per-length", "mixed"])
def test_length_buckets_equal_the_padded_path(tiny_config, monkeypatch, overhead):
    """Buckets of one length (no bias) and of several (padded slots hidden by the bias), with
    a head mask, a repeated length and a mask with a hole: the padded path's values."""
    monkeypatch.setattr(buckets, "CALL_OVERHEAD", overhead)
    ids, types, mask = ragged_batch(tiny_config, [13, 4, 9, 1, 9, 12, 3], seed=13)
    mask[5, 6] = 0                                                      # a hole inside row 5
    keep = mask.bool()
    head_mask = torch.tensor([[1.0, 0.0, 1.0, 0.5]] * tiny_config.num_hidden_layers)
    padded = run(forced(make_model(tiny_config), packed=False), ids, types, mask,
                 head_mask=head_mask)
    packed_model = forced(make_model(tiny_config), packed=True)
    packing = packing_for(mask, 0.0, 1.0, 0.0)
    plan = buckets.LengthBuckets(packing.lengths, tiny_config.hidden_size, torch.float32)
    assert len(plan.buckets) == (6 if overhead == 0.0 else 3)
    packed = run(packed_model, ids, types, mask, head_mask=head_mask)
    torch.testing.assert_close(packed.last_hidden_state[keep], padded.last_hidden_state[keep],
                               **TOL)
    torch.testing.assert_close(packed.pooler_output, padded.pooler_output, **TOL)
