"""Where a run or a model runs: the one place a device name becomes a ``torch.device``.

Training, fine-tuning and inference all accept the same names (``auto``, ``cpu``, ``cuda``,
``cuda:N``), so they share one resolver and one set of error messages. It lives with the model
(:mod:`bertkit.model.placement`), because ``from_pretrained(device=...)`` reads the same names.
"""

from __future__ import annotations

from bertkit.model.placement import resolve_device

__all__ = ["resolve_device"]
