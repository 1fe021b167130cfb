"""A flag left out means the run dataclass's default: what the CLI passes for each setting when
no flag is given equals the field's default (no default is written twice and drifts)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bertkit.cli import build_parser
from bertkit.cli.finetune import _config
from bertkit.cli.pretrain import run_settings
from bertkit.runs.distill import DistillSettings
from bertkit.runs.finetune import FinetuneConfig
from bertkit.runs.pretrain import PretrainSettings
from bertkit.tasks.registry import FINETUNED, task_spec

REQUIRED = ["--corpus", "c.txt", "--tokenizer", "tok", "--out", "out"]


def _defaults(cls: type) -> dict[str, Any]:
    defaults = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return defaults


def _mismatches(passed: dict[str, Any], cls: type, *, skip: set[str]) -> dict[str, tuple]:
    defaults = _defaults(cls)
    return {name: (value, defaults[name]) for name, value in passed.items()
            if name in defaults and name not in skip and value != defaults[name]}


@pytest.mark.parametrize(("command", "cls"), [("pretrain", PretrainSettings),
                                               ("distill", DistillSettings)])
def test_pretrain_and_distill_defaults(command: str, cls: type) -> None:
    extra = ["--teacher", "t"] if command == "distill" else []
    args = build_parser().parse_args([command, *REQUIRED, *extra])
    passed = run_settings(args)
    assert set(passed) - {"corpus", "output_dir", "tokenizer"} <= set(_defaults(cls))
    assert _mismatches(passed, cls, skip=set()) == {}


@pytest.mark.parametrize("task", FINETUNED)
def test_finetune_defaults(task: str) -> None:
    args = build_parser().parse_args(["finetune", task, "--model", "m", "--train", "t",
                                      "--eval", "e", "--out", "o"])
    config = _config(args)
    # The window is the task's own (QA reads 384 tokens), as the runner's default config is.
    assert config.max_length == task_spec(task).max_length
    assert _mismatches(dataclasses.asdict(config), FinetuneConfig, skip={"max_length"}) == {}


def test_compile_flag_reaches_the_run_settings() -> None:
    parser = build_parser()
    assert run_settings(parser.parse_args(["pretrain", *REQUIRED, "--compile"]))["compile"]
    args = parser.parse_args(["finetune", "ner", "--model", "m", "--train", "t", "--eval", "e",
                              "--out", "o", "--compile"])
    assert _config(args).compile
