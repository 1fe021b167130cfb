"""Command-line flags derived from the settings dataclasses, so no default is written twice.

Every field of :class:`~bertkit.training.settings.RunSettings` and
:class:`~bertkit.training.settings.TrainSettings` has one flag spelling here (the spellings the
commands always had: ``--out``, ``--lr``, ``--warmup``, ``--grad-accum``, …, with the field
name as an alias where it differs). :func:`add_settings_flags` adds them to a command with the
defaults *of that command's dataclass* (fine-tuning's learning rate is not pretraining's), and
``--help`` shows those defaults. :func:`settings_values` reads them back by field name.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from bertkit.cli import numbers
from bertkit.training.settings import PRECISIONS, SCHEDULES, RunSettings, TrainSettings


class Flag(NamedTuple):
    """How one settings field appears on the command line."""

    names: tuple[str, ...]
    type: Any  # a parser from bertkit.cli.numbers, str, Path, or bool (a switch)
    help: str
    choices: tuple[str, ...] | None = None


FLAGS: dict[str, Flag] = {
    "output_dir": Flag(("--out", "--output-dir"), Path, "output directory"),
    "device": Flag(("--device",), str, '"auto" (CUDA when present, else CPU), "cpu", "cuda:1"'),
    "precision": Flag(("--precision",), str, "fp32; bf16 autocast; fp16 autocast + loss "
                      "scaling (GPU)", PRECISIONS),
    "threads": Flag(("--threads",), numbers.positive, "PyTorch CPU threads"),
    "seed": Flag(("--seed",), numbers.seed, "random seed"),
    "max_minutes": Flag(("--max-minutes",), numbers.positive_real, "wall-clock budget in minutes"),
    "compile": Flag(("--compile",), bool, "torch.compile the model (checkpoints hold the "
                    "plain module)"),
    "progress": Flag(("--progress",), bool, "progress lines on stderr"),
    "max_steps": Flag(("--max-steps",), numbers.positive, "optimizer steps"),
    "learning_rate": Flag(("--lr", "--learning-rate"), numbers.positive_real, "peak learning rate"),
    "weight_decay": Flag(("--weight-decay",), numbers.nonnegative_real, "AdamW weight decay"),
    "schedule": Flag(("--schedule",), str, "learning-rate decay after warmup", SCHEDULES),
    "warmup_steps": Flag(("--warmup", "--warmup-steps"), numbers.nonnegative,
                     "linear warmup steps"),
    "grad_accum_steps": Flag(("--grad-accum", "--grad-accum-steps"), numbers.positive,
                             "micro-batches per optimizer step"),
}

RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunSettings))
TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainSettings))


def field_default(cls: type, name: str) -> Any:
    """The default of dataclass ``cls``'s field ``name`` (for a command's own flags)."""
    for item in dataclasses.fields(cls):
        if item.name == name:
            if item.default is not dataclasses.MISSING:
                return item.default
            if item.default_factory is not dataclasses.MISSING:
                return item.default_factory()
            raise KeyError(f"{cls.__name__}.{name} has no default")
    raise KeyError(f"{cls.__name__} has no field {name}")


def add_settings_flags(parser: argparse.ArgumentParser, cls: type, *,
                       fields: Iterable[str] | None = None, required: Iterable[str] = (),
                       aliases: dict[str, tuple[str, ...]] | None = None,
                       help: dict[str, str] | None = None) -> None:
    """Add the flags of ``fields`` (default: every shared field ``cls`` has), defaults and
    ``--help`` from ``cls``. A switch whose default is on is spelled ``--no-…``.

    ``required`` fields get no default; ``aliases`` adds spellings as they are (e.g. the
    demo's ``--minutes``, or ``--quiet`` for the ``--no-progress`` switch); ``help`` replaces a
    field's help text.
    """
    own = {f.name for f in dataclasses.fields(cls)}
    chosen = [name for name in (fields or FLAGS) if name in own]
    required = set(required)
    for name in chosen:
        flag = FLAGS[name]
        extra = (aliases or {}).get(name, ())
        text = (help or {}).get(name, flag.help)
        if name in required:
            parser.add_argument(*flag.names, *extra, dest=name, type=flag.type, required=True,
                                help=text)
            continue
        default = field_default(cls, name)
        names = flag.names + extra
        if flag.type is bool:
            if default:
                negated = tuple("--no-" + n.removeprefix("--") for n in flag.names) + extra
                parser.add_argument(*negated, dest=name, action="store_false",
                                    help=f"turn off: {text}")
            else:
                parser.add_argument(*names, dest=name, action="store_true", help=text)
            parser.set_defaults(**{name: default})
            continue
        parser.add_argument(*names, dest=name, type=flag.type, default=default,
                            choices=flag.choices, help=f"{text} (default: %(default)s)")


def settings_values(args: argparse.Namespace, fields: Iterable[str] = TRAIN_FIELDS
                    ) -> dict[str, Any]:
    """The values of the settings flags that :func:`add_settings_flags` added, by field."""
    return {name: getattr(args, name) for name in fields if hasattr(args, name)}


#: A command's own flag: (field, flag, type, help); its default comes from the dataclass.
OwnFlag = tuple[str, str, Any, str]


def add_own_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type,
                  flags: Iterable[OwnFlag], *, metavar: str | None = None) -> None:
    """Add a command's own typed flags (to a parser or one of its argument groups), each with
    its ``cls`` field default shown in help; ``metavar`` names their values in ``--help``."""
    for name, flag, kind, text in flags:
        parser.add_argument(flag, dest=name, type=kind, default=field_default(cls, name),
                            metavar=metavar, help=f"{text} (default: %(default)s)")


def own_values(args: argparse.Namespace, flags: Iterable[OwnFlag]) -> dict[str, Any]:
    """The values of :func:`add_own_flags`' flags, by field."""
    return {name: getattr(args, name) for name, *_ in flags}
