"""Sentence vectors as the client APIs send them: unit length, shortened, base64.

The model's vectors are plain lists of floats (JSON-ready); each API adds its own options:
OpenAI's ``dimensions`` (keep the first N, then rescale to unit length, as OpenAI's
``text-embedding-3`` models do — meaningful only for a model trained for it, Matryoshka-style)
and ``encoding_format: base64`` (the little-endian float32 bytes, which the ``openai`` client
asks for by default and decodes itself); TEI's ``normalize``.
"""

from __future__ import annotations

import base64
import math

import numpy as np


def unit(vector: list[float]) -> list[float]:
    """``vector`` scaled to length 1 (a zero vector stays zero)."""
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm > 0 else vector


def shorten(vector: list[float], dimensions: int | None) -> list[float]:
    """The first ``dimensions`` values at unit length; the vector itself when ``None`` or
    already that long."""
    if dimensions is None or dimensions >= len(vector):
        return vector
    return unit(vector[:dimensions])


def to_base64(vector: list[float]) -> str:
    """Little-endian float32 bytes, base64-encoded (OpenAI's ``encoding_format: base64``)."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
