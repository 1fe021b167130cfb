"""``bertkit pretrain``: pretrain a BERT from text files (BERT static or RoBERTa dynamic), an
ALBERT (MLM + sentence order) or an ELECTRA (generator + discriminator)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from bertkit.cli import numbers
from bertkit.runs.pretrain import REGIMES, PretrainResult, PretrainSettings, pretrain
from bertkit.variants import PRESETS


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "pretrain", help="pretrain a BERT, ALBERT or ELECTRA on text files",
        description="Writes a Hugging Face-format model directory with the tokenizer beside it; "
                    "checkpoints/ and metrics.jsonl make the run resumable and inspectable. "
                    "Under torchrun the same command trains with DDP.")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--preset", choices=sorted(PRESETS), default="bert_tiny",
                       help="model size (vocab_size follows the tokenizer); default bert_tiny")
    model.add_argument("--config", type=Path, default=None,
                       help="a config.json (its vocab_size must equal the tokenizer's)")
    parser.add_argument("--objective", "--regime", dest="regime", choices=REGIMES,
                        default="bert",
                        help="bert: MLM + NSP on static shards; roberta: packed, dynamic masks, "
                        "no NSP; albert: MLM + sentence order (an albert_* preset); electra: "
                        "generator + replaced-token discriminator (an electra_* preset)")
    parser.add_argument("--rtd-weight", type=numbers.nonnegative_real, default=50.0,
                        help="electra: weight λ of the discriminator loss (default 50)")
    parser.add_argument("--generator-size", type=numbers.positive_real, default=0.25,
                        help="electra: generator hidden size as a fraction of the "
                        "discriminator's (default 0.25)")
    parser.add_argument("--dupe-factor", type=numbers.positive, default=5,
                        help="bert/albert: passes over the corpus, each masked afresh "
                        "(default 5)")
    parser.add_argument("--short-seq-prob", type=numbers.real(0, 1), default=0.1,
                        help="bert/albert: share of instances cut to a random shorter length, "
                        "so the model sees short inputs too (default 0.1, BERT's)")
    add_run_arguments(parser)
    parser.set_defaults(handler=run)


def add_run_arguments(parser: argparse.ArgumentParser, *, tokenizer_required: bool = True,
                      tokenizer_help: str = "tokenizer directory (from `bertkit tokenizer "
                                            "train`)") -> None:
    """The options every masked-LM training command shares (corpus, output, budget, data,
    optimisation, evaluation, checkpoints); :func:`run_settings` reads them back."""
    parser.add_argument("--corpus", nargs="+", required=True, metavar="PATH",
                        help="text files, directories or globs")
    parser.add_argument("--format", dest="corpus_format", choices=("lines", "free"),
                        default="lines", help="'lines': one sentence per line, blank line "
                        "between documents (BERT); 'free': paragraphs of prose")
    parser.add_argument("--tokenizer", type=Path, required=tokenizer_required,
                        help=tokenizer_help)
    parser.add_argument("--model-override", action="append", default=[], metavar="FIELD=JSON",
                        help="change one model config field, e.g. hidden_size=64 (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--max-steps", type=numbers.positive, default=1000)
    parser.add_argument("--max-minutes", type=numbers.positive_real, default=None)
    parser.add_argument("--batch-size", type=numbers.positive, default=32)
    parser.add_argument("--seq-len", type=numbers.positive, default=128)
    parser.add_argument("--mlm-rate", type=numbers.rate, default=0.15)
    parser.add_argument("--max-predictions", type=numbers.positive, default=None)
    parser.add_argument("--whole-word", action="store_true", help="whole-word masking")
    parser.add_argument("--eval-fraction", type=numbers.fraction, default=0.05,
                        help="share of documents held out for evaluation (default 0.05)")
    parser.add_argument("--eval-max-examples", type=numbers.positive, default=1024,
                        help="held-out sequences scored per evaluation (default 1024)")
    parser.add_argument("--lr", type=numbers.positive_real, default=1e-4)
    parser.add_argument("--warmup", type=numbers.nonnegative, default=0, help="warmup steps")
    parser.add_argument("--weight-decay", type=numbers.nonnegative_real, default=0.01)
    parser.add_argument("--grad-accum", type=numbers.positive, default=1)
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--eval-every", type=numbers.nonnegative, default=0)
    parser.add_argument("--checkpoint-every", type=numbers.nonnegative, default=0)
    parser.add_argument("--log-every", type=numbers.nonnegative, default=10)
    parser.add_argument("--seed", type=numbers.seed, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=numbers.positive, default=None,
                        help="CPU threads for PyTorch")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model (checkpoints hold the plain module)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its newest checkpoint")


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~bertkit.runs.pretrain.PretrainSettings` fields of :func:`add_run_arguments`."""
    return dict(
        corpus=args.corpus, output_dir=args.out, tokenizer=args.tokenizer,
        model_overrides=_overrides(args.model_override), corpus_format=args.corpus_format,
        seq_len=args.seq_len, batch_size=args.batch_size, mlm_rate=args.mlm_rate,
        max_predictions=args.max_predictions, whole_word=args.whole_word,
        eval_fraction=args.eval_fraction, eval_max_examples=args.eval_max_examples,
        weight_decay=args.weight_decay, max_steps=args.max_steps,
        max_minutes=args.max_minutes, learning_rate=args.lr, warmup_steps=args.warmup,
        grad_accum=args.grad_accum, precision=args.precision, eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every, seed=args.seed,
        device=args.device, num_threads=args.threads, progress=not args.no_progress,
        compile=args.compile)


def _overrides(items: list[str]) -> dict[str, object]:
    from bertkit.errors import UsageError

    result: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--model-override {item!r}: expected FIELD=VALUE")
        try:
            result[name] = json.loads(raw)
        except ValueError:
            result[name] = raw
    return result


def run(args: argparse.Namespace) -> int:
    settings = PretrainSettings(
        **run_settings(args), preset=None if args.config else args.preset,
        config_path=args.config, regime=args.regime, dupe_factor=args.dupe_factor,
        short_seq_prob=args.short_seq_prob,
        rtd_weight=args.rtd_weight, generator_size=args.generator_size)
    report(pretrain(settings, resume=args.resume))
    return 0


def report(result: PretrainResult) -> None:
    """One line: the model to fine-tune, its step, why it stopped and its last held-out
    scores."""
    where = result.model_dir or result.output_dir
    line = f"{where}\tstep={result.step}\tstopped={result.stop_reason}"
    if result.eval:
        shown = {k: round(v, 4) for k, v in result.eval.items() if k != "step"}
        line += "\t" + " ".join(f"{k}={v}" for k, v in shown.items())
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one line from rank 0
        print(line)
