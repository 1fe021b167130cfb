"""``python -m bertkit`` is the same command line as ``bertkit``, and it is what
``torchrun -m bertkit pretrain …`` starts in every process, so both are run as real
subprocesses here (an in-process ``main()`` call would not catch a broken ``__main__``)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

import bertkit
from tiny import word_tokenizer

SRC = Path(bertkit.__file__).resolve().parents[1]
WORDS = [f"w{i}" for i in range(40)]


def _env() -> dict[str, str]:
    """This checkout's ``src`` first on the path, one thread per process (the CI host is small)."""
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _corpus(path: Path) -> Path:
    """A few documents of random known words, BERT format (one sentence a line)."""
    rng = random.Random(0)
    documents = ["\n".join(" ".join(rng.choices(WORDS, k=12)) for _ in range(6))
                 for _ in range(8)]
    path.write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    return path


def test_module_help_lists_subcommands() -> None:
    proc = subprocess.run([sys.executable, "-m", "bertkit", "--help"], capture_output=True,
                          text=True, timeout=60, env=_env())
    assert proc.returncode == 0, proc.stderr
    for command in ("pretrain", "finetune", "audit", "demo"):
        assert command in proc.stdout


def test_torchrun_module_two_process_pretrain_smoke(tmp_path: Path) -> None:
    tokenizer = tmp_path / "tok"
    tokenizer.mkdir()
    word_tokenizer(tokenizer, WORDS, max_length=32).save_pretrained(tokenizer)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "bertkit", "pretrain", "--corpus", str(_corpus(tmp_path / "corpus.txt")),
         "--tokenizer", str(tokenizer), "--preset", "bert_tiny",
         "--model-override", "hidden_size=32", "--model-override", "num_attention_heads=2",
         "--model-override", "intermediate_size=64", "--seq-len", "32", "--batch-size", "4",
         "--dupe-factor", "1", "--eval-fraction", "0", "--threads", "1", "--max-steps", "2",
         "--device", "cpu", "--no-progress", "--out", str(out)],
        capture_output=True, text=True, timeout=120, env=_env(), cwd=tmp_path)
    if "gloo" in proc.stderr and "not available" in proc.stderr:
        pytest.skip("torch.distributed has no gloo backend here")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert (out / "model.safetensors").is_file()
    meta = json.loads((out / "checkpoints" / "step-00000002" / "meta.json").read_text())
    assert meta["world_size"] == 2
