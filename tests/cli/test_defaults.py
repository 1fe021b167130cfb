"""A flag left out means the run dataclass's default: what the CLI passes for each setting when
no flag is given equals the field's default (no default is written twice and drifts)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from typing import Any

import pytest

from bertkit.cli import build_parser
from bertkit.cli.finetune import _config
from bertkit.cli.pretrain import run_settings
from bertkit.runs.distill import DistillSettings
from bertkit.runs.finetune import FinetuneConfig
from bertkit.runs.pretrain import PretrainSettings
from bertkit.tasks.registry import FINETUNED, task_spec
from extras import drop_modules, hide_modules

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
    assert str(config.output_dir) == "o"
    assert _mismatches(dataclasses.asdict(config), FinetuneConfig,
                       skip={"max_length", "output_dir"}) == {}


def test_seq2seq_and_demo_defaults() -> None:
    from bertkit.cli.seq2seq import run_train
    from bertkit.demo import DemoSettings
    from bertkit.runs.seq2seq import Seq2SeqSettings

    made: list[Any] = []
    args = build_parser().parse_args(["seq2seq", "train", "--train", "t", "--out", "o",
                                      "--encoder", "e"])
    with pytest.MonkeyPatch.context() as patch:  # catch the settings, train nothing
        patch.setattr("bertkit.runs.seq2seq.train_seq2seq",
                      lambda settings, resume: made.append(settings) or 1 / 0)
        with pytest.raises(ZeroDivisionError):
            run_train(args)
    passed = dataclasses.asdict(made[0])
    assert _mismatches(passed, Seq2SeqSettings, skip=set()) == {}
    demo = build_parser().parse_args(["demo"])
    assert _mismatches(vars(demo), DemoSettings, skip={"output_dir"}) == {}
    assert str(demo.output_dir) == _defaults(DemoSettings)["output_dir"]


@pytest.mark.parametrize("command", [["pretrain"], ["finetune", "ner"], ["seq2seq", "train"],
                                     ["demo"]])
def test_help_shows_the_dataclass_defaults(command: list[str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from bertkit.demo import DemoSettings
    from bertkit.runs.seq2seq import Seq2SeqSettings

    cls = {"pretrain": PretrainSettings, "finetune": FinetuneConfig,
           "seq2seq": Seq2SeqSettings, "demo": DemoSettings}[command[0]]
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps long help lines
    defaults = _defaults(cls)
    for name in ("learning_rate", "warmup_steps", "seed", "max_minutes", "threads"):
        if name in defaults:
            assert f"(default: {defaults[name]})" in shown, name


def test_compile_flag_reaches_the_run_settings() -> None:
    parser = build_parser()
    assert run_settings(parser.parse_args(["pretrain", *REQUIRED, "--compile"]))["compile"]
    args = parser.parse_args(["finetune", "ner", "--model", "m", "--train", "t", "--eval", "e",
                              "--out", "o", "--compile"])
    assert _config(args).compile


def test_serve_flags_come_from_the_limits_without_the_server_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``bertkit serve``'s limit flags are read off the limit dataclasses, which import without
    FastAPI: with it hidden and the server modules imported afresh, the flags still build and
    pass each field's default."""
    hide_modules(monkeypatch, "fastapi", "uvicorn", "starlette", "pydantic")
    drop_modules(monkeypatch, "bertkit.server", "bertkit.cli.serve")
    serve = importlib.import_module("bertkit.cli.serve")
    limits = importlib.import_module("bertkit.server.limits")
    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers())
    args = vars(parser.parse_args(["serve", "--model", "m"]))
    fields = [f for cls in (limits.BatchLimits, limits.RequestLimits)
              for f in dataclasses.fields(cls) if f.name != "max_top_k"]  # no flag: per route
    assert {f.name: (args[f.name], f.default) for f in fields
            if args[f.name] != f.default} == {}


@pytest.mark.parametrize(("flags", "host"), [([], "127.0.0.1"), (["--host", "0.0.0.0"], "0.0.0.0")])
def test_serve_binds_loopback_unless_told_otherwise(flags: list[str], host: str, monkeypatch):
    """What ``bertkit serve`` hands the server: loopback by default, another address only
    when ``--host`` names it (no port is opened: the server function is replaced)."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    import bertkit.server
    from bertkit.cli import main

    seen: dict[str, Any] = {}
    monkeypatch.setattr(bertkit.server, "serve", lambda models, **options: seen.update(options))
    monkeypatch.delenv("BERTKIT_API_KEY", raising=False)
    assert main(["serve", "--model", "some-dir", *flags]) == 0
    assert seen["host"] == host and seen["api_key"] is None
