"""Two CPU processes under torchrun (gloo, DDP) follow the 1-process run with the same global
batch: same logged losses and eval results, same final weights, one set of files (rank 0's).
The 2-process run also stops at step 3 and resumes, so gathered per-rank checkpoint state is
exercised too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from ddp_train_script import run

from bertkit.errors import UsageError
from bertkit.training import current_context, init_distributed, read_checkpoint
from bertkit.training.distributed import resolve_device

HERE = Path(__file__).parent
GLOBAL_BATCH = 16


def records(output_dir: Path) -> list[dict]:
    lines = (output_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_two_process_gloo_run_matches_one_process(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this Python")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
    two = tmp_path / "two"
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2",
         str(HERE / "ddp_train_script.py"), str(two), str(GLOBAL_BATCH)],
        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]

    one = tmp_path / "one"
    run(one, GLOBAL_BATCH)

    two_records, one_records = records(two), records(one)
    assert [(r["kind"], r["step"]) for r in two_records] == [
        (r["kind"], r["step"]) for r in one_records]
    assert len([r for r in one_records if r["kind"] == "train"]) == 6
    for a, b in zip(two_records, one_records, strict=True):
        for key in ("loss", "accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (a, b)
    # The loss moved, so agreement is not trivial.
    assert one_records[0]["loss"] != pytest.approx(one_records[-2]["loss"], rel=1e-3)

    two_final, one_final = read_checkpoint(two), read_checkpoint(one)
    assert two_final.step == one_final.step == 6 and two_final.meta["world_size"] == 2
    assert len(two_final.training_state["ranks"]) == 2
    for name, value in one_final.model_state.items():
        assert torch.allclose(two_final.model_state[name], value, rtol=1e-5, atol=1e-6), name
    assert sorted(p.name for p in two.iterdir()) == ["checkpoints", "metrics.jsonl"]


def test_single_process_context_and_misuse(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.device.type) == (0, 1, True, "cpu")
    assert not dist.is_initialized() and ctx.all_gather("x") == ["x"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(UsageError, match=r"torch\.distributed is not initialized"):
        current_context("cpu")
    monkeypatch.setenv("RANK", "two")
    with pytest.raises(UsageError, match="RANK='two'"):
        init_distributed("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no usable CUDA"):
            resolve_device("cuda")
