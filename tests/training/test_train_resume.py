"""Exact resume: stop at step k, resume, and get the uninterrupted run's losses bit for bit.

Dropout is on and the data pipeline draws from Python's, NumPy's, torch's global and a private
generator, so every RNG the checkpoint restores matters; the epoch (5 batches) does not divide
the step (2 micro-batches), so resumes land mid-epoch and mid-step boundaries are crossed.
"""

from __future__ import annotations

import json

import pytest
import torch
from train_toys import make_trainer

import bertkit.training.resume as resume_module
from bertkit.training import list_checkpoints

SETTINGS = {
    "max_steps": 12,
    "grad_accum_steps": 2,
    "warmup_steps": 3,
    "checkpoint_every": 4,
    "keep_checkpoints": 2,
    "eval_every": 3,
    "log_every": 2,
    "eval_n": 16,
}


def stop_at(step: int):
    def callback(_trainer, info):
        if info["step"] == step:
            raise KeyboardInterrupt

    return callback


def train_records(path):
    lines = path.read_text().splitlines()
    return [(r["kind"], r["step"], r["loss"]) for r in map(json.loads, lines)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    trainer, losses = make_trainer(out, **SETTINGS)
    result = trainer.fit()
    assert result.stop_reason == "max_steps" and result.step == 12
    weights = {k: v.clone() for k, v in trainer.module.state_dict().items()}
    return losses, weights, train_records(out / "metrics.jsonl")


def test_resume_after_ctrl_c_reproduces_losses_exactly(tmp_path, uninterrupted):
    full_losses, full_weights, full_records = uninterrupted
    first, first_losses = make_trainer(tmp_path, **SETTINGS)
    first.add_callback("on_step_end", stop_at(5))
    result = first.fit()
    assert (result.stop_reason, result.step) == ("interrupted", 5)
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == [
        "step-00000004", "step-00000005",  # keep_checkpoints=2
    ]
    torch.manual_seed(999)  # a resumed process starts from other global RNG states...
    resumed, resumed_losses = make_trainer(tmp_path, model_seed=123, **SETTINGS)  # ...and weights
    result = resumed.fit(resume=True)
    assert (result.stop_reason, result.step) == ("max_steps", 12)

    assert first_losses + resumed_losses == full_losses  # exact float equality, step for step
    for name, value in resumed.module.state_dict().items():
        assert torch.equal(value, full_weights[name]), name
    # The log holds each step once, with the same values as the uninterrupted run.
    assert train_records(tmp_path / "metrics.jsonl") == full_records


def test_interrupt_in_the_middle_of_a_step_rolls_back_to_its_start(tmp_path, uninterrupted):
    full_losses = uninterrupted[0]
    first, first_losses = make_trainer(tmp_path, **SETTINGS)
    calls = 0
    original = first.loss_fn

    def interrupting_loss(model, batch):  # Ctrl-C during the 2nd micro-batch of step 7
        nonlocal calls
        calls += model.training  # evaluation calls do not count
        if model.training and calls == 2 * 6 + 2:
            raise KeyboardInterrupt
        return original(model, batch)

    first.loss_fn = interrupting_loss
    result = first.fit()
    assert (result.stop_reason, result.step) == ("interrupted", 6)
    resumed, resumed_losses = make_trainer(tmp_path, model_seed=5, **SETTINGS)
    resumed.fit(resume=True)
    assert first_losses + resumed_losses == full_losses


def test_without_rng_restore_the_resumed_run_differs(tmp_path, uninterrupted, monkeypatch):
    """The oracle can fail: skip restoring the RNGs and dropout/augmentation diverge."""
    first, first_losses = make_trainer(tmp_path, **SETTINGS)
    first.add_callback("on_step_end", stop_at(5))
    first.fit()
    monkeypatch.setattr(resume_module, "restore_rng", lambda *args, **kwargs: None)
    resumed, resumed_losses = make_trainer(tmp_path, **SETTINGS)
    resumed.fit(resume=True)
    assert first_losses + resumed_losses != uninterrupted[0]
    assert first_losses == uninterrupted[0][:5]
