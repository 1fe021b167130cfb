"""``bertkit demo``: the main job — real data, a WordPiece vocabulary, a small BERT pretrained
with MLM + NSP, two fine-tuned classifiers, fill-mask, similarity, attention, one report."""

from __future__ import annotations

import argparse

from bertkit.cli import numbers
from bertkit.cli.command import add_command
from bertkit.cli.flags import (
    RUN_FIELDS,
    add_own_flags,
    add_settings_flags,
    own_values,
    settings_values,
)
from bertkit.demo import DemoSettings, run_demo
from bertkit.demo.report import render_summary


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = add_command(subcommands, "demo", run)
    add_settings_flags(parser, DemoSettings, aliases={"max_minutes": ("--minutes",),
                                                      "progress": ("--quiet",)}, help={
        "output_dir": "output directory (a rerun replaces the previous demo's files there)",
        "max_minutes": "total time budget in minutes, shared among the steps",
        "threads": "PyTorch CPU threads (None: the cores not busy with other work, from the "
                   "load average)"})
    add_own_flags(parser, DemoSettings, _OWN_FLAGS)


_OWN_FLAGS = [("pretrain_steps", "--pretrain-steps", numbers.positive,
               "pretrain for exactly this many steps instead of the time share (None: as many "
               "as it allows)"),
              ("pretrain_seq_len", "--pretrain-seq-len", numbers.positive,
               "pretraining sequence length in tokens (None: 128)")]


def run(args: argparse.Namespace) -> int:
    """``bertkit demo``: run the whole system on real data and write report.html (~15 min, CPU).

    Fetches Reuters and all-MiniLM-L6-v2 (cached), trains a WordPiece vocabulary, pretrains a small
    BERT (MLM + NSP), fine-tunes it and MiniLM on Reuters R8, shows fill-mask, similarity and
    attention, and writes OUT/report.html. Time budgets are shared among the steps.
    """
    result = run_demo(DemoSettings(**settings_values(args, RUN_FIELDS),
                                   **own_values(args, _OWN_FLAGS)))
    print(render_summary(result.summary, result.out))
    return 0
