"""Capture and restore every random-number generator a training step can touch.

Exact resume needs the *same* random numbers after a restart: dropout masks come from torch's
global generator, shuffling or masking code may use Python's ``random``, NumPy's global state
or a private ``torch.Generator`` the data pipeline owns. All of them are captured as plain
tensors, ints and strings, so a checkpoint loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from bertkit.errors import CheckpointError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU) from one number."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """The state of every global generator plus the named private ones."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "generators": {name: gen.get_state() for name, gen in (generators or {}).items()},
    }
    return state


def restore_rng(
    state: Mapping[str, Any], generators: Mapping[str, torch.Generator] | None = None
) -> None:
    """Put every generator back as :func:`capture_rng` found it.

    A named generator present on one side only is an error: silently leaving one unrestored
    would break exact resume in a way no test of the loss alone would explain.
    """
    generators = dict(generators or {})
    saved = dict(state.get("generators", {}))
    if set(saved) != set(generators):
        raise CheckpointError(
            f"checkpoint holds RNG generators {sorted(saved)} but the run has {sorted(generators)}"
        )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_saved = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": np_saved["bit_generator"],
            "state": {"key": np_saved["key"].numpy().astype(np.uint32), "pos": np_saved["pos"]},
            "has_gauss": np_saved["has_gauss"],
            "gauss": np_saved["gauss"],
        },
    )
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
    for name, gen in generators.items():
        gen.set_state(saved[name])


@contextlib.contextmanager
def preserved_rng(generators: Mapping[str, torch.Generator] | None = None) -> Iterator[None]:
    """Run a block (evaluation, say) without moving any generator the training loop uses,
    so an uninterrupted run and a resumed one draw the same numbers whatever happened between."""
    state = capture_rng(generators)
    try:
        yield
    finally:
        restore_rng(state, generators)
