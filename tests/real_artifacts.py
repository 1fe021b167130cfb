"""Fetching real artifacts in tests: a skip on a laptop, a failure in CI.

Locally a test that needs a real checkpoint or data set may skip, with the fetch error as the
reason, when the registries are out of reach. In CI (``CI=true``, which GitHub Actions, GitLab
and most runners set) the same skip would silently drop every real-data test, so a *pinned*
artifact that cannot be fetched fails the run instead. An artifact unpinned by design (its
version moves, see ``bertkit.resources.artifacts``) still only skips: its absence says nothing
about bertkit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

from bertkit.errors import ArtifactError
from bertkit.resources.artifacts import ARTIFACTS, fetch


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(names: str | tuple[str, ...], err: Exception) -> NoReturn:
    """Skip (locally, or for an unpinned artifact) or fail (CI, pinned) for a failed fetch."""
    names = (names,) if isinstance(names, str) else names
    pinned = [n for n in names if n not in ARTIFACTS or ARTIFACTS[n].pinned]
    reason = f"real artifact {', '.join(map(repr, names))} unavailable: {err}"
    if in_ci() and pinned:
        pytest.fail(f"{reason}\n(CI=true: a pinned artifact must be fetchable; fix the registry "
                    "entry or the runner's network instead of skipping)", pytrace=False)
    pytest.skip(reason)


def fetch_or_skip(name: str, **kwargs) -> Path:
    """:func:`bertkit.resources.artifacts.fetch`, with :func:`unavailable` on failure."""
    try:
        return fetch(name, quiet=True, **kwargs)
    except ArtifactError as err:
        unavailable(name, err)
