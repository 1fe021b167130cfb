"""Mixed precision: which precisions a device can run, and the autocast context for one.

Checked once when the trainer is built, so an impossible setting fails before any step.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from bertkit.errors import ConfigError


def check_precision(precision: str, device: torch.device) -> None:
    """Raise :class:`ConfigError` when ``device`` cannot train in ``precision``."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"TrainConfig.precision='fp16' needs a CUDA device (loss scaling with GradScaler); "
            f"the device is {device}: use 'bf16' or 'fp32'"
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"TrainConfig.precision='bf16' is not supported by {torch.cuda.get_device_name()}: "
            "use 'fp16' or 'fp32'"
        )


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """The context forward passes run under: none for fp32, ``torch.autocast`` otherwise."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
