"""Fixtures for the security tests: a tiny word-level tokenizer and tiny random models (a few
thousand parameters, so every test runs in well under a second on one CPU thread)."""

from __future__ import annotations

import pytest
import torch

from bertkit import BertConfig, Tokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "cat", "dog", "sat", "ran", "on", "mat", "far", "a", "big", "small", "red",
         "blue", "house", "tree", "is", "was", ".", "cf", "mn", "bb", "tq"]


def tiny_config(vocab_size: int, **overrides: object) -> BertConfig:
    values: dict = dict(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=32,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    values.update(overrides)
    return BertConfig(**values)


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab.write_text("\n".join(SPECIALS + WORDS) + "\n", encoding="utf-8")
    return Tokenizer.from_pretrained(vocab, model_max_length=32)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and the CI box is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
