"""``bertkit quickstart``: a real pretrained model, tokenized, encoded and compared."""

from __future__ import annotations

import argparse

from bertkit.cli.command import add_command
from bertkit.demo.quickstart import SENTENCES, embed_sentences, render


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = add_command(subcommands, "quickstart", run)
    parser.add_argument("sentences", nargs="*", metavar="SENTENCE",
                        help="sentences to compare (default: five built-in examples)")


def run(args: argparse.Namespace) -> int:
    """``bertkit quickstart``: embed sentences with a real pretrained BERT and compare them."""
    print(render(embed_sentences(args.sentences or SENTENCES)))
    return 0
