"""Simulating a missing optional extra, for the tests of what bertkit does without it."""

from __future__ import annotations

import sys

import pytest


def hide_modules(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    """Make ``import PACKAGE`` raise ``ImportError`` (as without the extra that installs it)
    for each of ``packages`` until the test ends: modules already imported are dropped, the
    name is set to ``None``."""
    drop_modules(monkeypatch, *packages)
    for package in packages:
        monkeypatch.setitem(sys.modules, package, None)


def drop_modules(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    """Forget the imported modules of ``packages`` until the test ends, so that the next
    import runs them afresh; the originals come back afterwards, in ``sys.modules`` and as
    their parent packages' attributes (which a fresh import rebinds)."""
    below = tuple(package + "." for package in packages)
    for name in [m for m in sys.modules if m in packages or m.startswith(below)]:
        parent, _, child = name.rpartition(".")
        if hasattr(sys.modules.get(parent), child):
            monkeypatch.setattr(sys.modules[parent], child, getattr(sys.modules[parent], child))
        monkeypatch.delitem(sys.modules, name)


def hide_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as without the ``viz`` extra: ``import matplotlib`` raises ``ImportError``."""
    hide_modules(monkeypatch, "matplotlib")
