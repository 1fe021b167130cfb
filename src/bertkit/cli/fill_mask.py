"""``bertkit fill-mask``: the most likely tokens for every [MASK] of a text."""

from __future__ import annotations

import argparse
from pathlib import Path

from bertkit.cli import numbers
from bertkit.cli.command import add_command
from bertkit.errors import UsageError
from bertkit.inference.embedding_files import read_texts
from bertkit.inference.fill_mask import fill_mask, load_fill_mask, render, to_json


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = add_command(subcommands, "fill-mask", run)
    parser.add_argument("texts", nargs="*", metavar="TEXT",
                        help='texts containing [MASK], e.g. "The capital of France is [MASK]."')
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    parser.add_argument("--input", default=None, metavar="FILE",
                        help="read texts from FILE, one per line ('-' for stdin)")
    parser.add_argument("--top-k", type=numbers.positive, default=5,
                        help="candidates per mask (default 5)")
    parser.add_argument("--targets", default=None, metavar="W1,W2",
                        help="score only these words (a word of several pieces is scored by "
                             "its first piece)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--batch-size", type=numbers.positive, default=32)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda "
                                                       "when available)")
    parser.add_argument("--truncate", action="store_true",
                        help="cut texts longer than the model instead of refusing them")


def run(args: argparse.Namespace) -> int:
    """``bertkit fill-mask``: predict the tokens behind [MASK] with a masked-LM checkpoint.

    Top-k tokens with probabilities for every [MASK] of each text (several masks per text are
    predicted independently). Needs a BertForMaskedLM or BertForPreTraining checkpoint.
    """
    texts = list(args.texts)
    if args.input is not None:
        texts += read_texts(args.input).texts
    if not texts:
        raise UsageError("no text given; pass a TEXT with [MASK] or --input FILE")
    targets = None
    if args.targets is not None:
        targets = [word.strip() for word in args.targets.split(",") if word.strip()]
        if not targets:
            raise UsageError(f"--targets {args.targets!r}; expected comma-separated words")
    engine = load_fill_mask(args.model, device=args.device, batch_size=args.batch_size,
                            truncate=args.truncate)
    results = fill_mask(engine, None, texts, top_k=args.top_k, targets=targets)
    print(to_json(results) if args.json else render(results))
    return 0
