"""``bertkit pretrain``: pretrain a BERT from text files (BERT static or RoBERTa dynamic), an
ALBERT (MLM + sentence order) or an ELECTRA (generator + discriminator)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from bertkit.cli import numbers
from bertkit.cli.command import add_command
from bertkit.cli.flags import (
    add_own_flags,
    add_settings_flags,
    field_default,
    own_values,
    settings_values,
)
from bertkit.runs.pretrain import (
    MLM_BIAS_INITS,
    REGIMES,
    PretrainResult,
    PretrainSettings,
    pretrain,
)
from bertkit.variants import PRESETS


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = add_command(subcommands, "pretrain", run)
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--preset", choices=sorted(PRESETS),
                       default=field_default(PretrainSettings, "preset"),
                       help="model size (vocab_size follows the tokenizer); default %(default)s")
    model.add_argument("--config", type=Path, default=None,
                       help="a config.json (its vocab_size must equal the tokenizer's)")
    parser.add_argument("--objective", "--regime", dest="regime", choices=REGIMES,
                        default=field_default(PretrainSettings, "regime"),
                        help="bert: MLM + NSP on static shards; roberta: packed, dynamic masks, "
                        "no NSP; albert: MLM + sentence order (an albert_* preset); electra: "
                        "generator + replaced-token discriminator (an electra_* preset); "
                        "default %(default)s")
    parser.add_argument("--rtd-weight", type=numbers.nonnegative_real,
                        default=field_default(PretrainSettings, "rtd_weight"),
                        help="electra: weight λ of the discriminator loss (default %(default)s)")
    parser.add_argument("--generator-size", type=numbers.positive_real,
                        default=field_default(PretrainSettings, "generator_size"),
                        help="electra: generator hidden size as a fraction of the "
                        "discriminator's (default %(default)s)")
    parser.add_argument("--dupe-factor", type=numbers.positive,
                        default=field_default(PretrainSettings, "dupe_factor"),
                        help="copies of the corpus, each masked anew (default %(default)s)")
    parser.add_argument("--short-seq-prob", type=numbers.real(0, 1),
                        default=field_default(PretrainSettings, "short_seq_prob"),
                        help="bert/albert: share of instances cut to a random shorter length, "
                        "so the model sees short inputs too (default %(default)s, BERT's)")
    parser.add_argument("--mlm-bias-init", choices=MLM_BIAS_INITS,
                        default=field_default(PretrainSettings, "mlm_bias_init"),
                        help="masked-LM output bias at the start: unigram (the training "
                        "targets' log frequencies, so the first steps learn context, not base "
                        "rates) or zeros (BERT's); default %(default)s")
    add_run_arguments(parser, PretrainSettings)


def add_run_arguments(parser: argparse.ArgumentParser, cls: type, *,
                      tokenizer_required: bool = True,
                      tokenizer_help: str = "tokenizer directory (from `bertkit tokenizer "
                                            "train`)") -> None:
    """The options every masked-LM training command shares (corpus, output, budget, data,
    optimisation, evaluation, checkpoints), defaults from ``cls``; :func:`run_settings` reads
    them back."""
    parser.add_argument("--corpus", nargs="+", required=True, metavar="PATH",
                        help="text files, directories or globs")
    parser.add_argument("--format", dest="corpus_format", choices=("lines", "free"),
                        default=field_default(cls, "corpus_format"),
                        help="'lines': one sentence per line, blank line "
                        "between documents (BERT); 'free': paragraphs of prose; "
                        "default %(default)s")
    parser.add_argument("--tokenizer", type=Path, required=tokenizer_required,
                        help=tokenizer_help)
    parser.add_argument("--model-override", action="append", default=[], metavar="FIELD=JSON",
                        help="change one model config field, e.g. hidden_size=64 (repeatable)")
    add_settings_flags(parser, cls, required=["output_dir"])
    add_own_flags(parser, cls, _DATA_FLAGS)
    parser.add_argument("--whole-word", action="store_true", help="whole-word masking")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its newest checkpoint")


#: The pretraining commands' own numeric flags: (field, flag, type, help).
_DATA_FLAGS = (
    ("batch_size", "--batch-size", numbers.positive, "sequences per micro-batch and process"),
    ("seq_len", "--seq-len", numbers.positive, "tokens per sequence"),
    ("mlm_rate", "--mlm-rate", numbers.rate, "share of tokens masked"),
    ("max_predictions", "--max-predictions", numbers.positive, "cap on masked tokens per sequence"),
    ("eval_fraction", "--eval-fraction", numbers.fraction,
     "share of documents held out for evaluation"),
    ("eval_max_examples", "--eval-max-examples", numbers.positive,
     "held-out sequences scored per evaluation"),
    ("eval_every", "--eval-every", numbers.nonnegative,
     "held-out evaluation every N steps (0: at the end)"),
    ("checkpoint_every", "--checkpoint-every", numbers.nonnegative,
     "checkpoint every N steps (0: at the end)"),
    ("log_every", "--log-every", numbers.nonnegative, "progress record every N steps"),
)


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~bertkit.runs.pretrain.PretrainSettings` fields of :func:`add_run_arguments`."""
    return dict(
        corpus=args.corpus, tokenizer=args.tokenizer,
        model_overrides=_overrides(args.model_override), corpus_format=args.corpus_format,
        whole_word=args.whole_word, **settings_values(args),
        **own_values(args, _DATA_FLAGS))


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
    """``bertkit pretrain``: pretrain a BERT, ALBERT or ELECTRA on text files.

    Writes a Hugging Face-format model directory with the tokenizer beside it; checkpoints/ and
    metrics.jsonl make the run resumable and inspectable. Under torchrun the same command trains
    with DDP.
    """
    settings = PretrainSettings(
        **run_settings(args), preset=None if args.config else args.preset,
        config_path=args.config, regime=args.regime, dupe_factor=args.dupe_factor,
        short_seq_prob=args.short_seq_prob, mlm_bias_init=args.mlm_bias_init,
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
