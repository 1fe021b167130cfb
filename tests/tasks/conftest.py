"""The task tests tokenize with the real all-MiniLM-L6-v2 vocabulary (uncased WordPiece)."""

from __future__ import annotations

import pytest

from bertkit.tokenization import Tokenizer
from real_artifacts import fetch_or_skip


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_pretrained(fetch_or_skip("all-minilm-l6-v2"))
