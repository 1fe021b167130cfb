"""Running sums between two log records, kept on the device (no per-step synchronisation).

Saved in checkpoints so that a resumed run writes the same log records as an uninterrupted
one (throughput aside).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch

from bertkit.training.batches import COUNT_METRICS, TOKENS_METRIC, Metrics, leading_size


def accumulate(total: float | torch.Tensor, value: float | torch.Tensor) -> float | torch.Tensor:
    """Running sum that stays a Python number until a tensor joins it: no device copy, and
    no waiting for the device, per micro-batch."""
    if isinstance(value, torch.Tensor):
        return total + value.detach().float().reshape(())
    return total + float(value)


def as_scalar(value: float | torch.Tensor, device: torch.device) -> torch.Tensor:
    """``value`` as a 0-d float32 tensor on ``device``, ready to stack for an all-reduce."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(device, torch.float32).reshape(())
    return torch.tensor(float(value), device=device)


def _to_cpu(value: float | torch.Tensor) -> float | torch.Tensor:
    return value.cpu() if isinstance(value, torch.Tensor) else value


def _to_device(value: float | torch.Tensor, device: torch.device) -> float | torch.Tensor:
    return value.to(device) if isinstance(value, torch.Tensor) else value


class Tallies:
    """Loss, metric and example sums since the last log record."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.counts_tokens = False  # loss_fn reports "tokens": throughput in tokens/s
        self.reset()

    def reset(self) -> None:
        """Start a new log interval (``counts_tokens`` carries over: it describes the run)."""
        self.loss_sum = torch.zeros((), device=self.device)
        self.steps = 0
        self.metric_sums: dict[str, float | torch.Tensor] = {}
        self.micro = 0
        self.examples: float | torch.Tensor = 0.0
        self.since = time.monotonic()
        self.grad_norm: torch.Tensor | None = None

    def add_micro(self, metrics: Metrics, batch: Any) -> None:
        """Count one micro-batch's metrics and examples (tokens when ``loss_fn`` reports them)."""
        counted = metrics.get(TOKENS_METRIC)
        self.counts_tokens = self.counts_tokens or counted is not None
        self.examples = accumulate(
            self.examples, counted if counted is not None else leading_size(batch)
        )
        for name, value in metrics.items():
            if name not in COUNT_METRICS:
                self.metric_sums[name] = accumulate(self.metric_sums.get(name, 0.0), value)
        self.micro += 1

    def add_step(self, loss: torch.Tensor) -> None:
        """Count one optimizer step's mean loss."""
        self.loss_sum += loss
        self.steps += 1

    def state_dict(self) -> dict[str, Any]:
        """The sums of the interval in progress, on the CPU (checkpoints load weights-only)."""
        return {
            "loss_sum": self.loss_sum.cpu(),
            "steps": self.steps,
            "metric_sums": {name: _to_cpu(value) for name, value in self.metric_sums.items()},
            "micro": self.micro,
            "examples": _to_cpu(self.examples),
            "counts_tokens": self.counts_tokens,
        }

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        """Continue the interval a checkpoint saved (nothing to do for an empty state)."""
        if not state:
            return
        self.loss_sum = state["loss_sum"].to(self.device)
        self.steps = int(state["steps"])
        self.metric_sums = {k: _to_device(v, self.device) for k, v in state["metric_sums"].items()}
        self.micro = int(state["micro"])
        self.examples = _to_device(state["examples"], self.device)
        self.counts_tokens = bool(state["counts_tokens"])
