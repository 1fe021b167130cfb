"""Running a bertkit command in a forked child and ``kill -9``-ing it at a chosen moment.

Forking after the imports (torch, bertkit) costs milliseconds where a new interpreter costs
seconds, so a test can kill several runs. The child runs the real CLI entry point with its
output discarded and never returns into pytest.
"""

from __future__ import annotations

import os
import signal
import time

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
