"""``kill -9`` at random moments of ``bertkit finetune``, ``seq2seq train`` and ``export onnx``
on a tiny model (forked children, ``tests/killing.py``).

After each kill every final file present is whole (JSON parses, safetensors and ONNX load; the
atomic writer's hidden temporaries are never under a final name) and every checkpoint loads;
for seq2seq the kill → ``--resume`` chain ends with exactly the weights of an uninterrupted
run.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from bertkit.cli import main
from bertkit.training.checkpointing import list_checkpoints, read_checkpoint
from killing import run_killed


def assert_whole(out: Path) -> None:
    """Every final file under ``out`` parses completely; checkpoints load."""
    for path in out.rglob("*"):
        if path.name.startswith("."):
            continue  # the atomic writer's temporaries: hidden, never read
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".safetensors":
            load_file(path)
        elif path.suffix == ".onnx":
            import onnx
            onnx.load(str(path))
    for checkpoint in list_checkpoints(out / "checkpoints"):
        read_checkpoint(checkpoint)


def kill_at_random(argv: list[str], duration: float, rng: random.Random, out: Path) -> bool:
    code = run_killed(argv, rng.uniform(0.05, 0.9) * duration)
    assert code in (None, 0), code
    assert_whole(out) if out.exists() else None
    return code is None


def timed(argv: list[str]) -> float:
    start = time.monotonic()
    assert main(argv) == 0
    return time.monotonic() - start


def test_seq2seq_train_killed_then_resumed_matches_an_uninterrupted_run(tiny_workspace, tmp_path):
    def args(out: Path) -> list[str]:
        return ["seq2seq", "train", "--train", str(tiny_workspace["pairs"]), "--out", str(out),
                "--encoder", str(tiny_workspace["bert"]), "--share", "--max-steps", "6",
                "--batch-size", "8", "--checkpoint-every", "1", "--no-progress", "--device",
                "cpu", "--threads", "1", "--max-source-length", "8", "--max-target-length",
                "6", "--warmup", "0"]

    duration = timed(args(tmp_path / "reference"))
    out, rng = tmp_path / "killed", random.Random(5)
    killed = kill_at_random(args(out), duration, rng, out)
    # A kill before the first checkpoint leaves nothing to resume: the rerun starts over.
    resume = ["--resume"] if list_checkpoints(out / "checkpoints") else []
    if killed and resume:
        killed |= kill_at_random([*args(out), *resume], duration, rng, out)
    assert main([*args(out), *resume]) == 0
    reference = load_file(tmp_path / "reference" / "model.safetensors")
    final = load_file(out / "model.safetensors")
    assert final.keys() == reference.keys()
    assert all(torch.equal(final[k], reference[k]) for k in reference)


def test_finetune_and_export_killed_leave_only_whole_files(tiny_workspace, tmp_path):
    """No uninterrupted reference here (an ONNX export alone takes seconds): the delays are
    drawn over a few seconds, and a kill that lands after the command finished still checks
    its output."""
    rng = random.Random(6)
    finetune = ["finetune", "classify", "--model", str(tiny_workspace["bert"]), "--train",
                str(tiny_workspace["csv"]), "--eval", str(tiny_workspace["csv"]),
                "--max-steps", "6", "--batch-size", "8", "--max-length", "16", "--device",
                "cpu", "--out"]
    kills = sum(kill_at_random([*finetune, str(tmp_path / f"ft{n}")], 3.0, rng,
                               tmp_path / f"ft{n}") for n in range(2))
    onnx_out = tmp_path / "onnx"
    onnx_out.mkdir()
    export = ["export", "onnx", "--model", str(tiny_workspace["bert"]), "--out"]
    kills += kill_at_random([*export, str(onnx_out / "model.onnx")], 4.0, rng, onnx_out)
    assert kills >= 1
