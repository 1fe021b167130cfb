"""Parity tests need the reference implementation; it is a test dependency only."""

from __future__ import annotations

import pytest

transformers = pytest.importorskip("transformers", reason="transformers (the reference) is not "
                                   "installed; `pip install -e .[test]`")
