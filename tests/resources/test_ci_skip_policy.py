"""The real-artifact skip policy: locally a failed fetch skips; in CI a pinned one fails."""

from __future__ import annotations

import pytest

import real_artifacts
from bertkit.errors import ArtifactError
from bertkit.resources import artifacts


def _failing_fetch(name: str, **kwargs):
    raise ArtifactError(f"could not download {name}: registry unreachable (test double)")


@pytest.mark.parametrize(("ci", "name", "outcome"), [
    ("", "wnut16", pytest.skip.Exception),
    ("true", "wnut16", pytest.fail.Exception),
    ("true", "linux-doc", pytest.skip.Exception),  # unpinned by design: may skip anywhere
    ("false", "all-minilm-l6-v2", pytest.skip.Exception),
])
def test_failed_fetch_skips_locally_and_fails_in_ci(monkeypatch, ci, name, outcome):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(real_artifacts, "fetch", _failing_fetch)
    with pytest.raises(outcome) as caught:
        real_artifacts.fetch_or_skip(name)
    assert name in str(caught.value) and "registry unreachable" in str(caught.value)


def test_only_linux_doc_is_unpinned():
    assert [a.name for a in artifacts.ARTIFACTS.values() if not a.pinned] == ["linux-doc"]
