"""SIGTERM (what ``kill`` and schedulers send) to ``bertkit pretrain`` and ``finetune``.

A run terminated between steps saves a whole checkpoint, prints one line saying it was
terminated and exits 143 (128 + 15), never 0: a scheduler must not take it for finished;
for ``pretrain``, ``--resume`` continues from the saved step, and the line says so only for the
commands that take ``--resume``. A SIGTERM that lands before training starts
ends the command the same way, without a traceback. Each run is a forked child
(``tests/killing.py``) running the real CLI entry point.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from bertkit.cli import main
from bertkit.training.checkpointing import list_checkpoints, read_checkpoint
from killing import run_signalled

from .test_kill9 import TINY, assert_usable

TERMINATED = 128 + 15


def _train_records(out: Path) -> int:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return 0
    return sum('"train"' in line for line in path.read_text().splitlines())


def _one_terminated_line(stderr: Path) -> str:
    text = stderr.read_text()
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.startswith("terminated by SIGTERM")]
    assert len(lines) == 1, text
    return lines[0]


def _pretrain(small_corpus: Path, tokenizer_dir: Path, out: Path, steps: int) -> list[str]:
    return ["pretrain", "--corpus", str(small_corpus), "--tokenizer", str(tokenizer_dir),
            "--out", str(out), "--seq-len", "32", "--batch-size", "4", "--dupe-factor", "1",
            "--eval-fraction", "0", "--threads", "1", "--device", "cpu", "--no-progress",
            "--checkpoint-every", "0", "--log-every", "1", "--max-steps", str(steps),
            "--lr", "1e-3", *TINY]


def test_pretrain_terminated_saves_exits_143_and_resumes(
        small_corpus: Path, tokenizer_dir: Path, tmp_path: Path, one_thread) -> None:
    # The first optimizer of a process imports torch's compiler (seconds): pay that once,
    # here, rather than in the forked child and again in the resumed run.
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
    out, stderr = tmp_path / "run", tmp_path / "stderr.txt"
    code = run_signalled(_pretrain(small_corpus, tokenizer_dir, out, 100_000),
                         lambda: _train_records(out) >= 2, stderr=stderr)
    assert code == TERMINATED
    assert "the same command with --resume continues" in _one_terminated_line(stderr)
    step = assert_usable(out)  # the checkpoint written at the stop is whole and verified
    assert step >= 2 and (out / "model.safetensors").is_file()
    assert main([*_pretrain(small_corpus, tokenizer_dir, out, step + 2), "--resume"]) == 0
    steps = [read_checkpoint(c).step for c in list_checkpoints(out / "checkpoints")]
    assert steps[-2:] == [step, step + 2]
    logged = [json.loads(line)["step"] for line in
              (out / "metrics.jsonl").read_text().splitlines() if '"train"' in line]
    assert logged[-2:] == [step + 1, step + 2], "continued from the saved step, not from 0"


def test_a_sigterm_while_the_data_is_built_ends_with_one_line(
        small_corpus: Path, tokenizer_dir: Path, tmp_path: Path, one_thread) -> None:
    out, stderr = tmp_path / "run", tmp_path / "stderr.txt"
    code = run_signalled(_pretrain(small_corpus, tokenizer_dir, out, 100_000),
                         lambda: (out / "data").exists(), stderr=stderr)
    assert code == TERMINATED
    line = _one_terminated_line(stderr)
    if _train_records(out) == 0:  # it landed before the first step, as it almost always does
        assert "outside a training step" in line
    assert_usable(out)


def test_finetune_terminated_writes_a_whole_model_and_exits_143(tiny_workspace,
                                                              tmp_path: Path) -> None:
    from bertkit import BertForSequenceClassification

    out, stderr = tmp_path / "ft", tmp_path / "stderr.txt"
    argv = ["finetune", "classify", "--model", str(tiny_workspace["bert"]), "--train",
            str(tiny_workspace["csv"]), "--eval", str(tiny_workspace["csv"]), "--max-steps",
            "100000", "--batch-size", "8", "--max-length", "16", "--device", "cpu",
            "--threads", "1", "--out", str(out)]
    code = run_signalled(argv, lambda: (out / "metrics.jsonl").is_file(), stderr=stderr)
    assert code == TERMINATED
    line = _one_terminated_line(stderr)  # finetune has no --resume: the line must not offer it
    assert "--resume continues" not in line and "no --resume: a rerun starts over" in line
    model = BertForSequenceClassification.from_pretrained(out)  # the best epoch so far
    assert model.config.num_labels == 2
    assert json.loads((out / "final_metrics.json").read_text())["best_epoch"] >= 1
