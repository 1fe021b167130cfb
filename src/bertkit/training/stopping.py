"""Ctrl-C and SIGTERM as a request the training loop honours between steps.

Kept out of the loop module because signal handling has its own rules (main thread only, a
repeated Ctrl-C under torchrun) that have nothing to do with training.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any


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
        again = " (Ctrl-C again to abort now)" if self._allow_abort else ""
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

