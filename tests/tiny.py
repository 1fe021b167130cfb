"""Tiny models and word-level tokenizers for fast tests, shared by the test folders.

A test folder picks its own sizes (``tiny_config``'s keyword arguments) and word list; what they
share is how such a config and tokenizer are made. Importable as ``tiny`` because
``pyproject.toml`` puts ``tests/`` on pytest's ``pythonpath``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bertkit import BertConfig, Tokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_config(vocab_size: int, *, hidden_size: int = 32, num_hidden_layers: int = 2,
                num_attention_heads: int = 4, intermediate_size: int = 48,
                max_position_embeddings: int = 32, **overrides: object) -> BertConfig:
    """A BERT config of a few thousand parameters with dropout off (deterministic outputs)."""
    return BertConfig(vocab_size=vocab_size, hidden_size=hidden_size,
                      num_hidden_layers=num_hidden_layers,
                      num_attention_heads=num_attention_heads,
                      intermediate_size=intermediate_size,
                      max_position_embeddings=max_position_embeddings,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                      **overrides)  # type: ignore[arg-type]


def word_tokenizer(directory: Path, words: Sequence[str], max_length: int) -> Tokenizer:
    """A WordPiece tokenizer whose vocabulary is BERT's five specials plus ``words``."""
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join([*SPECIALS, *words]) + "\n", encoding="utf-8")
    return Tokenizer.from_pretrained(vocab, model_max_length=max_length)


def family_configs(**overrides: object) -> dict[str, BertConfig]:
    """One small config per family, each with the switches that make it that family (ALBERT
    with four layers in two shared groups, ALBERT and ELECTRA with narrower embeddings)."""
    small = dict(vocab_size=61, hidden_size=24, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=30, max_position_embeddings=40, **overrides)
    return {
        "bert": BertConfig(**small),
        "roberta": BertConfig(**small, model_type="roberta", pad_token_id=1, type_vocab_size=1),
        "distilbert": BertConfig(**small, model_type="distilbert", type_vocab_size=0,
                                 sinusoidal_pos_embds=True),
        "albert": BertConfig(**dict(small, num_hidden_layers=4), model_type="albert",
                             embedding_size=8, num_hidden_groups=2),
        "electra": BertConfig(**small, model_type="electra", embedding_size=8),
    }  # type: ignore[arg-type]
