"""What a person watching, and a program reading later, learn about a run.

* :class:`ProgressLine`: one status line on stderr (step, loss, throughput, ETA) rewritten in
  place on a terminal, printed as ordinary lines when stderr is a file or a pipe (so a CI log
  stays readable). No tqdm: the line is a dozen lines of code.
* :class:`MetricsLog`: ``metrics.jsonl``, one JSON object per line, flushed after each, so a
  crashed run's metrics are on disk up to its last line and any tool can plot them.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import IO, Any

from bertkit._fileio import write_text


def format_duration(seconds: float) -> str:
    """``"45s"``, ``"3m12s"``, ``"2h05m"``: the precision a person needs for an ETA."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_count(value: float) -> str:
    """Throughput with a thousands separator, or with k/M for big numbers."""
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


class ProgressLine:
    """A single updating status line. ``enabled=False`` (quiet mode) prints nothing."""

    def __init__(self, total_steps: int, *, stream: IO[str] | None = None,
                 enabled: bool = True) -> None:
        self.total_steps = total_steps
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self._in_place = enabled and getattr(self.stream, "isatty", lambda: False)()
        self._width = 0

    def update(self, step: int, values: dict[str, float], *, throughput: float | None = None,
               unit: str = "samples", eta_seconds: float | None = None) -> str:
        """Show ``step/total``, the given values, throughput per second and the ETA; return
        the text (for tests and callers that log it elsewhere)."""
        parts = [f"step {step}/{self.total_steps}"]
        parts += [f"{name} {_format_value(value)}" for name, value in values.items()]
        if throughput is not None:
            parts.append(f"{format_count(throughput)} {unit}/s")
        if eta_seconds is not None:
            parts.append(f"ETA {format_duration(eta_seconds)}")
        text = " | ".join(parts)
        if self.enabled:
            if self._in_place:
                pad = max(0, self._width - len(text))
                self.stream.write("\r" + text + " " * pad)
                self._width = len(text)
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        return text

    def message(self, text: str) -> None:
        """A line of its own (evaluation results, "checkpoint saved"), above the status line."""
        if not self.enabled:
            return
        if self._in_place and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the in-place line so the shell prompt starts on a fresh one."""
        if self.enabled and self._in_place and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


def _format_value(value: float) -> str:
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.4f}"


class MetricsLog:
    """Append-only JSONL metrics file; ``path=None`` (or a non-zero rank) writes nothing."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        self._handle: IO[str] | None = None

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a JSON line and flush it to the OS."""
        if self.path is None:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (held open)
        self._handle.write(json.dumps(record, ensure_ascii=False, allow_nan=True) + "\n")
        self._handle.flush()

    def truncate_after(self, step: int) -> None:
        """Drop records of steps after ``step`` (and a torn last line): after resuming from
        ``step``, those steps run again and would otherwise appear twice. Rewritten atomically."""
        if self.path is None or not self.path.is_file():
            return
        self.close()
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                kept.append(line)
        write_text(self.path, "".join(line + "\n" for line in kept))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
