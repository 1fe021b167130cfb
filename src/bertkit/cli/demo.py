"""``bertkit demo``: the main job — real data, a WordPiece vocabulary, a small BERT pretrained
with MLM + NSP, two fine-tuned classifiers, fill-mask, similarity, attention, one report."""

from __future__ import annotations

import argparse
from pathlib import Path

from bertkit.cli import numbers
from bertkit.demo import DemoSettings, run_demo
from bertkit.demo.report import render_summary


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "demo", help="run the whole system on real data and write report.html (~15 min, CPU)",
        description="Fetches Reuters and all-MiniLM-L6-v2 (cached), trains a WordPiece "
                    "vocabulary, pretrains a small BERT (MLM + NSP), fine-tunes it and MiniLM on "
                    "Reuters R8, shows fill-mask, similarity and attention, and writes "
                    "OUT/report.html. Time budgets are shared among the steps.")
    parser.add_argument("--out", type=Path, default=Path("demo-output"),
                        help="output directory (default demo-output; a rerun replaces the "
                             "previous demo's files there)")
    parser.add_argument("--minutes", type=float, default=15.0,
                        help="total time budget in minutes (default 15)")
    parser.add_argument("--threads", type=numbers.positive, default=None,
                        help="PyTorch CPU threads (default: the cores not busy with other "
                             "work, from the load average)")
    parser.add_argument("--seed", type=numbers.seed, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    result = run_demo(DemoSettings(out=args.out, minutes=args.minutes, threads=args.threads,
                                   seed=args.seed, progress=not args.quiet))
    print(render_summary(result.summary, result.out))
    return 0
