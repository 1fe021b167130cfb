"""One settings tree: every run's settings share RunSettings' (and training runs TrainSettings')
field names; the old names still work for one release, with a warning; run files written
with the old names still resume."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bertkit.demo import DemoSettings
from bertkit.errors import CheckpointError
from bertkit.runs.distill import DistillSettings
from bertkit.runs.finetune import FinetuneConfig
from bertkit.runs.pretrain import PretrainSettings
from bertkit.runs.seq2seq import RUN_FILE, Seq2SeqSettings, _check_resume
from bertkit.training import RunSettings, TrainConfig, TrainSettings

TRAINING = [TrainConfig, PretrainSettings, DistillSettings, Seq2SeqSettings, FinetuneConfig]
PRETRAIN = {"corpus": ["c.txt"], "output_dir": "out", "tokenizer": "tok"}
SEQ2SEQ = {"train": "t.tsv", "output_dir": "out", "encoder": "enc"}


def _names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", [*TRAINING, DemoSettings])
def test_every_run_shares_the_base_names(cls: type) -> None:
    base = TrainSettings if cls in TRAINING else RunSettings
    assert issubclass(cls, base)
    assert _names(base) <= _names(cls)
    # No drifted spelling survives as a field of its own.
    assert not {"grad_accum", "num_threads", "out", "minutes", "lr"} & _names(cls)


def test_run_settings_build_the_loop_config() -> None:
    settings = PretrainSettings(**PRETRAIN, grad_accum_steps=3, threads=2, schedule="cosine",
                                learning_rate=3e-4)
    config = TrainConfig(**settings.shared())
    for name in TrainSettings.SHARED:
        assert getattr(config, name) == getattr(settings, name), name


@pytest.mark.parametrize(("cls", "required", "old", "new"), [
    (PretrainSettings, PRETRAIN, {"grad_accum": 4, "num_threads": 2},
     {"grad_accum_steps": 4, "threads": 2}),
    (DistillSettings, {**PRETRAIN, "teacher": "t"}, {"grad_accum": 2},
     {"grad_accum_steps": 2}),
    (Seq2SeqSettings, SEQ2SEQ, {"grad_accum": 2, "num_threads": 1},
     {"grad_accum_steps": 2, "threads": 1}),
    (DemoSettings, {}, {"out": "d", "minutes": 3.0}, {"output_dir": "d", "max_minutes": 3.0}),
])
def test_old_names_work_with_a_deprecation_warning(cls, required, old, new) -> None:
    with pytest.warns(DeprecationWarning, match="now"):
        settings = cls(**required, **old)
    for name, value in new.items():
        assert getattr(settings, name) == value
    (old_name, _), (new_name, _) = next(iter(old.items())), next(iter(new.items()))
    with pytest.warns(DeprecationWarning):
        assert getattr(settings, old_name) == getattr(settings, new_name)
    with pytest.warns(DeprecationWarning):
        setattr(settings, old_name, 7)
    assert getattr(settings, new_name) == 7
    with pytest.raises(TypeError, match="both"):
        cls(**required, **old, **new)
    with pytest.raises(AttributeError):
        settings.no_such_setting  # noqa: B018


def test_output_dir_stays_required_where_it_was() -> None:
    with pytest.raises(TypeError, match="output_dir"):
        PretrainSettings(corpus=["c"], tokenizer="t")
    with pytest.raises(TypeError, match="output_dir"):
        Seq2SeqSettings(train="t", encoder="e")


def test_a_seq2seq_run_recorded_with_old_names_still_resumes(tmp_path: Path) -> None:
    settings = Seq2SeqSettings(**SEQ2SEQ, grad_accum_steps=2)
    recorded = json.loads(json.dumps(dataclasses.asdict(settings)))
    before = {k: v for k, v in recorded.items() if k not in ("grad_accum_steps", "threads")}
    before.update(grad_accum=2, num_threads=None)  # how seq2seq.json looked before the rename
    (tmp_path / RUN_FILE).write_text(json.dumps({"settings": before}))
    _check_resume(tmp_path, recorded)
    recorded["grad_accum_steps"] = 3
    with pytest.raises(CheckpointError, match="grad_accum_steps=2"):
        _check_resume(tmp_path, recorded)


def test_finetune_warmup_steps_override_the_ratio() -> None:
    assert FinetuneConfig().warmup_steps is None
    assert FinetuneConfig(warmup_steps=5).validate().warmup_steps == 5
    with pytest.raises(Exception, match="warmup_steps"):
        FinetuneConfig(warmup_steps=-1).validate()
