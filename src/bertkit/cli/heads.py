"""``bertkit heads``: what each attention head looks at over a text file (JSON, HTML, PNGs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bertkit.analysis.heads import head_statistics, read_sentences
from bertkit.analysis.heads_report import write_head_report
from bertkit.cli import numbers
from bertkit.cli.command import add_command
from bertkit.inference.engine import Engine


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = add_command(subcommands, "heads", run)
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    parser.add_argument("--text", type=Path, required=True,
                        help="UTF-8 text file, one sentence per line")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--max-length", type=numbers.positive, default=None,
                        help="cut each sentence to this many tokens (default: the model's "
                             "limit)")
    parser.add_argument("--max-sentences", type=numbers.positive, default=None,
                        help="use only the first N sentences")
    parser.add_argument("--batch-size", type=numbers.positive, default=16)
    parser.add_argument("--device", default=None, help="cpu, cuda … (default: cuda if present)")


def run(args: argparse.Namespace) -> int:
    """``bertkit heads``: per-head attention statistics over a corpus (Clark et al. 2019).

    Mean attention of every head to [CLS], [SEP], the previous / next token, punctuation, itself …,
    its entropy, and the heads whose top attention matches each relation most often. Writes
    heads.json, heads.html and (with matplotlib, pip install 'bertkit[viz]') one PNG heatmap per
    statistic.
    """
    sentences = read_sentences(args.text)[:args.max_sentences]
    engine = Engine.from_pretrained(args.model, device=args.device, truncate=True,
                                    max_length=args.max_length, batch_size=args.batch_size)
    stats = head_statistics(engine, sentences, source=str(args.text), progress=True)
    stats.model = str(args.model)
    for path in write_head_report(stats, args.out, title=f"attention heads — {args.model.name}"):
        print(f"wrote {path}")
    for relation in ("previous", "next", "sep", "same_word"):
        best = ", ".join(f"L{layer}-H{head} {score:.2f}"
                         for layer, head, score in stats.best_heads(relation))
        print(f"top attention = {relation}: {best}")
    return 0
