"""Counters and histograms in the Prometheus text exposition format (version 0.0.4).

A few dozen lines instead of a client library: the server exports three families (requests by
endpoint and status, request latency, batch size) plus two gauges, all updated from the event
loop thread, so no locking is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels, extra: tuple[str, str] | None = None) -> str:
    pairs = [*labels, extra] if extra else list(labels)
    if not pairs:
        return ""
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               for _, v in pairs)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(pairs, escaped, strict=True)) + "}"


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Counter:
    """A monotonically increasing count per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str):
        self.name, self.help = name, help_text
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def samples(self) -> list[str]:
        return [f"{self.name}{_labels(k)} {_number(v)}" for k, v in sorted(self.values.items())]


class Gauge:
    """A value read when scraped (queue depth, models loaded)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, read: Callable[[], dict[Labels, float]]):
        self.name, self.help, self.read = name, help_text, read

    def samples(self) -> list[str]:
        return [f"{self.name}{_labels(k)} {_number(v)}" for k, v in sorted(self.read().items())]


class Histogram:
    """Cumulative bucket counts, sum and count per label set."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]):
        self.name, self.help = name, help_text
        self.bounds = (*sorted(buckets), math.inf)
        self.series: dict[Labels, list[float]] = {}  # bucket counts..., sum, count

    def observe(self, value: float, labels: Labels = ()) -> None:
        row = self.series.setdefault(labels, [0.0] * (len(self.bounds) + 2))
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                row[i] += 1
        row[-2] += value
        row[-1] += 1

    def samples(self) -> list[str]:
        lines = []
        for labels, row in sorted(self.series.items()):
            for bound, count in zip(self.bounds, row, strict=False):
                lines.append(f"{self.name}_bucket{_labels(labels, ('le', _number(bound)))} "
                             f"{_number(count)}")
            lines.append(f"{self.name}_sum{_labels(labels)} {_number(row[-2])}")
            lines.append(f"{self.name}_count{_labels(labels)} {_number(row[-1])}")
        return lines


class Registry:
    """The families a server exports, rendered in registration order."""

    def __init__(self) -> None:
        self.families: list[Counter | Gauge | Histogram] = []

    def add(self, family: Counter | Gauge | Histogram) -> Counter | Gauge | Histogram:
        self.families.append(family)
        return family

    def render(self) -> str:
        lines = []
        for family in self.families:
            lines += [f"# HELP {family.name} {family.help}", f"# TYPE {family.name} {family.kind}"]
            lines += family.samples()
        return "\n".join(lines) + "\n"
