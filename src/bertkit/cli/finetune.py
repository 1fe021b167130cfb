"""``bertkit finetune classify|ner|qa|multiple-choice``: argument parsing only; the work is in
:mod:`bertkit.runs.finetune`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from bertkit.cli import numbers
from bertkit.cli.flags import (
    add_own_flags,
    add_settings_flags,
    field_default,
    own_values,
    settings_values,
)
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
    add_settings_flags(parser, FinetuneConfig, required=["output_dir"], help={
        "output_dir": "run directory (best model, metrics, predictions)",
        "max_steps": "optimizer steps (overrides --epochs)",
        "warmup_steps": "linear warmup steps (overrides --warmup-ratio)",
        "compile": "torch.compile the model for training"})
    add_own_flags(parser, FinetuneConfig, _OWN_FLAGS)
    parser.add_argument("--max-length", type=numbers.positive, default=max_length,
                        help=f"tokens per window; longer inputs are windowed (default "
                             f"{max_length})")
    parser.add_argument("--doc-stride", type=numbers.positive, default=None,
                        help="step between window starts (default: half a window)")
    parser.add_argument("--metric", default=None, help="metric that picks the best epoch")
    parser.add_argument("--patience", type=numbers.positive, default=None,
                        help="stop after this many epochs without improvement")
    parser.add_argument("--search", type=numbers.positive, default=None, metavar="N",
                        help="hyperparameter search: N Optuna trials (lr, batch size, epochs, "
                             "warmup, weight decay, seed; median pruning) scored on --eval "
                             "(the dev split); OUT keeps the best trial's model and "
                             "search.json (needs bertkit[search])")
    parser.add_argument("--search-seed", type=numbers.seed, default=0,
                        help="the search sampler's seed (default 0)")


#: Fine-tuning's own numeric flags: (field, flag, type, help).
_OWN_FLAGS = (
    ("epochs", "--epochs", numbers.positive_real, "passes over the training set"),
    ("warmup_ratio", "--warmup-ratio", numbers.fraction, "share of the steps spent warming up"),
    ("batch_size", "--batch-size", numbers.positive, "examples per step"),
    ("eval_batch_size", "--eval-batch-size", numbers.positive, "examples per evaluation batch"),
)


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
    parser.add_argument("--aggregate", choices=("mean", "max"),
                        default=field_default(FinetuneConfig, "aggregate"),
                        help="how window logits combine into one answer per text "
                             "(default: %(default)s)")


def _ner_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--label-all-pieces", action="store_true",
                        help="label every word piece (default: the first piece of each word)")


def _qa_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-answer-length", type=numbers.positive, default=30)


def _config(args: argparse.Namespace) -> FinetuneConfig:
    return FinetuneConfig(
        **settings_values(args), **own_values(args, _OWN_FLAGS),
        max_length=args.max_length, doc_stride=args.doc_stride, metric=args.metric,
        patience=args.patience,
        aggregate=getattr(args, "aggregate", field_default(FinetuneConfig, "aggregate")))


def _run(args: argparse.Namespace, runner: Runner) -> int:
    """One run, or with ``--search N`` the best of N trials; prints one JSON line."""
    extra: dict[str, object] = {}
    if args.search is None:
        result = runner(_config(args), args.output_dir)
    else:
        found = search_finetune(runner, _config(args), args.output_dir, trials=args.search,
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
