"""Ctrl-C and SIGTERM as a request the training loop honours between steps, and what a
command does with them.

Kept out of the loop module because signal handling has its own rules (main thread only, a
repeated Ctrl-C under torchrun) that have nothing to do with training.

Why the command line needs to know: a run stopped by a signal saves its state and returns
normally (that is what makes ``--resume`` exact), so without a record of the signal the
command would exit 0 and a scheduler that sent SIGTERM would take the run for finished.
:func:`command_signals` keeps that record for one command and turns a SIGTERM that arrives
outside a training loop (loading, building shards, writing the result) into
:class:`Terminated`, so the command exits with one line, not a silent kill.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Signals that stopped a training loop during the current command (see command_signals).
_received: list[int] = []


class Terminated(BaseException):
    """SIGTERM outside a training loop: a BaseException (as KeyboardInterrupt is), so no
    ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)


@contextmanager
def command_signals() -> Iterator[list[int]]:
    """For one command: yields the signals that stopped a training loop in it (empty when
    none did), and outside the loops makes SIGTERM raise :class:`Terminated` (a loop's
    :class:`StopRequests` takes over inside it). Outside the main thread nothing is
    installed, as Python allows handlers only there."""
    _received.clear()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield _received
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class StopRequests:
    """SIGINT (Ctrl-C) and SIGTERM become a flag the loop reads between steps, so the step in
    flight finishes and the checkpoint is exact. Handlers are only installed from the main
    thread (Python's rule).

    In a single process a second Ctrl-C, pressed after the message, raises KeyboardInterrupt at
    once. Under torchrun a Ctrl-C reaches each worker twice (from the terminal and forwarded by
    the launcher) and a rank cannot abort alone, so repeats are ignored there; torchrun itself
    kills workers that outlive its grace period.
    """

    _REPEAT_AFTER_S = 1.0  # a second signal sooner than this is the same Ctrl-C, delivered twice

    def __init__(self, announce: Callable[[str], None], *, allow_abort: bool) -> None:
        self.requested = False
        self._announce = announce
        self._allow_abort = allow_abort
        self._first_at = 0.0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            repeated = time.monotonic() - self._first_at > self._REPEAT_AFTER_S
            if self._allow_abort and signum == signal.SIGINT and repeated:
                raise KeyboardInterrupt
            return
        self.requested = True
        self._first_at = time.monotonic()
        _received.append(signum)
        again = " (Ctrl-C again to abort now)" \
            if self._allow_abort and signum == signal.SIGINT else ""
        self._announce(
            f"{signal.Signals(signum).name}: stopping after this step and saving a checkpoint"
            + again
        )

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

