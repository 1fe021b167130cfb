"""Running a padded batch's position-wise work on its real tokens only.

Packing reads the mask's values (how many real tokens, where), a host synchronisation the
core encoder never makes; it belongs to the CPU inference fast form.
"""

from __future__ import annotations

import torch
from torch import Tensor

from bertkit.inference.fastpath.buckets import Attend, LengthBuckets


class Packing:
    """Where the real tokens of a padded batch are, to run position-wise work on them alone.

    A padded batch spends most of its time on rows nobody reads: the Q/K/V and output
    projections, the feed-forward network, residual adds and LayerNorms all work position by
    position, so with 66 % padding (64 real sentences of 10..128 tokens padded to the longest)
    two thirds of every layer's matrix multiplies are waste. Packed, those run on a (R, ·)
    matrix of the R real tokens; only attention, which needs each sequence whole, sees the
    (B, T, ·) layout, and :meth:`attend` runs it in buckets of similar length
    (:mod:`.buckets`) rather than padded to the longest. Real positions get the same values as
    on the padded path (up to float rounding); padded positions of the outputs hold zeros
    instead of the padded path's (meaningless) values.
    """

    def __init__(self, keep: Tensor):
        self.batch, self.length = keep.shape
        self.index = keep.flatten().nonzero().squeeze(1)  # (R,) flat positions b·T + t
        self.lengths = keep.sum(1)                         # (B,) real tokens per sequence
        self._buckets: dict[tuple[int, torch.dtype], LengthBuckets] = {}

    def pack(self, x: Tensor) -> Tensor:
        """(B, T, C) → (R, C): the rows of real tokens, in batch-major order."""
        return x.reshape(self.batch * self.length, x.shape[-1]).index_select(0, self.index)

    def unpack(self, x: Tensor) -> Tensor:
        """(R, C) → (B, T, C), zeros at padded positions."""
        out = x.new_zeros(self.batch * self.length, x.shape[-1])
        return out.index_copy_(0, self.index, x).view(self.batch, self.length, x.shape[-1])

    def attend(self, attend: Attend, q: Tensor, k: Tensor, v: Tensor,
               head_mask: Tensor | None = None) -> Tensor:
        """Packed (R, W) queries, keys and values → (R, W) context, each sequence attending to
        its own real tokens, in length buckets (built on the first layer's call)."""
        key = (q.shape[-1], q.dtype)
        if key not in self._buckets:
            self._buckets[key] = LengthBuckets(self.lengths, *key)
        return self._buckets[key].attend(attend, q, k, v, head_mask)


def packing_for(attention_mask: Tensor | None, min_padding: float,
                flops_per_token: float, min_saved_flops: float) -> Packing | None:
    """A :class:`Packing` when it pays, else ``None``.

    It pays when at least ``min_padding`` of the batch is padding (a conservative share: the
    gather and scatters are memory-bound copies costing a few per cent of a layer, the saved
    matrix multiplies are that share of it) and the padded positions carry at least
    ``min_saved_flops`` of a layer's position-wise matrix multiplies (``flops_per_token``
    each): packing adds a few small operations per layer, tens of µs, which three padded tokens
    of MiniLM repay but hundreds of a toy model (hidden 32) would not.
    Batches whose position 0 is padded (left padding) stay on the padded path: the pooler
    reads position 0 of every row, and there the padded path's value is what the reference
    implementation returns.
    """
    if attention_mask is None or min_padding > 1.0:
        return None
    keep = attention_mask.bool()                                           # (B, T)
    padded = keep.numel() - int(keep.sum())
    if padded == 0 or padded < min_padding * keep.numel() \
            or padded * flops_per_token < min_saved_flops:
        return None
    if not bool(keep[:, 0].all()):
        return None
    return Packing(keep)
