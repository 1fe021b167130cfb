"""``bertkit distill``: distil a BERT masked-LM teacher into a DistilBERT student on text files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bertkit.cli import numbers
from bertkit.cli.command import add_command
from bertkit.cli.flags import add_own_flags, own_values
from bertkit.cli.pretrain import add_run_arguments, report, run_settings
from bertkit.objectives.distillation import DistillationLoss
from bertkit.runs.distill import DistillSettings, distill

#: The distillation loss's flags: (field, flag, type, help).
_LOSS_FLAGS = (
    ("temperature", "--temperature", numbers.positive_real, "softmax temperature T"),
    ("alpha_ce", "--alpha-ce", numbers.nonnegative_real, "weight of the soft-target KL loss"),
    ("alpha_mlm", "--alpha-mlm", numbers.nonnegative_real, "weight of the student's MLM loss"),
    ("alpha_cos", "--alpha-cos", numbers.nonnegative_real,
     "weight of the hidden-state cosine loss"),
)


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = add_command(subcommands, "distill", run)
    parser.add_argument("--teacher", type=Path, required=True,
                        help="a BERT pretraining or masked-LM checkpoint directory")
    parser.add_argument("--config", type=Path, default=None,
                        help="a DistilBERT config.json for the student (default: the teacher's "
                             "width, half its depth; --model-override num_hidden_layers=N)")
    parser.add_argument("--teacher-layers", type=_layers, default=None, metavar="I,J,…",
                        help="teacher layer copied into each student layer (default: evenly "
                             "spaced, 0,2,4,… for half the depth)")
    add_own_flags(parser, DistillationLoss, _LOSS_FLAGS)
    add_run_arguments(parser, DistillSettings, tokenizer_required=False,
                      tokenizer_help="tokenizer directory (default: the teacher's directory)")


def _layers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer numbers, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    """``bertkit distill``: distil a BERT teacher into a DistilBERT student (half the layers).

    Initialises the student from every other teacher layer and trains it on soft-target KL (× T²) +
    MLM + hidden-state cosine losses, with the data, evaluation and checkpoints of `bertkit pretrain
    --regime roberta`. Writes a Hugging Face DistilBertForMaskedLM directory with the tokenizer.
    """
    settings = DistillSettings(
        **{**run_settings(args), "tokenizer": args.tokenizer or args.teacher},
        teacher=args.teacher, config_path=args.config, teacher_layers=args.teacher_layers,
        loss=DistillationLoss(**own_values(args, _LOSS_FLAGS)))
    report(distill(settings, resume=args.resume))
    return 0
