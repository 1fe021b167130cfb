"""The CPU fast form of a model: what :func:`to_fast_form` makes of a core model for inference.

The core encoder (:mod:`bertkit.model.bert`) is the architecture alone; everything here is
about running it faster on CPU (prepacked oneDNN weights, fused post-ops, packing of padded
batches, bounded intermediates) and computes the same outputs to float rounding.
"""

from __future__ import annotations

from bertkit.inference.fastpath.form import to_fast_form
from bertkit.inference.fastpath.twin import FastTwin

__all__ = ["FastTwin", "to_fast_form"]
