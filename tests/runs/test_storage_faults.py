"""A full disk or a read-only output folder: one ``error:`` line (exit status 2, no
traceback) naming the file and the cause, and the previous run's files left byte for byte.

Both faults are injected where the operating system would raise them (as root, a chmod'ed
folder stays writable, and mounting a tiny filesystem needs privileges CI lacks): a read-only
folder refuses to create the atomic writer's temporary file (``EROFS``); a full disk fails
``model.safetensors`` half-way through writing it (``ENOSPC``).
"""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

import pytest
import safetensors.torch

import bertkit.checkpoints.huggingface as hf
from bertkit.cli import main
from bertkit.training.checkpointing import list_checkpoints, read_checkpoint


def seq2seq(workspace: dict[str, Path], out: Path, steps: int, *extra: str) -> list[str]:
    return ["seq2seq", "train", "--train", str(workspace["pairs"]), "--out", str(out),
            "--encoder", str(workspace["bert"]), "--share", "--max-steps", str(steps),
            "--batch-size", "8", "--checkpoint-every", "1", "--no-progress", "--device", "cpu",
            "--threads", "1", "--max-source-length", "8", "--max-target-length", "6", *extra]


def snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def previous(tiny_workspace, tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    out = tmp_path_factory.mktemp("previous") / "run"
    assert main(seq2seq(tiny_workspace, out, 2)) == 0
    return out, snapshot(out)


def assert_one_error(capsys, cause: str, out: Path) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    assert cause in errors[0] and str(out) in errors[0], errors[0]


def read_only(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system", kwargs.get("dir"))


def full_disk(tensors, filename, metadata=None):
    Path(filename).write_bytes(b"\0" * 100)  # part of the file reached the disk
    raise OSError(errno.ENOSPC, "No space left on device", filename)


@pytest.mark.parametrize(("fault", "cause"), [("read-only", "Read-only file system"),
                                              ("full", "No space left on device")])
def test_resume_onto_a_faulty_disk_is_one_error_and_previous_output_is_intact(
        fault, cause, previous, tiny_workspace, monkeypatch, capsys):
    out, before = previous
    capsys.readouterr()
    if fault == "read-only":
        monkeypatch.setattr(tempfile, "mkstemp", read_only)
    else:
        monkeypatch.setattr(hf, "save_file", full_disk)
    assert main(seq2seq(tiny_workspace, out, 3, "--resume")) == 2
    assert_one_error(capsys, cause, out)
    monkeypatch.undo()
    after = snapshot(out)
    assert not [name for name in after if Path(name).name.startswith(".")]  # no temporary left
    if fault == "read-only":  # nothing could be written at all
        assert after == before
    # The previous weights and checkpoints are unchanged (the run's settings and metrics files
    # may be updated by the resume before the fault: they describe this run).
    kept = [n for n in before if n.endswith(".safetensors") or n.startswith("checkpoints/")]
    assert kept and all(after[n] == before[n] for n in kept if n in after)
    safetensors.torch.load_file(out / "model.safetensors")
    for checkpoint in list_checkpoints(out / "checkpoints"):
        read_checkpoint(checkpoint)


def test_a_plain_write_refused_by_storage_is_one_error(tiny_workspace, tmp_path, monkeypatch,
                                                       capsys):
    """Writers without their own handling (here the tokenizer's JSON files) reach the CLI's
    storage-error line, not a traceback; the previous tokenizer stays."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("eins zwei drei one two three\n" * 20)
    out = tmp_path / "tokenizer"
    args = ["tokenizer", "train", "--files", str(corpus), "--vocab-size", "40", "--out", str(out)]
    assert main(args) == 0
    before = snapshot(out)
    capsys.readouterr()
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "left as it was" in err and str(out) in err  # the CLI's storage-error line
    assert err.count("error: ") == 1 and "Read-only file system" in err and "Traceback" not in err
    monkeypatch.undo()
    assert snapshot(out) == before
