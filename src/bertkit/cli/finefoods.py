"""``bertkit data finefoods``: the Amazon fine-food reviews as JSONL for ``finetune classify``."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from bertkit.cli.command import add_command
from bertkit.data.readers import read_classification
from bertkit.resources.datasets import write_finefood_reviews


def register_action(actions: argparse._SubParsersAction) -> None:
    """Add ``finefoods`` to the actions of ``bertkit data``."""
    parser = add_command(actions, "finefoods", run_finefoods)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="artifact cache (default: $BERTKIT_CACHE or ~/.cache/bertkit)")


def run_finefoods(args: argparse.Namespace) -> int:
    """``bertkit data finefoods``: write the fine-food reviews (5-star 'great' vs 'other') as JSONL.

    Fetches Debian r-cran-modeldata (checksummed, cached), decodes its R data and writes
    DIR/finefood-train.jsonl (4,000) and DIR/finefood-test.jsonl (1,000) with fields text, label,
    product.

    Write the files, then read them back with the classification reader and count labels, so what is
    printed is what `bertkit finetune classify` will see.
    """
    for split, path in write_finefood_reviews(args.out, cache_dir=args.cache_dir,
                                              quiet=False).items():
        labels = Counter(e.label for e in read_classification(path))
        counts = "\t".join(f"{label} {n}" for label, n in sorted(labels.items()))
        print(f"{split}\t{sum(labels.values())} examples\t{counts}\t{path}")
    return 0
