"""``bertkit tokenizer train``: learn a WordPiece vocabulary from text files."""

from __future__ import annotations

import argparse
from pathlib import Path

from bertkit.cli import numbers
from bertkit.data.corpus import expand_sources
from bertkit.tokenization import train_wordpiece


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("tokenizer", help="train a tokenizer")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    train = actions.add_parser(
        "train", help="learn a WordPiece vocabulary from text files",
        description="Writes tokenizer.json, tokenizer_config.json and vocab.txt into --out; "
                    "the directory loads with Tokenizer.from_pretrained and bertkit pretrain "
                    "--tokenizer.")
    train.add_argument("--files", nargs="+", required=True, metavar="PATH",
                       help="text files, directories or glob patterns")
    train.add_argument("--vocab-size", type=numbers.positive, default=30522,
                       help="vocabulary size, special tokens included (default 30522)")
    casing = train.add_mutually_exclusive_group()
    casing.add_argument("--lowercase", dest="lowercase", action="store_true", default=True,
                        help="lowercase and strip accents (BERT uncased; the default)")
    casing.add_argument("--cased", dest="lowercase", action="store_false",
                        help="keep case (BERT cased)")
    train.add_argument("--min-frequency", type=numbers.positive, default=2,
                       help="pieces seen fewer times are not added (default 2)")
    train.add_argument("--out", type=Path, required=True, help="output directory")
    train.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    files = expand_sources(args.files)
    tokenizer = train_wordpiece(files, vocab_size=args.vocab_size, lowercase=args.lowercase,
                                min_frequency=args.min_frequency)
    tokenizer.save_pretrained(args.out)
    print(f"{args.out}\tvocab_size={tokenizer.vocab_size}\t"
          f"{'uncased' if args.lowercase else 'cased'}")
    return 0
