"""Attention on a packed batch in buckets of similar length, instead of the whole padded batch.

Packing (:mod:`.packing`) runs the position-wise work of a padded batch on its real tokens, but
attention needs each sequence whole, and padded to the longest it costs B·T² per head where the
real work is ΣLᵢ²: on 64 real sentences (lengths 5..55, padded to 55) that sum is 19 % of the
padded area, and the padded attention was 17 % of the whole forward pass. One attention call per
sequence wastes nothing but pays a fixed overhead per call (views, the kernel's set-up), which
on such short sentences costs more than the padding saved; so the sequences, sorted by length,
are cut into a few buckets by a small dynamic programme that weighs each call's overhead
against the padded slots it would compute. Measured on that batch (MiniLM, one thread, CPU
time per layer): padded with the unpack/pack copies 35 ms, one call per sequence 16–20 ms,
9 buckets 10 ms.

Inside a bucket the padded slots read a real row of their own sequence (no zero row is built);
the key bias hides them, and their query outputs are never read back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from bertkit.model.inputs import padding_bias

CALL_OVERHEAD = 1.5e6
"""Fixed cost of one more attention call, in multiply-adds (about 2,000 query·key pairs of a
384-wide model): the best bucketing of the measured batch was flat between 1/4 and 1× this."""

SLOT_OVERHEAD_KEYS = 64
"""Cost of gathering and copying one query slot, in key positions' worth of multiply-adds."""


class Attend(Protocol):
    """:meth:`bertkit.model.bert.SelfAttention.attend`'s signature."""

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None,
                 return_probs: bool, head_mask: Tensor | None = None
                 ) -> tuple[Tensor, Tensor | None]: ...


@dataclass(frozen=True)
class Bucket:
    """Sequences attended in one call: ``size`` of them, padded to ``length``."""

    rows: Tensor            # (size · length,) packed row read by each slot
    size: int
    length: int
    bias: Tensor | None     # (size, 1, 1, length) additive key bias; None when nothing is padded


def bucket_groups(lengths: np.ndarray, width: int) -> list[np.ndarray]:
    """Sequence indices of each bucket, longest first, minimising Σ over buckets of
    ``CALL_OVERHEAD + size · length · (length + SLOT_OVERHEAD_KEYS) · 2·width`` (the
    multiply-adds of scores and weighted values, plus copying). Sequences of equal length
    always share a bucket, so the programme runs over distinct lengths: O(distinct²)."""
    order = np.argsort(-lengths, kind="stable")
    distinct, counts = np.unique(lengths[order][::-1], return_counts=True)
    distinct, counts = distinct[::-1], counts[::-1]                    # longest first
    before = np.concatenate([[0], np.cumsum(counts)])                  # sequences before group g
    slot_cost = distinct * (distinct + SLOT_OVERHEAD_KEYS) * 2.0 * width
    best = np.zeros(len(distinct) + 1)
    start = np.zeros(len(distinct) + 1, dtype=np.int64)
    for end in range(1, len(distinct) + 1):     # a bucket of groups [i, end): longest is i
        cost = best[:end] + CALL_OVERHEAD + (before[end] - before[:end]) * slot_cost[:end]
        start[end] = int(np.argmin(cost))
        best[end] = cost[start[end]]
    cuts, end = [], len(distinct)
    while end > 0:
        cuts.append((start[end], end))
        end = start[end]
    return [order[before[i]:before[j]] for i, j in reversed(cuts)]


class LengthBuckets:
    """The bucketing of one packed batch, built once and used by every layer."""

    def __init__(self, lengths: Tensor, width: int, dtype: torch.dtype):
        """``lengths``: (B,) real tokens per sequence, every one ≥ 1, whose rows lie
        consecutively in the packed batch (batch-major); ``width`` the attention width."""
        offsets = torch.cumsum(lengths, 0) - lengths                    # first packed row
        self.buckets: list[Bucket] = []
        first_slot = torch.empty_like(lengths)     # each sequence's first slot in the output
        slots = 0
        for group in bucket_groups(lengths.numpy(), width):
            index = torch.from_numpy(group)
            have, length = lengths[index], int(lengths[index].max())
            positions = torch.arange(length)
            rows = offsets[index, None] + torch.minimum(positions, have[:, None] - 1)
            padded = positions >= have[:, None]                         # (size, length)
            bias = padding_bias(~padded, dtype) if bool(padded.any()) else None
            self.buckets.append(Bucket(rows.flatten(), len(group), length, bias))
            first_slot[index] = slots + torch.arange(len(group)) * length
            slots += len(group) * length
        within = torch.arange(int(lengths.sum())) - torch.repeat_interleave(offsets, lengths)
        self.back = torch.repeat_interleave(first_slot, lengths) + within  # packed row → slot

    def attend(self, attend: Attend, q: Tensor, k: Tensor, v: Tensor,
               head_mask: Tensor | None) -> Tensor:
        """Context of every packed row: (R, W) queries, keys, values → (R, W)."""
        pieces = []
        for bucket in self.buckets:
            q_b, k_b, v_b = (t.index_select(0, bucket.rows).view(bucket.size, bucket.length, -1)
                             for t in (q, k, v))
            context, _ = attend(q_b, k_b, v_b, bucket.bias, False, head_mask)
            pieces.append(context.reshape(bucket.size * bucket.length, -1))
        slots = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        return slots.index_select(0, self.back)
