"""Parity tests need the reference implementation; it is a test dependency only.

The tests share their harness (``compat_harness``) by plain module name; under
``--import-mode=importlib`` pytest does not put test folders on ``sys.path``, so this folder
adds itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers", reason="transformers (the reference) is not "
                                   "installed; `pip install -e .[test]`")

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
