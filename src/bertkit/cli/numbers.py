"""Argument types for numeric flags, so that a zero, negative or huge value is refused by
argparse (``error: argument --batch-size: expected an integer >= 1, got '0'``) before any
file is read or model built.

Counts are capped at 2**31 - 1: beyond that no batch, length or step count is meaningful, and
PyTorch's int32 indexing would fail deep inside instead. Library code keeps its own checks;
these only make the command line fail early and name the flag.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

MAX_COUNT = 2**31 - 1
MAX_SEED = 2**32 - 1  # NumPy's limit; torch accepts more, but a seed must work everywhere


def count(minimum: int = 1, maximum: int = MAX_COUNT) -> Callable[[str], int]:
    """An integer in ``[minimum, maximum]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"expected an integer from {minimum} to {maximum}, got {text!r}")
        return value

    return parse


def real(minimum: float | None = None, maximum: float | None = None, *,
         above: bool = False, below: bool = False) -> Callable[[str], float]:
    """A finite float at least ``minimum`` (more than it with ``above``) and at most
    ``maximum`` (less than it with ``below``)."""
    low = "" if minimum is None else f"{'>' if above else '>='} {minimum:g}"
    high = "" if maximum is None else f"{'<' if below else '<='} {maximum:g}"
    wanted = " and ".join(part for part in (low, high) if part)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        too_low = minimum is not None and (value <= minimum if above else value < minimum)
        too_high = maximum is not None and (value >= maximum if below else value > maximum)
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(
                f"expected a finite number{' ' + wanted if wanted else ''}, got {text!r}")
        return value

    return parse


positive = count(1)
nonnegative = count(0)
index = count(-MAX_COUNT)  # a layer or head index; negative counts from the end
seed = count(0, MAX_SEED)
port = count(0, 65535)  # 0: any free port
positive_real = real(0, above=True)
nonnegative_real = real(0)
fraction = real(0, 1, below=True)  # a share held out: 0 (none) up to, not including, all
rate = real(0, 1, above=True)  # a probability that must leave something to do
