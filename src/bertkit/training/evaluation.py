"""Held-out evaluation: mean loss and metrics over a re-iterable of batches, on every rank.

Separate from the loop because it must leave the run untouched: RNGs, the eval data's position
and the model's train/eval mode are all put back, so evaluating never changes what training
does next.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from bertkit.errors import UsageError
from bertkit.training.batches import COUNT_METRICS, LossFn, call_loss_fn, move_to_device
from bertkit.training.distributed import DistContext
from bertkit.training.precision import autocast
from bertkit.training.rng import preserved_rng
from bertkit.training.tallies import accumulate, as_scalar


@torch.no_grad()
def evaluate_batches(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterable[Any],
    *,
    dist: DistContext,
    precision: str,
    max_batches: int | None,
    generators: Mapping[str, torch.Generator],
) -> dict[str, float]:
    """Mean of ``loss_fn``'s loss and metrics over at most ``max_batches`` batches per rank,
    averaged over batches and ranks (``model`` is put in eval mode, then back)."""
    device = dist.device
    position = batches.state_dict() if hasattr(batches, "state_dict") else None
    was_training = model.training
    model.eval()
    sums: dict[str, float | torch.Tensor] = {}
    count = 0
    try:
        with preserved_rng(generators):
            for batch in itertools.islice(batches, max_batches):
                batch = move_to_device(batch, device)
                with autocast(precision, device):
                    loss, metrics = call_loss_fn(loss_fn, model, batch)
                for name, value in {"loss": loss, **metrics}.items():
                    if name not in COUNT_METRICS:
                        sums[name] = accumulate(sums.get(name, 0.0), value)
                count += 1
    finally:
        model.train(was_training)
        if position is not None:
            batches.load_state_dict(position)  # type: ignore[attr-defined]
    names = sorted(sums)
    local = torch.stack([as_scalar(v, device) for v in [*(sums[n] for n in names), count]])
    totals = dist.all_reduce_sum(local).tolist()
    if totals[-1] == 0:
        raise UsageError("eval_data yielded no batches")
    return {name: value / totals[-1] for name, value in zip(names, totals, strict=False)}
