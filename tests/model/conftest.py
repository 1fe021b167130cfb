from __future__ import annotations

import pytest

from bertkit.model import BertConfig


@pytest.fixture
def tiny_config() -> BertConfig:
    """Small enough to run in milliseconds, odd sizes so shape mix-ups cannot hide."""
    return BertConfig(vocab_size=101, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                      intermediate_size=37, max_position_embeddings=40, type_vocab_size=2)
