"""Fetch bertkit's real artifacts (checkpoints, data sets) into the local cache.

Usage::

    python scripts/fetch_artifacts.py                  # all of them
    python scripts/fetch_artifacts.py wnut16 splade-tiny
    python scripts/fetch_artifacts.py --list

Prints ``name<TAB>path`` per artifact on stdout (progress goes to stderr), so the output can
be piped. A thin wrapper over :func:`bertkit.artifacts.fetch`, the same function the
``bertkit data fetch`` subcommand calls; every failure is reported, the rest still fetched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bertkit.artifacts import ARTIFACTS, fetch
from bertkit.errors import ArtifactError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Names default to every registered artifact: the common case is "get me everything"."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="artifacts to fetch (default: all)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="default: $BERTKIT_CACHE or ~/.cache/bertkit"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--list", action="store_true", help="list artifacts and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Fetch the named artifacts; exit status 2 if any failed (as the bertkit CLI does)."""
    args = parse_args(argv)
    if args.list:
        for artifact in ARTIFACTS.values():
            print(f"{artifact.name}\t{artifact.spec}\t{artifact.description}")
        return 0
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


if __name__ == "__main__":
    sys.exit(main())
