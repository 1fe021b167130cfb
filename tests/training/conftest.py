"""Fixtures for the training tests.

The tests import their helpers (``train_toys``, ``ddp_train_script``) by plain module name; under
``--import-mode=importlib`` pytest does not put test folders on ``sys.path``, so this folder adds
itself (the torchrun script gets it through ``PYTHONPATH`` instead).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture(autouse=True, scope="module")
def single_thread() -> Iterator[None]:
    """Tiny models gain nothing from a second intra-op thread, which only adds contention on a
    shared 2-core machine (10× slower here). Module scope so module-scoped fixtures (a reference
    run) use the same thread count, and so the same float reduction order, as the tests."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
