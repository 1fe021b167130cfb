"""Removing attention heads for good (Michel et al. 2019; ``transformers``' ``prune_heads``):
model surgery, kept out of the core network.

A pruned layer's attention has fewer heads: its query, key and value projections lose the
pruned heads' rows and its output projection their columns. ``config.pruned_heads`` records
every head removed, numbered as in the unpruned layer, so a saved model loads back with the
same shapes: :class:`~bertkit.model.bert.Bert` builds each layer with ``config.kept_heads``
heads. Which heads to remove is the question of :mod:`bertkit.analysis.pruning`.

Shape legend: H hidden, N heads the layer keeps, D head dim.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping

import torch
from torch import Tensor, nn

from bertkit.model.bert import Attention, Bert


def prune_heads(encoder: Bert, heads: Mapping[int, Collection[int]]) -> None:
    """Remove ``heads`` (layer → head numbers of the unpruned layer) from ``encoder`` in place
    and record them in its config. Heads pruned before are skipped. The whole request is
    checked first (:meth:`BertConfig.validate`: heads that exist, one head left per layer, no
    shared layers), so a refused request changes nothing."""
    config = encoder.config
    before = {layer: set(pruned) for layer, pruned in config.pruned_heads.items()}
    after = {**before}
    for layer, chosen in heads.items():
        after[layer] = after.get(layer, set()) | set(chosen)
    dataclasses.replace(config, pruned_heads=after).validate()
    for layer, removed in after.items():
        new = removed - before.get(layer, set())
        if new:
            remove_heads(encoder.layers[layer].attention, before.get(layer, set()), new)
            config.pruned_heads[layer] = sorted(removed)


def remove_heads(attention: Attention, pruned_before: Collection[int], new: set[int]) -> None:
    """Shrink ``attention``'s projections to the heads it keeps: ``new`` heads go, and the
    module's heads are those of the unpruned layer less ``pruned_before``, in order."""
    alive = [h for h in range(attention.num_heads + len(pruned_before))
             if h not in pruned_before]                              # unpruned numbers, in order
    kept = [position for position, head in enumerate(alive) if head not in new]
    D, width = attention.head_dim, attention.num_heads * attention.head_dim
    rows = torch.cat([torch.arange(p * D, (p + 1) * D) for p in kept])   # (N·D,)
    attention.qkv = select_features(attention.qkv, torch.cat([rows, rows + width,
                                                               rows + 2 * width]), dim=0)
    attention.output = select_features(attention.output, rows, dim=1)
    attention.num_heads = len(kept)


def select_features(linear: nn.Linear, index: Tensor, dim: int) -> nn.Linear:
    """A smaller copy of ``linear``: only the outputs (``dim=0``) or inputs (``dim=1``) at
    ``index``, with the same dtype, device and trainability."""
    weight = linear.weight.detach().index_select(dim, index.to(linear.weight.device))
    bias = linear.bias.detach()
    if dim == 0:
        bias = bias.index_select(0, index.to(bias.device))
    out_features, in_features = weight.shape
    smaller = nn.Linear(in_features, out_features, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        smaller.weight.copy_(weight)
        smaller.bias.copy_(bias)
    smaller.requires_grad_(linear.weight.requires_grad)
    return smaller
