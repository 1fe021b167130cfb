"""``torchrun -m bertkit seq2seq train`` with two CPU processes (gloo DDP) follows the
one-process run with the same global batch: the same logged losses step by step and the same
final weights, so the ranks read disjoint halves of each batch, gradients are all-reduced and
rank 0 writes the model.

Targets have 1–3 words, so the ranks hold different numbers of target tokens: the loss of a
micro-batch is its token mean, and the runner reports the token count as ``loss_items``, so the
trainer weighs each rank by it (as ``transformers`` does with ``num_items_in_batch``); averaging
the ranks' means instead differs from the one-process run (measured without ``loss_items``:
logged losses off by up to 1.6e-3 relative, against the 1e-5 asserted)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import bertkit
from bertkit.runs.seq2seq import Seq2SeqSettings, train_seq2seq

SRC = Path(bertkit.__file__).resolve().parents[1]
STEPS, PER_RANK = 3, 4
WORDS = {"eins": "one", "zwei": "two", "drei": "three", "vier": "four"}  # in the vocabulary
COMMON = dict(max_steps=STEPS, learning_rate=3e-3, warmup_steps=0, log_every=1,
              max_source_length=8, max_target_length=6, device="cpu", threads=1)


def _pairs(path: Path) -> Path:
    """Sources and targets of 1–3 words (see the module docstring)."""
    rng = random.Random(1)
    rows = []
    for _ in range(32):
        german = rng.choices(list(WORDS), k=rng.randint(1, 3))
        rows.append({"source": " ".join(german),
                     "target": " ".join(WORDS[word] for word in german)})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _train_losses(out: Path) -> list[float]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["kind"] == "train"]


def test_two_process_seq2seq_train_matches_one_process(workspace, tmp_path):
    train = _pairs(tmp_path / "train.jsonl")
    two = tmp_path / "two"
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in COMMON.items()
             if name not in ("learning_rate", "warmup_steps")]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC),
                                                       os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
         "2", "-m", "bertkit", "seq2seq", "train", "--train", str(train),
         "--encoder", str(workspace["bert"]), "--out", str(two), "--batch-size",
         str(PER_RANK), "--lr", str(COMMON["learning_rate"]), "--warmup", "0",
         "--no-progress", *flags],
        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    if "gloo" in proc.stderr and "not available" in proc.stderr:
        pytest.skip("torch.distributed has no gloo backend here")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]

    one = tmp_path / "one"
    train_seq2seq(Seq2SeqSettings(train=train, encoder=workspace["bert"],
                                  output_dir=one, batch_size=2 * PER_RANK, progress=False,
                                  **COMMON))
    two_losses, one_losses = _train_losses(two), _train_losses(one)
    assert len(one_losses) == STEPS and one_losses[0] != pytest.approx(one_losses[-1], rel=1e-3)
    assert two_losses == pytest.approx(one_losses, rel=1e-5)
    two_weights, one_weights = (load_file(d / "model.safetensors") for d in (two, one))
    assert two_weights.keys() == one_weights.keys()
    for name, value in one_weights.items():
        assert torch.allclose(two_weights[name], value, rtol=1e-5, atol=1e-6), name
