"""The ``bertkit`` command line: argument parsing only; every command calls one library
function.

A :class:`~bertkit.errors.BertkitError` (a user's mistake: a bad path, a malformed file, a
model that does not fit) prints one ``error: …`` line and exits with status 2, and so does
storage refusing a write (a full disk, a read-only folder); anything else is a bug and keeps
its traceback. A run stopped by SIGTERM or Ctrl-C saves what it has, prints one line and
exits with 128 + the signal's number (143, 130), never 0: a scheduler must not take a
stopped run for a finished one.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
from collections.abc import Sequence

from bertkit.cli import (
    attention,
    audit,
    data,
    demo,
    distill,
    embed,
    export,
    fill_mask,
    finetune,
    heads,
    info,
    predict,
    pretrain,
    probe,
    prune,
    quickstart,
    seq2seq,
    serve,
    tokenizer,
)
from bertkit.errors import BertkitError
from bertkit.training.stopping import Terminated, command_signals
from bertkit.version import __version__

COMMANDS = (demo, data, info, quickstart, fill_mask, embed, attention, audit, export, tokenizer,
            pretrain, distill, finetune, predict, serve)
COMMANDS += (seq2seq, probe, heads, prune)

# The machine's storage refusing a write (full, read-only, no permission): the user's to fix,
# not a bug, so one error line instead of a traceback. Other OSErrors keep theirs.
_STORAGE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                             errno.EFBIG})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertkit",
        description="A complete BERT system: tokenize, pretrain, fine-tune, inspect, audit "
                    "and serve encoder-only Transformers.")
    parser.add_argument("--version", action="version", version=f"bertkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    stopped: list[int] = []
    try:
        with command_signals() as stopped:
            code = int(handler(args) or 0)
        if stopped:
            return _stopped_by(stopped[0], f"after a whole step and saved its state; "
                               f"{_how_to_continue(args)}")
        return code
    except Terminated as err:
        return _stopped_by(err.signum, "outside a training step (loading, preparing data "
                           "or writing results); every file already written is whole")
    except BertkitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in _STORAGE_ERRORS:
            raise
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{os.strerror(err.errno)}; the file being written was left as it "
              "was (bertkit writes to a temporary beside it and moves it into place only when "
              "complete)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if stopped:  # a step saved its state, then the command chose to stop (the demo)
            return _stopped_by(stopped[0], "after a whole step and saved its state")
        print("interrupted", file=sys.stderr)
        return 130


def _how_to_continue(args: argparse.Namespace) -> str:
    """What the user can do next: only some commands (pretrain, distill, seq2seq train) take
    ``--resume``; the others keep what they saved but a rerun starts from the beginning."""
    if hasattr(args, "resume"):
        return "the same command with --resume continues from its last checkpoint"
    return "this command has no --resume: a rerun starts over"


def _stopped_by(signum: int, what: str) -> int:
    """The one line a stopped command prints, and its exit status."""
    name = signal.Signals(signum).name
    verb = "terminated" if signum == signal.SIGTERM else "interrupted"
    print(f"{verb} by {name}: the run stopped {what}", file=sys.stderr)
    return 128 + signum
