"""What every benchmark script here shares: interleaved timing, load notes and Markdown tables.

The method is the one of ``shared/reference/perf-baselines.md``: this machine is shared and
noisy (absolute times move ~20 % between runs, ratios inside one run ~5 %), so variants are
timed round-robin with the order rotated every round, a cell shows ``median (min..max)``, and
the share of CPU time that other processes took during the run is printed beside the numbers.
The scripts import this module by name (``python benchmarks/X.py`` puts this folder first on
``sys.path``).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable


def interleaved(variants: dict[str, Callable[[], object]], reps: int, *,
                calls: int | None = None, min_sample_s: float = 0.0, warmup: int = 1,
                clock: Callable[[], float] = time.perf_counter
                ) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Time variants round-robin; return seconds per call of every sample, and first-call seconds.

    The first call of each variant is timed alone (it pays allocation, lazy initialisation,
    compilation), then ``warmup`` untimed calls. A sample is ``calls`` calls, or, when
    ``calls`` is ``None``, as many as the warm-up says fill ``min_sample_s`` seconds: short
    samples would measure the timer and the scheduler. ``clock=time.process_time`` counts
    this process's CPU seconds instead of wall time: on an oversubscribed machine that is what
    a single-threaded variant cost, whatever share of the cores it was given.
    """
    first: dict[str, float] = {}
    inner: dict[str, int] = {}
    for name, fn in variants.items():
        start = clock()
        fn()
        first[name] = clock() - start
        start = clock()
        for _ in range(max(1, warmup)):
            fn()
        per_call = (clock() - start) / max(1, warmup)
        inner[name] = calls or max(1, int(min_sample_s / max(per_call, 1e-9)))
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            fn, count = variants[name], inner[name]
            start = clock()
            for _ in range(count):
                fn()
            samples[name].append((clock() - start) / count)
    return samples, first


def cpu_ticks() -> tuple[list[int], float]:
    """Machine-wide jiffies and this process tree's CPU seconds (to see load that is not ours)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    t = os.times()
    return ticks, t.user + t.system + t.children_user + t.children_system


def load_note(since: tuple[list[int], float]) -> str:
    """Share of CPU time other processes used, and the hypervisor stole, since ``since``."""
    (before, own_before), (after, own_after) = since, cpu_ticks()
    delta = [b - a for a, b in zip(before, after, strict=True)]
    hz = os.sysconf("SC_CLK_TCK")
    total = max(sum(delta), 1)
    busy = delta[0] + delta[1] + delta[2] + delta[5] + delta[6]
    other = max(0.0, busy / hz - (own_after - own_before)) * hz
    steal = delta[7] if len(delta) > 7 else 0
    return (f"other processes {100 * other / total:.0f}% of CPU time, "
            f"hypervisor steal {100 * steal / total:.1f}%")


def ms_cell(xs: list[float], digits: int = 1) -> str:
    """Milliseconds as ``median (min..max)``."""
    return (f"{1e3 * statistics.median(xs):.{digits}f} "
            f"({1e3 * min(xs):.{digits}f}..{1e3 * max(xs):.{digits}f})")


def table(headers: list[str], rows: list[list[str]]) -> None:
    """Print a Markdown table, columns padded to their widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    print(flush=True)
