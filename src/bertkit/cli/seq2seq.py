"""``bertkit seq2seq train | evaluate | generate | align``: encoder–decoder models (BERT2BERT)
for translation and other sequence-to-sequence tasks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bertkit.cli import numbers
from bertkit.cli.command import add_command
from bertkit.cli.flags import (
    add_own_flags,
    add_settings_flags,
    own_values,
    settings_values,
)
from bertkit.errors import UsageError
from bertkit.runs.seq2seq import Seq2SeqSettings


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "seq2seq", help="train, evaluate and run encoder-decoder (BERT2BERT) models",
        description="Pairs are TSV (source<TAB>target) or JSONL (source/target fields, e.g. "
                    "from `bertkit data ddtp`). BLEU/chrF need sacreBLEU "
                    "(pip install 'bertkit[translate]').")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    _train_parser(actions)
    evaluate = add_command(actions, "evaluate", run_evaluate)
    evaluate.add_argument("--model", type=Path, required=True)
    evaluate.add_argument("--pairs", type=Path, required=True)
    evaluate.add_argument("--out", type=Path, default=None,
                          help="write scores.json and predictions.jsonl here")
    evaluate.add_argument("--limit", type=numbers.positive, default=None,
                          help="only the first N pairs")
    _field_arguments(evaluate)
    _generation_arguments(evaluate)
    generate = add_command(actions, "generate", run_generate)
    generate.add_argument("texts", nargs="*", help="source texts (default: stdin, one a line)")
    generate.add_argument("--model", type=Path, required=True)
    _generation_arguments(generate)
    align = add_command(actions, "align", run_align)
    align.add_argument("text", help="the source sentence")
    align.add_argument("--model", type=Path, required=True)
    align.add_argument("--target", default=None,
                       help="align this translation (default: the model's own)")
    align.add_argument("--layer", type=numbers.index, default=-1, help="decoder layer for the PNG")
    align.add_argument("--png", type=Path, default=None, metavar="MAP.png",
                       help="heatmap of --layer, heads averaged (needs bertkit[viz])")
    align.add_argument("--html", type=Path, default=None, metavar="OUT.html",
                       help="browse every decoder layer and head")
    align.add_argument("--device", default="auto")


def _train_parser(actions: argparse._SubParsersAction) -> None:
    train = add_command(actions, "train", run_train)
    train.add_argument("--train", type=Path, required=True)
    train.add_argument("--dev", type=Path, default=None)
    train.add_argument("--encoder", type=Path, required=True,
                       help="BERT checkpoint for the encoder (and its tokenizer)")
    train.add_argument("--decoder", type=Path, default=None,
                       help="BERT checkpoint for the decoder (default: --encoder)")
    train.add_argument("--random", action="store_true",
                       help="random weights, --encoder's size (the no-pretraining baseline)")
    train.add_argument("--share", action="store_true", help="BERTShare: tie the decoder's "
                       "weights to the encoder's")
    _field_arguments(train)
    add_settings_flags(train, Seq2SeqSettings, required=["output_dir"])
    add_own_flags(train, Seq2SeqSettings, _TRAIN_FLAGS)
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its newest checkpoint")


#: ``seq2seq train``'s own flags: (field, flag, type, help).
_TRAIN_FLAGS = (
    ("max_source_length", "--max-source-length", numbers.positive, "source tokens kept"),
    ("max_target_length", "--max-target-length", numbers.positive, "target tokens kept"),
    ("batch_size", "--batch-size", numbers.positive, "pairs per micro-batch and process"),
    ("label_smoothing", "--label-smoothing", numbers.fraction, "label smoothing of the loss"),
    ("eval_every", "--eval-every", numbers.nonnegative, "held-out loss every N steps (0: off)"),
    ("eval_translations", "--eval-translations", numbers.nonnegative,
     "translate at most N dev pairs at the end (None: all)"),
    ("checkpoint_every", "--checkpoint-every", numbers.nonnegative,
     "checkpoint every N steps (0: at the end)"),
    ("log_every", "--log-every", numbers.nonnegative, "progress record every N steps"),
    ("num_beams", "--num-beams", numbers.positive, "beams for the dev translations"),
    ("max_new_tokens", "--max-new-tokens", numbers.positive, "token cap of the dev translations"),
)


#: Where a JSONL pair file keeps source and target: (field, flag, type, help).
_FIELD_FLAGS = (
    ("source_field", "--source-field", str, "JSONL source field"),
    ("target_field", "--target-field", str, "JSONL target field"),
)


def _field_arguments(parser: argparse.ArgumentParser) -> None:
    add_own_flags(parser, Seq2SeqSettings, _FIELD_FLAGS)


#: ``evaluate`` and ``generate`` translate as a training run's final dev translations do.
_GENERATION_FLAGS = (
    ("num_beams", "--num-beams", numbers.positive, "beams (1: greedy)"),
    ("max_new_tokens", "--max-new-tokens", numbers.positive, "token cap of each translation"),
)


def _generation_arguments(parser: argparse.ArgumentParser) -> None:
    add_own_flags(parser, Seq2SeqSettings, _GENERATION_FLAGS)
    parser.add_argument("--batch-size", type=numbers.positive, default=32)
    add_settings_flags(parser, Seq2SeqSettings, fields=["device"])


def run_train(args: argparse.Namespace) -> int:
    """``bertkit seq2seq train``: train an encoder-decoder on pair files.

    Warm start (--encoder DIR [--decoder DIR], Rothe et al. 2020) or --random weights of the same
    size; --share ties decoder to encoder (BERTShare). Writes a model directory, checkpoints/,
    metrics.jsonl and, with --dev, final_metrics.json (BLEU, chrF, copy baseline).
    """
    from bertkit.runs.seq2seq import train_seq2seq

    settings = Seq2SeqSettings(
        train=args.train, dev=args.dev, encoder=args.encoder, decoder=args.decoder,
        random=args.random, share=args.share, **own_values(args, _FIELD_FLAGS),
        **settings_values(args), **own_values(args, _TRAIN_FLAGS))
    result = train_seq2seq(settings, resume=args.resume)
    line = f"{result.output_dir}\tstep={result.step}\tstopped={result.stop_reason}"
    if result.final_metrics:
        final = result.final_metrics
        line += (f"\tdev BLEU={final['bleu']} chrF={final['chrf']}\tcopy baseline BLEU="
                 f"{final['copy_baseline']['bleu']} chrF={final['copy_baseline']['chrf']}")
    print(line)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """``bertkit seq2seq evaluate``: translate a pair file; BLEU, chrF, copy baseline."""
    from bertkit.runs.seq2seq import evaluate_seq2seq

    result = evaluate_seq2seq(args.model, args.pairs, out=args.out, limit=args.limit,
                              **own_values(args, _FIELD_FLAGS), device=args.device,
                              **own_values(args, _GENERATION_FLAGS), batch_size=args.batch_size)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def run_generate(args: argparse.Namespace) -> int:
    """``bertkit seq2seq generate``: translate texts (arguments or stdin lines)."""
    from bertkit.runs.seq2seq import load_seq2seq
    from bertkit.tasks.translation import translate

    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise UsageError("no source texts: pass them as arguments or on stdin")
    model, tokenizer, device = load_seq2seq(args.model, device=args.device)
    for text in translate(model, tokenizer, texts, **own_values(args, _GENERATION_FLAGS),
                          batch_size=args.batch_size, device=device):
        print(text)
    return 0


def run_align(args: argparse.Namespace) -> int:
    """``bertkit seq2seq align``: cross-attention alignment of a translation (PNG heatmap and/or
    HTML view).
    """
    from bertkit.inference.alignment import write_alignment
    from bertkit.inference.attention_maps import VIZ_EXTRA, viz_available
    from bertkit.runs.seq2seq import load_seq2seq

    if args.png is None and args.html is None:
        raise UsageError("nothing to write: pass --png MAP.png and/or --html OUT.html")
    if args.png is not None and not viz_available():
        raise UsageError(f"--png needs matplotlib, an optional extra: {VIZ_EXTRA} (or write "
                         "only --html)")
    model, tokenizer, _ = load_seq2seq(args.model, device=args.device)
    drawn = write_alignment(model, tokenizer, args.text, args.target, args.html, args.png,
                            layer=args.layer,
                            title=f"bertkit cross-attention — {args.model.name}")
    print(drawn.text)
    for path in drawn.files:
        print(f"wrote {path}")
    return 0
