"""Running a bertkit command in a forked child and ``kill -9``-ing (or SIGTERM-ing) it at a
chosen moment.

Forking after the imports (torch, bertkit) costs milliseconds where a new interpreter costs
seconds, so a test can kill several runs. The child runs the real CLI entry point with its
output discarded and never returns into pytest.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

from bertkit.cli import main


def run_killed(argv: list[str], delay: float) -> int | None:
    """Run ``bertkit argv`` in a forked child, SIGKILL it after ``delay`` s; its exit status
    when it finished first, None when the kill landed."""
    pid = os.fork()
    if pid == 0:  # the child: run the command, never return into pytest
        code = 1
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
            code = main(argv)
        finally:
            os._exit(code)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return None if code == -signal.SIGKILL else code


def run_signalled(argv: list[str], ready: Callable[[], bool], *, signum: int = signal.SIGTERM,
                  timeout: float = 60.0, stderr: str | os.PathLike[str] = os.devnull) -> int:
    """Run ``bertkit argv`` in a forked child, send it ``signum`` as soon as ``ready()`` is
    true (polled), and return its exit status (the child's stderr goes to ``stderr``).
    Fails when the child finishes before it could be signalled or outlives ``timeout``."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            os.dup2(os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
            # pytest replaced sys.stdout / sys.stderr: point them at the new descriptors too
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 (the child's whole life)
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            code = main(argv)
        finally:
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                pid = 0
                raise AssertionError("the command finished before it could be signalled "
                                     f"(exit status {os.waitstatus_to_exitcode(status)})")
            assert time.monotonic() < deadline, "the command never became ready"
            time.sleep(0.01)
        os.kill(pid, signum)
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                pid = 0
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.01)
        raise AssertionError(f"the command outlived {timeout} s after the signal")
    finally:
        if pid:  # still running: never leak it
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
