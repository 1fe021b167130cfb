"""``bertkit prune``: score a fine-tuned classifier's heads and remove the least important."""

from __future__ import annotations

import argparse
from pathlib import Path

from bertkit.analysis.pruning import prune_model
from bertkit.cli import numbers
from bertkit.cli.command import add_command


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = add_command(subcommands, "prune", run)
    parser.add_argument("--model", type=Path, required=True,
                        help="a fine-tuned sequence classifier's directory")
    parser.add_argument("--task-data", type=Path, required=True,
                        help="labelled CSV / TSV / JSONL / .tab file of the model's task")
    parser.add_argument("--fraction", type=float, default=0.3,
                        help="share of all heads to remove, strictly between 0 and 1 "
                             "(default 0.3)")
    parser.add_argument("--out", type=Path, required=True, help="output model directory")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--max-length", type=numbers.positive, default=128)
    parser.add_argument("--batch-size", type=numbers.positive, default=16)
    parser.add_argument("--max-examples", type=numbers.positive, default=None,
                        help="score on the first N examples only")


def run(args: argparse.Namespace) -> int:
    """``bertkit prune``: remove the least important attention heads (Michel et al. 2019).

    Head importance = mean |gradient of the task loss w.r.t. a head mask| on --task-data, normalised
    per layer; the lowest --fraction of all heads go (every layer keeps its most important head).
    Writes the smaller model, its tokenizer and importance.json to --out; config.json's pruned_heads
    names what was removed.
    """
    summary = prune_model(args.model, args.task_data, args.fraction, args.out,
                          text_column=args.text_column, label_column=args.label_column,
                          max_length=args.max_length, batch_size=args.batch_size,
                          max_examples=args.max_examples)
    print(f"removed {summary['heads_removed']} of {summary['heads_total']} heads: "
          f"{summary['pruned_heads']}")
    print(f"wrote {args.out} (importance.json beside the model)")
    return 0
