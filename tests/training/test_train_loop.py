"""The loop's behaviour: accumulation, budgets, signals, precision, compile, eval and logs."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections import namedtuple
from dataclasses import dataclass
from functools import partial

import pytest
import torch
from train_toys import item_mean_loss_fn, make_trainer

from bertkit.errors import ConfigError, UsageError
from bertkit.training import (
    ProgressLine,
    TrainConfig,
    Trainer,
    load_model_weights,
    move_to_device,
    read_checkpoint,
)
from bertkit.training.progress import format_duration


def record_gradients(trainer):
    """The flattened gradient each optimizer update sees (AdamW and clipping are nearly
    invariant to the gradient's scale, so updated weights alone would hide a wrong scale)."""
    seen = []

    def hook(optimizer, _args, _kwargs):
        seen.append(torch.cat([p.grad.flatten() for p in trainer.module.parameters()]))

    trainer.optimizer.register_step_pre_hook(hook)
    return seen


def test_accumulating_k_micro_batches_equals_one_k_times_larger_batch():
    common = {"dropout": 0.0, "noise": False, "n": 48, "max_steps": 3, "max_grad_norm": None,
              "warmup_steps": 1}  # no clipping: it would rescale both gradients alike
    big, big_losses = make_trainer(None, batch_size=12, **common)
    small, small_losses = make_trainer(None, batch_size=4, grad_accum_steps=3, **common)
    big_grads, small_grads = record_gradients(big), record_gradients(small)
    big.fit()
    small.fit()
    assert small_losses == pytest.approx(big_losses, rel=1e-6)
    assert len(big_grads) == len(small_grads) == 3
    for a, b in zip(big_grads, small_grads, strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    for (name, a), b in zip(big.module.state_dict().items(), small.module.state_dict().values(),
                            strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), name
    # And the weights really moved (the comparison is not between two untouched models).
    fresh, _ = make_trainer(None, batch_size=12, **common)
    assert not torch.allclose(fresh.module.up.weight, big.module.up.weight, atol=1e-3)


@pytest.mark.parametrize("reported", [True, False])
def test_loss_items_weigh_micro_batches_as_one_large_batch(reported: bool) -> None:
    """A loss that is a mean over a varying number of items: with ``loss_items`` reported,
    three micro-batches of 4 give the gradient and logged loss of one batch of 12; without
    it each micro-batch weighs a third, which differs (so the comparison can fail)."""
    def unreported(model, batch):
        loss, _ = item_mean_loss_fn(model, batch)
        return loss, {}

    loss = item_mean_loss_fn if reported else unreported
    common = {"dropout": 0.0, "noise": False, "n": 48, "max_steps": 3, "max_grad_norm": None,
              "warmup_steps": 1, "log_every": 1, "loss": loss}
    big, big_losses = make_trainer(None, batch_size=12, **common)
    small, small_losses = make_trainer(None, batch_size=4, grad_accum_steps=3, **common)
    big_grads, small_grads = record_gradients(big), record_gradients(small)
    logged = {id(t): [] for t in (big, small)}
    for trainer in (big, small):
        trainer.add_callback("on_step_end",
                             lambda t, info: logged[id(t)].append(info["record"]["loss"]))
    big.fit()
    small.fit()
    same = [torch.allclose(a, b, rtol=1e-5, atol=1e-7)
            for a, b in zip(big_grads, small_grads, strict=True)]
    if reported:
        assert all(same)
        assert logged[id(small)] == pytest.approx(logged[id(big)], rel=1e-6)
        assert small_losses == pytest.approx(big_losses, rel=1e-6)  # one process: its mean
    else:
        assert not any(same)


def test_loss_items_reported_for_some_micro_batches_only_is_refused() -> None:
    calls = []

    def sometimes(model, batch):
        loss, metrics = item_mean_loss_fn(model, batch)
        calls.append(1)
        return loss, metrics if len(calls) % 2 else {}

    trainer, _ = make_trainer(None, batch_size=4, grad_accum_steps=2, max_steps=1,
                              loss=sometimes)
    with pytest.raises(UsageError, match="'loss_items' for some micro-batches"):
        trainer.fit()


def test_gradients_are_clipped_to_the_global_norm():
    trainer, _ = make_trainer(None, max_steps=2, max_grad_norm=1e-3, log_every=1)
    grads = record_gradients(trainer)
    norms = []
    trainer.add_callback("on_step_end", lambda _t, info: norms.append(info["record"]["grad_norm"]))
    trainer.fit()
    assert all(norm > 1e-2 for norm in norms)  # logged: the norm before clipping
    assert all(g.norm().item() == pytest.approx(1e-3, rel=1e-4) for g in grads)


def test_time_budget_stops_cleanly_with_a_checkpoint(tmp_path):
    trainer, losses = make_trainer(tmp_path, max_steps=10_000, max_minutes=0.3 / 60)
    trainer.add_callback("on_step_end", lambda _t, _info: time.sleep(0.05))
    result = trainer.fit()
    assert result.stop_reason == "time_budget"
    assert 2 <= result.step < 30 and len(losses) == result.step
    assert read_checkpoint(tmp_path).step == result.step


def test_sigint_finishes_the_step_saves_and_restores_the_handler(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    trainer, losses = make_trainer(tmp_path, max_steps=50)

    def press_ctrl_c(_trainer, info):
        if info["step"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    trainer.add_callback("on_step_end", press_ctrl_c)
    result = trainer.fit()
    assert (result.stop_reason, result.step, len(losses)) == ("interrupted", 3, 3)
    assert result.checkpoint == tmp_path / "checkpoints" / "step-00000003"
    assert read_checkpoint(result.checkpoint).step == 3
    assert signal.getsignal(signal.SIGINT) is before


def test_request_stop_and_fresh_run_refuses_old_checkpoints(tmp_path):
    trainer, _ = make_trainer(tmp_path, max_steps=50)
    trainer.add_callback("on_step_end",
                         lambda t, info: t.request_stop() if info["step"] == 2 else None)
    assert trainer.fit().stop_reason == "requested"
    again, _ = make_trainer(tmp_path, max_steps=50)
    with pytest.raises(UsageError, match="already holds checkpoints"):
        again.fit()


def test_eval_is_the_mean_over_held_out_batches_and_is_logged(tmp_path):
    trainer, _ = make_trainer(tmp_path, max_steps=4, eval_every=2, log_every=1, eval_n=20,
                              dropout=0.5)
    trainer.fit()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["step"]) for r in records] == [
        ("train", 1), ("train", 2), ("eval", 2), ("train", 3), ("train", 4), ("eval", 4)]
    assert {"loss", "lr", "grad_norm", "accuracy", "samples_per_s"} <= set(records[0])
    # Recompute the final evaluation by hand: eval mode (no dropout), 3 batches of 8 (padded).
    model, data = trainer.module, trainer.eval_data
    was_training = model.training
    per_batch = []
    with torch.no_grad():
        model.eval()
        for x, y in data:
            per_batch.append(torch.nn.functional.cross_entropy(model(x), y).item())
    model.train(was_training)
    assert len(per_batch) == 3
    assert records[-1]["loss"] == pytest.approx(sum(per_batch) / 3, rel=1e-6)
    assert trainer.evaluate()["loss"] == pytest.approx(records[-1]["loss"], rel=1e-6)
    assert trainer.module.training  # evaluate() gave the model back in training mode


def test_precision_fp16_needs_cuda_and_bf16_trains_on_cpu():
    with pytest.raises(ConfigError, match="precision='fp16'"):
        make_trainer(None, precision="fp16")
    trainer, losses = make_trainer(None, precision="bf16", max_steps=3)
    trainer.fit()
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))


def test_compile_checkpoints_the_plain_module(tmp_path, monkeypatch):
    # The eager backend exercises the wrapping without a C++ toolchain or minutes of compiling.
    monkeypatch.setattr(torch, "compile", partial(torch.compile, backend="eager"))
    trainer, _ = make_trainer(tmp_path, max_steps=2, compile=True)
    assert trainer.model is not trainer.module
    trainer.fit()
    checkpoint = read_checkpoint(tmp_path)
    assert set(checkpoint.model_state) == set(trainer.module.state_dict())
    plain, _ = make_trainer(None, model_seed=9)
    load_model_weights(tmp_path, plain.module)
    assert torch.equal(plain.module.up.weight, trainer.module.up.weight)


def test_progress_line_and_quiet_mode(capsys):
    trainer, _ = make_trainer(None, max_steps=4, log_every=2, progress=True)
    trainer.fit()
    err = capsys.readouterr().err
    assert "step 2/4 | loss " in err and "samples/s" in err and "ETA" in err
    quiet, _ = make_trainer(None, max_steps=4, log_every=2, progress=False)
    quiet.fit()
    assert capsys.readouterr().err == ""

    stream = io.StringIO()
    line = ProgressLine(10, stream=stream)
    text = line.update(3, {"loss": 2.5}, throughput=12345.6, unit="tokens", eta_seconds=192)
    assert text == "step 3/10 | loss 2.5000 | 12,346 tokens/s | ETA 3m12s"
    assert stream.getvalue() == text + "\n"  # not a terminal: whole lines
    assert [format_duration(s) for s in (45, 192, 7500)] == ["45s", "3m12s", "2h05m"]


def test_tokens_metric_gives_tokens_per_second(tmp_path):
    trainer, _ = make_trainer(tmp_path, max_steps=2, log_every=1)
    base = trainer.loss_fn

    def with_tokens(model, batch):
        loss, metrics = base(model, batch)
        return loss, {**metrics, "tokens": batch[0].numel()}

    trainer.loss_fn = with_tokens
    trainer.fit()
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert "tokens_per_s" in record and "tokens" not in record and "samples_per_s" not in record


def test_bad_protocols_are_clear_errors():
    trainer, _ = make_trainer(None, max_steps=1)
    trainer.loss_fn = lambda model, batch: model(batch[0]).sum()  # forgot the metrics dict
    with pytest.raises(UsageError, match=r"must return \(scalar loss tensor, dict of metrics\)"):
        trainer.fit()
    with pytest.raises(UsageError, match="has no state_dict"):
        Trainer(torch.nn.Linear(2, 2), lambda m, b: None, [1, 2], TrainConfig(device="cpu"))
    with pytest.raises(ConfigError, match=r"TrainConfig\.grad_accum_steps"):
        TrainConfig(grad_accum_steps=0).validate()


def test_config_validate_names_the_field():
    for field, value in [("max_steps", 0), ("max_minutes", -1), ("learning_rate", 0),
                         ("schedule", "step"), ("precision", "fp8"), ("warmup_steps", -1),
                         ("min_lr_ratio", 2.0), ("max_grad_norm", float("inf")),
                         ("keep_checkpoints", 0), ("betas", (0.9, 1.0))]:
        with pytest.raises(ConfigError, match=rf"TrainConfig\.{field} must be"):
            TrainConfig(**{field: value}).validate()
    with pytest.raises(ConfigError, match=r"TrainConfig\.output_dir"):
        TrainConfig(checkpoint_every=10).validate()
    assert json.dumps(TrainConfig(output_dir="x").validate().to_dict())


Pair = namedtuple("Pair", "a b")


@dataclass
class Batch:
    ids: torch.Tensor
    name: str


def test_move_to_device_keeps_container_types():
    batch = {"pair": Pair(torch.ones(2), [torch.zeros(1)]), "batch": Batch(torch.ones(3), "x")}
    moved = move_to_device(batch, torch.device("cpu"))
    assert isinstance(moved["pair"], Pair) and isinstance(moved["pair"].b, list)
    assert isinstance(moved["batch"], Batch) and moved["batch"].name == "x"
    assert torch.equal(moved["batch"].ids, torch.ones(3))
