"""What every demo step shares: the settings a user may change, the state of one run (its
output folder, clock, summary and the data read so far) and the result."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from bertkit.data.readers import TextExample
from bertkit.demo.budget import Clock
from bertkit.errors import UsageError
from bertkit.training.settings import RunSettings, accepts_old_names


@accepts_old_names
@dataclass(kw_only=True)
class DemoSettings(RunSettings):
    """What ``bertkit demo`` may change: the settings every run shares
    (:class:`~bertkit.training.settings.RunSettings`: where, how long, how many CPU threads,
    which seed, device, precision, compile), passed on to its pretraining and fine-tuning.
    ``out`` and ``minutes`` are the old names of ``output_dir`` and ``max_minutes`` (accepted,
    with a warning, for one release)."""

    renamed: ClassVar[Mapping[str, str]] = {"out": "output_dir", "minutes": "max_minutes"}

    output_dir: str | Path = "demo-output"
    max_minutes: float = 15.0  # the total budget, shared among the steps
    device: str = "cpu"  # the budgets are planned from CPU timings
    # Pretrain for exactly this many steps instead of the time share (a pretraining that does
    # not depend on the machine's speed), on sequences of this many tokens instead of 128
    # (shorter: cheaper steps; the fine-tuning still reads 128, so positions past a shorter
    # pretraining start untrained). The demo test uses both to clear the unigram baseline fast.
    pretrain_steps: int | None = None
    pretrain_seq_len: int | None = None
    # threads: None means the idle cores (idle_cores()), not PyTorch's default.

    def validate(self) -> DemoSettings:
        """Raise :class:`UsageError` naming the setting that cannot work."""
        minutes = self.max_minutes
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) \
                or not math.isfinite(minutes) or minutes <= 0:
            raise UsageError(f"max_minutes={minutes!r}: expected a positive number of minutes "
                             "(the default is 15)")
        for name, least in (("threads", 1), ("pretrain_steps", 1), ("pretrain_seq_len", 8)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < least):
                raise UsageError(f"{name}={value!r}: expected an integer >= {least} (or None, "
                                 "the default)")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise UsageError(f"seed={self.seed!r}: expected an integer >= 0")
        return self

    def run_options(self) -> dict[str, Any]:
        """What the demo passes on to each run it makes: its seed, device, precision, compile
        and progress (the budget and the output folder are the step's own)."""
        return {name: getattr(self, name)
                for name in ("seed", "device", "precision", "compile", "progress")}


@dataclass
class DemoResult:
    """Where the run wrote its files, and everything it measured (``summary.json``)."""

    out: Path
    summary: dict[str, Any]


@dataclass
class DemoRun:
    """State shared by the steps of one run; each step reads it and adds to ``summary``."""

    settings: DemoSettings
    out: Path
    clock: Clock
    cache: Path
    summary: dict[str, Any] = field(default_factory=dict)
    train: list[TextExample] = field(default_factory=list)  # the whole R8 training split
    test: list[TextExample] = field(default_factory=list)  # the scored slice of the test split
    subsets: dict[str, list[TextExample]] = field(default_factory=dict)  # each model's train docs
    total_steps: int = 0  # for the "[3/8]" progress lines

    def say(self, text: str) -> None:
        if self.settings.progress:
            print(text, file=sys.stderr, flush=True)

    def step(self, name: str, work: Callable[[], str]) -> None:
        """Run one step, announce it, and record its wall time and one-line note."""
        number = len(self.summary["steps"]) + 1
        self.say(f"[{number}/{self.total_steps}] {name} …")
        started = time.monotonic()
        note = work()
        seconds = time.monotonic() - started
        self.summary["steps"].append({"name": name, "seconds": round(seconds, 2), "note": note})
        self.say(f"      {name}: {note} ({seconds:.1f} s)")
