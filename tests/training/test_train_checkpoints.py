"""Checkpoints: atomic under a failing disk, pruned to K, refusing another model's weights."""

from __future__ import annotations

import errno

import pytest
import torch
from train_toys import make_trainer

from bertkit.errors import CheckpointError
from bertkit.training import list_checkpoints, read_checkpoint
from bertkit.training.checkpointing import save_checkpoint


def test_full_disk_mid_save_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    trainer, _ = make_trainer(tmp_path, max_steps=6, checkpoint_every=2)
    real_save = torch.save
    calls = 0

    def save_until_disk_full(obj, f, *args, **kwargs):
        nonlocal calls
        calls += 1
        if trainer.step == 4 and calls % 2 == 0:  # model.pt written, training_state.pt fails
            f.write(b"\0" * 100)  # half a file on disk...
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_disk_full)
    with pytest.raises(CheckpointError, match="No space left on device"):
        trainer.fit()
    monkeypatch.setattr(torch, "save", real_save)

    root = tmp_path / "checkpoints"
    assert [p.name for p in list_checkpoints(root)] == ["step-00000002"]
    assert sorted(p.name for p in root.iterdir()) == ["step-00000002"]  # no temp debris
    resumed, _ = make_trainer(tmp_path, max_steps=6, checkpoint_every=2, model_seed=3)
    result = resumed.fit(resume=True)
    assert (result.stop_reason, result.step) == ("max_steps", 6)
    assert [p.name for p in list_checkpoints(root)] == [
        "step-00000002", "step-00000004", "step-00000006"]


def test_keep_last_k_and_resave_of_the_same_step(tmp_path):
    state = {"w": torch.ones(2)}
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, model_state=state, training_state={}, meta={}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000003", "step-00000004"]
    save_checkpoint(tmp_path, 4, model_state={"w": torch.zeros(2)}, training_state={}, meta={},
                    keep=2)
    assert torch.equal(read_checkpoint(tmp_path).model_state["w"], torch.zeros(2))
    assert len(list(tmp_path.iterdir())) == 2


def test_every_training_checkpoint_carries_a_provenance_manifest(tmp_path):
    from bertkit.checkpoints.provenance import read_manifest, verify_manifest

    trainer, _ = make_trainer(tmp_path, max_steps=2, checkpoint_every=2)
    trainer.fit()
    (checkpoint,) = list_checkpoints(tmp_path / "checkpoints")
    assert verify_manifest(checkpoint).ok
    manifest = read_manifest(checkpoint)
    assert sorted(manifest["files"]) == ["meta.json", "model.pt", "training_state.pt"]
    assert manifest["extra"] == {"step": 2} and manifest["seed"] == trainer.config.seed
    with (checkpoint / "model.pt").open("ab") as handle:
        handle.write(b"tampered")
    assert [m.kind for m in verify_manifest(checkpoint).mismatches] == ["changed"]


def test_checkpoint_of_another_model_shape_names_the_parameter(tmp_path):
    trainer, _ = make_trainer(tmp_path, max_steps=1, hidden=16)
    trainer.fit()
    other, _ = make_trainer(tmp_path, max_steps=2, hidden=32)
    with pytest.raises(CheckpointError, match=r"'up\.weight' has shape \(16, 8\) in the "
                                              r"checkpoint but \(32, 8\) in the model"):
        other.fit(resume=True)


def test_missing_and_corrupt_checkpoints_are_checkpoint_errors(tmp_path):
    trainer, _ = make_trainer(tmp_path / "run", max_steps=1)
    with pytest.raises(CheckpointError, match=r"no checkpoint found to resume from .* start it "
                                              r"again without resuming"):
        trainer.fit(resume=True)
    trainer.fit()
    model_file = tmp_path / "run" / "checkpoints" / "step-00000001" / "model.pt"
    model_file.write_bytes(model_file.read_bytes()[:50])
    with pytest.raises(CheckpointError, match=r"model\.pt: cannot read"):
        read_checkpoint(tmp_path / "run")
