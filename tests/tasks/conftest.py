"""The task tests tokenize with the real all-MiniLM-L6-v2 vocabulary (uncased WordPiece)."""

from __future__ import annotations

import pytest

from bertkit.errors import ArtifactError
from bertkit.resources.artifacts import fetch
from bertkit.tokenization import Tokenizer


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    try:
        return Tokenizer.from_pretrained(fetch("all-minilm-l6-v2", quiet=True))
    except ArtifactError as err:
        pytest.skip(f"real tokenizer unavailable: {err}")
