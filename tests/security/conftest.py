"""Fixtures for the security tests: a tiny word-level tokenizer and tiny random models (a few
thousand parameters, so every test runs in well under a second on one CPU thread)."""

from __future__ import annotations

import functools

import pytest
import torch

from bertkit import Tokenizer
from tiny import tiny_config as shared_tiny_config
from tiny import word_tokenizer

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "mat", "far", "a", "big", "small", "red",
         "blue", "house", "tree", "is", "was", ".", "cf", "mn", "bb", "tq"]


tiny_config = functools.partial(shared_tiny_config, hidden_size=16, num_attention_heads=2,
                                intermediate_size=32)


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    return word_tokenizer(tmp_path_factory.mktemp("vocab"), WORDS, 32)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and the CI box is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
