"""``bertkit data ddtp``: Debian's translated package descriptions as parallel pair files."""

from __future__ import annotations

import argparse
from pathlib import Path

from bertkit.cli import numbers
from bertkit.cli.command import add_command
from bertkit.resources.ddtp import DDTP_LANGUAGES, SPLITS, build_ddtp


def register_action(actions: argparse._SubParsersAction) -> None:
    """Add ``ddtp`` to the actions of ``bertkit data``."""
    parser = add_command(actions, "ddtp", run_ddtp)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--languages", nargs="+", default=list(DDTP_LANGUAGES),
                        metavar="XX", help="default: " + " ".join(DDTP_LANGUAGES))
    parser.add_argument("--dev-fraction", type=numbers.fraction, default=0.05)
    parser.add_argument("--test-fraction", type=numbers.fraction, default=0.05)
    parser.add_argument("--lists-dir", type=Path, default=None,
                        help="a folder of Translation files instead of apt's (no fetching)")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")


def run_ddtp(args: argparse.Namespace) -> int:
    """``bertkit data ddtp``: write translation pairs (de/fr/ru/es → en) from Debian's DDTP.

    Reads apt's Translation indexes (running `apt-get update -o Acquire::Languages=en,…` as root
    when one is missing), joins each language with English on Description-md5 and writes
    DIR/<xx>-en/{train,dev,test}.jsonl (fields source, target, source_paragraph, target_paragraph,
    md5, package), split by the hash. Cached with checksums; a rerun with the same inputs is
    instant.
    """
    options = {} if args.lists_dir is None else {"lists_dir": args.lists_dir, "update": False}
    report = build_ddtp(args.out, languages=args.languages, dev_fraction=args.dev_fraction,
                        test_fraction=args.test_fraction, force=args.force, **options)
    for pair in (f"{language}-en" for language in args.languages):
        counts = report.counts[pair]
        splits = "\t".join(f"{split} {counts[split]}" for split in SPLITS)
        print(f"{pair}\t{sum(counts.values())} pairs\t{splits}\t"
              f"{report.test_seen_in_train[pair]} test pairs also in train\t"
              f"{Path(report.out_dir) / pair}")
    print(f"{report.out_dir}{' (cached)' if report.cached else ''}")
    return 0
