"""``kill -9`` at random moments of ``bertkit pretrain``: what is on disk is always usable.

Each run is a forked child (``tests/killing.py``) running the real CLI entry point; the parent
sends SIGKILL after a seeded random delay drawn over the first half of an uninterrupted run's
length (that run also builds the cached data shards the others reuse). After every kill: each
``step-*`` checkpoint that exists loads and passes its provenance check (no half-written one
is listed), any final model present loads, and ``--resume`` continues. The kill → resume chain
must end with exactly the weights of the uninterrupted run.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bertkit.cli import main
from bertkit.training.checkpointing import list_checkpoints, read_checkpoint
from killing import run_killed

TINY = ["--model-override", "hidden_size=32", "--model-override", "num_attention_heads=2",
        "--model-override", "intermediate_size=64", "--model-override", "num_hidden_layers=1"]
STEPS = 6


def assert_usable(out: Path) -> int:
    """Every listed checkpoint and any final model loads; the newest checkpoint's step."""
    from bertkit.model.pretrained import BertForPreTraining
    from bertkit.security.provenance import verify_manifest

    steps = []
    for checkpoint in list_checkpoints(out / "checkpoints"):
        assert verify_manifest(checkpoint).ok, checkpoint
        steps.append(read_checkpoint(checkpoint).step)
    if (out / "model.safetensors").exists():
        BertForPreTraining.from_pretrained(out)
    return max(steps, default=0)


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "model.safetensors")


@pytest.fixture
def pretrain_args(small_corpus: Path, tokenizer_dir: Path):
    def args(out: Path) -> list[str]:
        return ["pretrain", "--corpus", str(small_corpus), "--tokenizer", str(tokenizer_dir),
                "--out", str(out), "--seq-len", "32", "--batch-size", "4", "--dupe-factor",
                "1", "--eval-fraction", "0", "--threads", "1", "--device", "cpu",
                "--no-progress", "--checkpoint-every", "1", "--max-steps", str(STEPS),
                "--lr", "1e-3", *TINY]
    return args


def test_pretrain_killed_and_resumed_ends_exactly_like_an_uninterrupted_run(
        pretrain_args, tmp_path: Path, one_thread) -> None:
    start = time.monotonic()
    assert main(pretrain_args(tmp_path / "reference")) == 0
    duration = time.monotonic() - start
    reference = weights(tmp_path / "reference")

    out, rng, kills = tmp_path / "killed", random.Random(21), 0
    resume: list[str] = []
    for _ in range(3):
        code = run_killed([*pretrain_args(out), *resume], rng.uniform(0.05, 0.5) * duration)
        kills += code is None
        assert code in (None, 0), code
        step = assert_usable(out)
        if list_checkpoints(out / "checkpoints"):  # a kill before the first one leaves none
            resume = ["--resume"]
        if code == 0 or step == STEPS:
            break
    assert kills >= 1
    if not (out / "model.safetensors").exists() or (resume and assert_usable(out) < STEPS):
        assert main([*pretrain_args(out), *resume]) == 0
    final = weights(out)
    assert final.keys() == reference.keys()
    for name, tensor in reference.items():
        assert torch.equal(final[name], tensor), name


def test_a_run_killed_in_its_first_save_can_be_started_again(pretrain_args, tmp_path: Path,
                                                             one_thread) -> None:
    """What a kill during the first checkpoint save leaves: only the hidden temporary. That is
    no earlier run to protect, so a fresh run (without --resume) must go ahead."""
    out = tmp_path / "run"
    (out / "checkpoints" / ".step-00000001.x1y2.tmp").mkdir(parents=True)
    args = pretrain_args(out)
    args[args.index("--max-steps") + 1] = "1"
    assert main(args) == 0
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["step-00000001"]
