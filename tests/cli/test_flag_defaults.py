"""Every flag of every command whose settings are a dataclass: its default is the field's, and
``--help`` shows it. The walk covers each leaf command of ``bertkit``; a new command must say
here which dataclasses its flags set (or that it has none), so none is left unchecked.

A flag is matched to a field by its destination name (``--lr`` → ``learning_rate``); a flag
whose name is a field's but whose meaning is another is listed in ``OTHER_MEANING``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from bertkit.analysis.linear_probe import ProbeSettings
from bertkit.cli import build_parser
from bertkit.demo import DemoSettings
from bertkit.objectives.distillation import DistillationLoss
from bertkit.resources.corpora import CorpusOptions
from bertkit.runs.distill import DistillSettings
from bertkit.runs.finetune import FinetuneConfig
from bertkit.runs.pretrain import PretrainSettings
from bertkit.runs.seq2seq import Seq2SeqSettings
from bertkit.server.limits import BatchLimits, RequestLimits
from bertkit.tasks.registry import FINETUNED

#: Each command whose flags set dataclass fields, and those dataclasses.
SETTINGS: dict[str, tuple[type, ...]] = {
    "demo": (DemoSettings,),
    "data corpus": (CorpusOptions,),
    "pretrain": (PretrainSettings,),
    "distill": (DistillSettings, DistillationLoss),
    **{f"finetune {task}": (FinetuneConfig,) for task in FINETUNED},
    "serve": (BatchLimits, RequestLimits),
    "seq2seq train": (Seq2SeqSettings,),
    "seq2seq evaluate": (Seq2SeqSettings,),
    "seq2seq generate": (Seq2SeqSettings,),
    "probe": (ProbeSettings,),
}

#: Commands whose options are a library function's keywords, not a settings dataclass.
NO_SETTINGS = {
    "data fetch", "data list", "data finefoods", "data ddtp", "info", "quickstart", "fill-mask",
    "embed", "similar", "attention", "audit manifest", "audit verify", "audit confidence",
    "audit backdoor", "audit shift", "audit membership", "audit consistency",
    "audit adversarial", "audit all", "export onnx", "export quantize", "tokenizer train",
    "predict", "evaluate", "seq2seq align", "heads", "prune",
}

#: Flags named like a field that set something else.
OTHER_MEANING = {
    # the window is the task's own (QA reads 384 tokens), as the runner's default config is
    **{f"finetune {task}": {"max_length"} for task in FINETUNED},
    # extraction's batch, device and control-task seed; the probe trainer keeps its own
    "probe": {"batch_size", "device", "seed"},
    # translation batches, not training micro-batches
    "seq2seq evaluate": {"batch_size"}, "seq2seq generate": {"batch_size"},
}


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
                  ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``("finetune ner", its parser)`` for every command that takes no further command."""
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield " ".join(path), parser
    for action in subcommands:
        for name, child in action.choices.items():
            yield from leaf_commands(child, (*path, name))


def field_defaults(classes: tuple[type, ...]) -> dict[str, Any]:
    defaults = {}
    for cls in classes:
        for item in dataclasses.fields(cls):
            if item.default is not dataclasses.MISSING:
                defaults[item.name] = item.default
            elif item.default_factory is not dataclasses.MISSING:
                defaults[item.name] = item.default_factory()
    return defaults


COMMANDS = dict(leaf_commands(build_parser()))


def test_every_command_is_classified() -> None:
    assert set(SETTINGS).isdisjoint(NO_SETTINGS)
    assert set(COMMANDS) == set(SETTINGS) | NO_SETTINGS


@pytest.mark.parametrize("command", sorted(SETTINGS))
def test_flags_default_to_the_fields_and_help_shows_it(command: str) -> None:
    defaults = field_defaults(SETTINGS[command])
    skip = OTHER_MEANING.get(command, set())
    checked, drifted, unshown = [], {}, []
    for action in COMMANDS[command]._actions:
        name = action.dest
        if name not in defaults or name in skip or action.required:
            continue
        checked.append(name)
        if action.default != defaults[name]:
            drifted[action.option_strings[0]] = (action.default, defaults[name])
        switch = isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)
        shown = {f"default{sep} {value}" for sep in ("", ":")
                 for value in ("%(default)s", action.default)}
        if not switch and action.default is not None \
                and not any(text in (action.help or "") for text in shown):
            unshown.append(action.option_strings[0])
    assert checked, f"no flag of {command} sets a field of {SETTINGS[command]}"
    assert drifted == {}, "flag default != dataclass default"
    assert unshown == [], "--help does not show these defaults"
