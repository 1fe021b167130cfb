"""``bertkit data corpus``: build a real English pretraining corpus from fetched artifacts."""

from __future__ import annotations

import argparse
from pathlib import Path

from bertkit.cli import numbers
from bertkit.cli.flags import add_own_flags
from bertkit.resources.corpora import SOURCES, TRAIN_SOURCES, CorpusOptions, build_corpus


def register_action(actions: argparse._SubParsersAction) -> None:
    """Add ``corpus`` to the actions of ``bertkit data``."""
    parser = actions.add_parser(
        "corpus", help="write a BERT-format pretraining corpus from real data sets",
        description="One sentence per line, a blank line between documents, real sentence "
                    "order. Sources: " + ", ".join(SOURCES) + " (default: "
                    + ", ".join(TRAIN_SOURCES) + "; about 11 M words). Artifacts are fetched "
                    "(checksummed, cached); a rerun with the same recipe is instant.")
    parser.add_argument("--out", type=Path, required=True, help="the text file to write")
    parser.add_argument("--sources", nargs="+", default=None, metavar="NAME",
                        help="which sources (default: every one but the test splits)")
    parser.add_argument("--include-test", action="store_true",
                        help="also the 20NG/Reuters test splits (they are fine-tuning "
                             "evaluation sets: leave them out if you evaluate on them)")
    add_own_flags(parser, CorpusOptions, [("chunk_words", "--chunk-words", numbers.positive,
                                           "words per line for the punctuation-free sources")])
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.set_defaults(handler=run_corpus)


def run_corpus(args: argparse.Namespace) -> int:
    report = build_corpus(args.out, sources=tuple(args.sources) if args.sources else None,
                          include_test=args.include_test, chunk_words=args.chunk_words,
                          force=args.force)
    rows = [(name, counts) for name, counts in report.per_source.items()]
    rows.append(("total", {"documents": report.documents, "sentences": report.sentences,
                           "words": report.words, "duplicate_lines": report.duplicate_lines}))
    for name, counts in rows:
        print(f"{name}\t{counts['documents']} documents\t{counts['sentences']} lines\t"
              f"{counts['words']} words\t{counts['duplicate_lines']} duplicate lines")
    print(f"{report.path}{' (cached)' if report.cached else ''}")
    return 0
