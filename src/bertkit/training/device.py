"""Where a run or a model runs: the one place a device name becomes a ``torch.device``.

Training, fine-tuning and inference all accept the same names (``auto``, ``cpu``, ``cuda``,
``cuda:N``), so they share one resolver and one set of error messages.
"""

from __future__ import annotations

import torch

from bertkit.errors import UsageError


def resolve_device(device: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` (or ``None``) → this process's GPU if CUDA is present, else the CPU; a bare
    ``"cuda"`` means GPU number ``local_rank`` so each process on a node gets its own. A device
    CUDA cannot serve raises :class:`UsageError` here, not at the first tensor moved."""
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        device = f"cuda:{local_rank}"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"device {device!r} asked for, but this PyTorch has no usable CUDA; use 'cpu'"
        )
    return resolved
