"""Simulating a missing optional extra, for the tests of what bertkit does without it."""

from __future__ import annotations

import sys

import pytest


def hide_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import matplotlib`` raise ``ImportError`` (as without the ``viz`` extra) until
    the test ends: modules already imported are dropped, the name is set to ``None``."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
