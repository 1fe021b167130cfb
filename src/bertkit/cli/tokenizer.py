"""``bertkit tokenizer train``: learn a WordPiece (BERT) or byte-level BPE (RoBERTa) vocabulary
from text files."""

from __future__ import annotations

import argparse
from pathlib import Path

from bertkit.cli import numbers
from bertkit.cli.command import add_command
from bertkit.data.corpus import expand_sources
from bertkit.errors import UsageError
from bertkit.tokenization import train_bpe, train_wordpiece


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("tokenizer", help="train a tokenizer")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    train = add_command(actions, "train", run_train)
    train.add_argument("--kind", choices=("wordpiece", "bpe"), default="wordpiece",
                       help="wordpiece: BERT's (the default); bpe: RoBERTa's byte-level BPE "
                            "(every text encodable, <s> <pad> </s> <unk> <mask> at ids 0..4)")
    train.add_argument("--files", nargs="+", required=True, metavar="PATH",
                       help="text files, directories or glob patterns")
    train.add_argument("--vocab-size", type=numbers.positive, default=None,
                       help="vocabulary size, special tokens included (default 30522 for "
                            "wordpiece, 50265 for bpe)")
    casing = train.add_mutually_exclusive_group()
    casing.add_argument("--lowercase", dest="lowercase", action="store_true", default=None,
                        help="lowercase and strip accents (BERT uncased; the wordpiece default)")
    casing.add_argument("--cased", dest="lowercase", action="store_false",
                        help="keep case (BERT cased; byte-level BPE always does)")
    train.add_argument("--add-prefix-space", action="store_true",
                       help="bpe: a text's first word is encoded as if a space preceded it")
    train.add_argument("--min-frequency", type=numbers.positive, default=2,
                       help="pieces seen fewer times are not added (default 2)")
    train.add_argument("--out", type=Path, required=True, help="output directory")


def run_train(args: argparse.Namespace) -> int:
    """``bertkit tokenizer train``: learn a WordPiece or byte-level BPE vocabulary from text files.

    Writes tokenizer.json and tokenizer_config.json (plus vocab.txt, or vocab.json + merges.txt for
    BPE) into --out; the directory loads with Tokenizer.from_pretrained and bertkit pretrain
    --tokenizer.
    """
    files = expand_sources(args.files)
    if args.kind == "bpe":
        if args.lowercase:
            raise UsageError("--lowercase: byte-level BPE keeps every byte as written; "
                             "expected no casing option with --kind bpe")
        tokenizer = train_bpe(files, vocab_size=args.vocab_size or 50265,
                              min_frequency=args.min_frequency,
                              add_prefix_space=args.add_prefix_space)
        casing = "byte-level"
    else:
        if args.add_prefix_space:
            raise UsageError("--add-prefix-space is a byte-level BPE option; expected "
                             "--kind bpe")
        lowercase = args.lowercase is not False
        tokenizer = train_wordpiece(files, vocab_size=args.vocab_size or 30522,
                                    lowercase=lowercase, min_frequency=args.min_frequency)
        casing = "uncased" if lowercase else "cased"
    tokenizer.save_pretrained(args.out)
    print(f"{args.out}\t{args.kind}\tvocab_size={tokenizer.vocab_size}\t{casing}")
    return 0
