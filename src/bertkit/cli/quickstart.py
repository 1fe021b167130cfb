"""``bertkit quickstart``: a real pretrained model, tokenized, encoded and compared."""

from __future__ import annotations

import argparse

from bertkit.demo.quickstart import SENTENCES, embed_sentences, render


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "quickstart", help="embed sentences with a real pretrained BERT and compare them")
    parser.add_argument("sentences", nargs="*", metavar="SENTENCE",
                        help="sentences to compare (default: five built-in examples)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(render(embed_sentences(args.sentences or SENTENCES)))
    return 0
