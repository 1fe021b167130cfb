"""Learning-rate schedules: linear warmup, then linear or cosine decay (or none).

The schedule is a pure function of the step so it can be tested at known steps and restored
exactly; :func:`build_scheduler` wraps it in a ``LambdaLR`` because that is what optimizers,
checkpoints and users already know how to save and inspect.

Convention: ``lr_factor(s)`` is the multiplier used by the update that *follows* ``s``
completed updates. Warmup reaches the full rate on update ``warmup_steps`` (never a wasted
update at lr 0, unlike ``step / warmup``), and decay reaches ``min_ratio`` just after the last
update, so the last update still moves the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bertkit.errors import ConfigError
from bertkit.training.config import SCHEDULES


def lr_factor(
    step: int, *, schedule: str, warmup_steps: int, total_steps: int, min_ratio: float = 0.0
) -> float:
    """Multiplier of the peak learning rate for the update after ``step`` completed updates."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "linear":
        return 1.0 - (1.0 - min_ratio) * progress
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class WarmupDecay:
    """``lr_factor`` with its settings bound: a callable ``LambdaLR`` can save and restore.

    A plain class (not a lambda) so ``LambdaLR.state_dict()`` records its fields, and a resumed
    run continues the schedule it started with.
    """

    schedule: str
    warmup_steps: int
    total_steps: int
    min_ratio: float = 0.0

    def __call__(self, step: int) -> float:
        return lr_factor(
            step,
            schedule=self.schedule,
            warmup_steps=self.warmup_steps,
            total_steps=self.total_steps,
            min_ratio=self.min_ratio,
        )


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    schedule: str,
    warmup_steps: int,
    total_steps: int,
    min_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` over :class:`WarmupDecay`; call ``.step()`` once per optimizer update."""
    factor = WarmupDecay(schedule, warmup_steps, total_steps, min_ratio)
    factor(0)  # fail on a bad schedule name now, not at the first step
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
