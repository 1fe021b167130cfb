"""Training checkpoints: one directory per step, written atomically, the newest K kept.

Layout under ``<output_dir>/checkpoints/``::

    step-00001200/
        model.pt           the plain module's state_dict (never a DDP/compile wrapper's)
        training_state.pt  optimizer, scheduler, grad scaler, step, and per rank: every RNG
                           and the data position
        meta.json          step, world size, config, time: for people
        provenance.json    SHA-256 of each file above (``bertkit audit verify`` checks it);
                           written last, so it lists them all

A checkpoint is built in a hidden temporary directory beside the others and renamed into place
only once every file is on disk, so a crash, Ctrl-C or full disk in the middle of a save leaves
the previous checkpoints untouched and no half-written ``step-*`` directory. Everything is read
back with ``torch.load(weights_only=True)``: a checkpoint cannot run code.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bertkit._fileio import atomic_write, read_json, write_json
from bertkit.checkpoints.provenance import write_manifest
from bertkit.errors import BertkitError, CheckpointError

MODEL_FILE = "model.pt"
STATE_FILE = "training_state.pt"
META_FILE = "meta.json"
CHECKPOINTS_DIR = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d+)$")
_TEMP_DIR = re.compile(r"^\.step-\d+\..*\.(tmp|old)$")


def checkpoint_name(step: int) -> str:
    """Directory name of the checkpoint after ``step`` updates (sorts by step as text too)."""
    return f"step-{step:08d}"


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under ``root`` (those with a ``meta.json``), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / META_FILE).is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory from a checkpoint, a ``checkpoints/`` folder or a run directory
    (the latter two mean: its newest checkpoint)."""
    path = Path(path)
    if (path / META_FILE).is_file():
        return path
    for root in (path / CHECKPOINTS_DIR, path):
        found = list_checkpoints(root)
        if found:
            return found[-1]
    raise CheckpointError(f"{path}: no checkpoint found (expected step-*/ with {META_FILE})")


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save_tensor_file(path: Path, obj: Any) -> None:
    atomic_write(path, lambda handle: torch.save(obj, handle), binary=True)


def save_checkpoint(
    root: str | Path,
    step: int,
    *,
    model_state: Mapping[str, torch.Tensor],
    training_state: Mapping[str, Any],
    meta: Mapping[str, Any],
    keep: int | None = None,
) -> Path:
    """Write ``step-XXXXXXXX/`` under ``root`` atomically, then delete all but the newest
    ``keep`` checkpoints. An ``OSError`` (full disk, permissions) becomes a
    :class:`CheckpointError`; either way nothing already on disk is harmed."""
    root = Path(root)
    final = root / checkpoint_name(step)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.iterdir():  # leftovers of a process killed mid-save
            if _TEMP_DIR.match(stale.name):
                shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=root))
    except OSError as err:
        raise CheckpointError(f"cannot save checkpoint {final}: {err}") from err
    try:
        _save_tensor_file(tmp / MODEL_FILE, dict(model_state))
        _save_tensor_file(tmp / STATE_FILE, dict(training_state))
        write_json(tmp / META_FILE, {"step": step, **meta})
        write_manifest(tmp, seed=meta.get("config", {}).get("seed"), extra={"step": step})
        _fsync_dir(tmp)
        if final.exists():  # the same step saved again (e.g. stopped right after a resume)
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=root))
            os.replace(final, old / final.name)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(root)
    except OSError as err:
        raise CheckpointError(f"cannot save checkpoint {final}: {err}") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if keep is not None:
        for old_checkpoint in list_checkpoints(root)[:-keep]:
            shutil.rmtree(old_checkpoint, ignore_errors=True)
    return final


@dataclass
class Checkpoint:
    """A checkpoint read back from disk."""

    path: Path
    step: int
    model_state: dict[str, torch.Tensor]
    training_state: dict[str, Any]
    meta: dict[str, Any]


def _load_tensor_file(path: Path, map_location: str | torch.device) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (not a complete bertkit training checkpoint)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several unrelated types for a bad file
        raise CheckpointError(f"{path}: cannot read: {err}") from None


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint (or a run's newest, see :func:`resolve_checkpoint`)."""
    path = resolve_checkpoint(path)
    try:
        meta = read_json(path / META_FILE)
    except BertkitError as err:
        raise CheckpointError(str(err)) from None
    return Checkpoint(
        path=path,
        step=int(meta["step"]),
        model_state=_load_tensor_file(path / MODEL_FILE, map_location),
        training_state=_load_tensor_file(path / STATE_FILE, map_location),
        meta=meta,
    )


def check_model_fits(model_state: Mapping[str, torch.Tensor], module: nn.Module,
                     where: str | Path) -> None:
    """Raise :class:`CheckpointError` naming the first parameter that is missing, extra or of
    another shape: the checkpoint was made for another model configuration."""
    expected = module.state_dict()
    problems = []
    for name, tensor in expected.items():
        if name not in model_state:
            problems.append(f"parameter {name!r} of the model is missing from the checkpoint")
        elif tuple(model_state[name].shape) != tuple(tensor.shape):
            problems.append(
                f"parameter {name!r} has shape {tuple(model_state[name].shape)} in the "
                f"checkpoint but {tuple(tensor.shape)} in the model"
            )
    problems += [
        f"the checkpoint has parameter {name!r} that the model does not"
        for name in model_state
        if name not in expected
    ]
    if problems:
        more = f" (and {len(problems) - 1} more mismatches)" if len(problems) > 1 else ""
        raise CheckpointError(
            f"{where}: checkpoint does not fit the model, made for another configuration? "
            f"{problems[0]}{more}"
        )


def load_model_weights(path: str | Path, module: nn.Module) -> Checkpoint:
    """Load only the weights of a training checkpoint into ``module`` (shape-checked)."""
    checkpoint = read_checkpoint(path)
    check_model_fits(checkpoint.model_state, module, checkpoint.path)
    module.load_state_dict(checkpoint.model_state)
    return checkpoint
