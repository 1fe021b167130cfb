"""The demo's time budget: one wall clock, shared out among the steps that can use any amount
of time (pretraining, fine-tuning), and a way to size those steps before they start.

Why shares of *what is left* rather than fixed minutes: fetching, tokenizing and evaluating
take as long as the machine makes them take. Each budgeted step gets its share of the time
remaining when it starts, so a slow start shrinks every later step a little instead of pushing
the whole run past its budget, and a step that ends early leaves its time to the next ones.

Why a measured step time: the learning-rate schedule (warmup, then linear decay) needs the
number of steps in advance, and "as many as fit" depends on the machine. A few timed steps of
the real model on a batch of the real shape give that number; the trainer's own time budget
still stops a step that the estimate got wrong.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

#: Relative shares of the time left. ``reserve`` is what the showcase (fill-mask, similarity,
#: attention) and the report keep for themselves; a fine-tuning share includes its evaluation.
SHARES = {"pretrain": 0.42, "finetune-small": 0.13, "finetune-minilm": 0.31, "layers": 0.06,
          "translation": 0.12, "reserve": 0.08}
MIN_STEP_SECONDS = 5.0  # a training step's floor when the budget is already spent


class Clock:
    """Seconds spent and left of a budget of ``minutes``, and each step's share of them."""

    def __init__(self, minutes: float) -> None:
        self.total = minutes * 60.0
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return max(0.0, self.total - self.elapsed())

    def allot(self, *steps: str) -> float:
        """Seconds for ``steps`` together: their share of the time left, against the steps
        still to come (the first of ``steps`` and every later key of :data:`SHARES`)."""
        names = list(SHARES)
        pending = names[min(names.index(step) for step in steps):]
        return self.left() * sum(SHARES[s] for s in steps) / sum(SHARES[n] for n in pending)


def seconds_per_step(model: nn.Module, loss: Callable[[nn.Module], Tensor], *,
                     repeats: int = 3) -> float:
    """Median wall time of one training step (forward, backward, AdamW update) of ``model``;
    ``loss(model)`` runs the forward pass on a fixed batch. One untimed warm-up step first
    (allocator and kernel selection). The model is changed: pass a throwaway copy."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    times = []
    for index in range(repeats + 1):
        started = time.perf_counter()
        loss(model).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index:
            times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def idle_cores() -> int:
    """CPU cores not busy with other work (cores minus the 1-minute load average, at least
    1): on a shared machine, PyTorch threads beyond the idle cores spin and wait, and a small
    model's step gets several times slower, not faster."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return cores
    return max(1, min(cores, cores - round(load)))


# --------------------------------------------------------------------------- steps
