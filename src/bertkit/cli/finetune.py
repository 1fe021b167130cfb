"""``bertkit finetune classify|ner|qa|multiple-choice``: argument parsing only; the work is in
:mod:`bertkit.runs.finetune`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from bertkit.cli import numbers
from bertkit.runs.finetune import (
    FinetuneConfig,
    finetune_classifier,
    finetune_multiple_choice,
    finetune_ner,
    finetune_qa,
)
from bertkit.runs.search import Runner, search_finetune
from bertkit.tasks.registry import FINETUNED, task_spec


def _common(parser: argparse.ArgumentParser, max_length: int) -> None:
    parser.add_argument("--model", type=Path, required=True, help="pretrained model directory")
    parser.add_argument("--train", type=Path, required=True, metavar="FILE")
    parser.add_argument("--eval", type=Path, required=True, metavar="FILE",
                        help="held-out file, evaluated after every epoch")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="run directory (best model, metrics, predictions)")
    parser.add_argument("--epochs", type=numbers.positive_real, default=3.0)
    parser.add_argument("--max-steps", type=numbers.positive, default=None,
                        help="optimizer steps (overrides --epochs)")
    parser.add_argument("--lr", type=numbers.positive_real, default=5e-5, help="peak learning rate")
    parser.add_argument("--weight-decay", type=numbers.nonnegative_real, default=0.01)
    parser.add_argument("--warmup-ratio", type=numbers.fraction, default=0.1)
    parser.add_argument("--batch-size", type=numbers.positive, default=16)
    parser.add_argument("--eval-batch-size", type=numbers.positive, default=64)
    parser.add_argument("--max-length", type=numbers.positive, default=max_length,
                        help=f"tokens per window; longer inputs are windowed (default "
                             f"{max_length})")
    parser.add_argument("--doc-stride", type=numbers.positive, default=None,
                        help="step between window starts (default: half a window)")
    parser.add_argument("--seed", type=numbers.seed, default=42)
    parser.add_argument("--metric", default=None, help="metric that picks the best epoch")
    parser.add_argument("--patience", type=numbers.positive, default=None,
                        help="stop after this many epochs without improvement")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--max-minutes", type=numbers.positive_real, default=None)
    parser.add_argument("--progress", action="store_true", help="show a progress line")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model for training")
    parser.add_argument("--search", type=numbers.positive, default=None, metavar="N",
                        help="hyperparameter search: N Optuna trials (lr, batch size, epochs, "
                             "warmup, weight decay, seed; median pruning) scored on --eval "
                             "(the dev split); OUT keeps the best trial's model and "
                             "search.json (needs bertkit[search])")
    parser.add_argument("--search-seed", type=numbers.seed, default=0,
                        help="the search sampler's seed (default 0)")


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "finetune", help="fine-tune a pretrained encoder: " + " | ".join(FINETUNED),
        description="Fine-tune, evaluate every epoch, keep the best model; writes OUT/ with "
                    "the model, run_config.json, metrics.jsonl, final_metrics.json and "
                    "predictions.jsonl.")
    tasks = parser.add_subparsers(title="tasks", metavar="TASK", required=True)
    for name in FINETUNED:  # every fine-tuned task of the registry has its options and runner
        spec = task_spec(name)
        options, handler = _TASK_OPTIONS[name]
        task = tasks.add_parser(name, help=spec.help)
        _common(task, spec.max_length)
        options(task)
        task.set_defaults(handler=handler)


def _classify_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--text-pair-column", default=None)
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--label-kind", choices=("multiclass", "multilabel", "regression"),
                        default="multiclass")
    parser.add_argument("--label-separator", default=None,
                        help="splits multi-label cells in CSV/TSV/.tab, e.g. '|'")
    parser.add_argument("--aggregate", choices=("mean", "max"), default="mean",
                        help="how window logits combine into one answer per text")


def _ner_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--label-all-pieces", action="store_true",
                        help="label every word piece (default: the first piece of each word)")


def _qa_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-answer-length", type=numbers.positive, default=30)


def _config(args: argparse.Namespace) -> FinetuneConfig:
    return FinetuneConfig(
        epochs=args.epochs, max_steps=args.max_steps, learning_rate=args.lr,
        weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio,
        batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
        max_length=args.max_length, doc_stride=args.doc_stride, seed=args.seed,
        metric=args.metric, patience=args.patience, device=args.device,
        precision=args.precision, max_minutes=args.max_minutes, progress=args.progress,
        aggregate=getattr(args, "aggregate", "mean"), compile=args.compile)


def _run(args: argparse.Namespace, runner: Runner) -> int:
    """One run, or with ``--search N`` the best of N trials; prints one JSON line."""
    extra: dict[str, object] = {}
    if args.search is None:
        result = runner(_config(args), args.out)
    else:
        found = search_finetune(runner, _config(args), args.out, trials=args.search,
                                seed=args.search_seed)
        result = found.best
        extra = {"best_trial": found.best_trial, "best_params": found.best_params,
                 "pruned": sum(t["state"] == "pruned" for t in found.trials)}
    shown = {k: v for k, v in result.metrics.items() if isinstance(v, int | float)}
    print(json.dumps({"output_dir": str(result.output_dir), **shown, **extra}),
          file=sys.stdout)
    return 0


def run_classify(args: argparse.Namespace) -> int:
    return _run(args, lambda config, out: finetune_classifier(
        args.model, args.train, args.eval, out, text_column=args.text_column,
        text_pair_column=args.text_pair_column, label_column=args.label_column,
        label_kind=args.label_kind, label_separator=args.label_separator, config=config))


def run_ner(args: argparse.Namespace) -> int:
    return _run(args, lambda config, out: finetune_ner(
        args.model, args.train, args.eval, out, config=config,
        label_all_pieces=args.label_all_pieces))


def run_qa(args: argparse.Namespace) -> int:
    return _run(args, lambda config, out: finetune_qa(
        args.model, args.train, args.eval, out, config=config,
        doc_stride=args.doc_stride or 128, max_answer_length=args.max_answer_length))


def run_multiple_choice(args: argparse.Namespace) -> int:
    return _run(args, lambda config, out: finetune_multiple_choice(
        args.model, args.train, args.eval, out, config=config))


_TASK_OPTIONS: dict[str, tuple[Callable[[argparse.ArgumentParser], None],
                               Callable[[argparse.Namespace], int]]] = {
    "classify": (_classify_options, run_classify), "ner": (_ner_options, run_ner),
    "qa": (_qa_options, run_qa), "multiple-choice": (lambda parser: None, run_multiple_choice)}
