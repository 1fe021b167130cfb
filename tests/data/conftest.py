"""Synthetic token-id data for the data-layer tests.

Ids 0–4 are the special tokens; content ids start at 5. Real text only enters at the
integration level: masking and pairing are statistics over ids, and synthetic ids let a test
encode where every token came from.
"""

from __future__ import annotations

import random

import pytest
import torch

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL_IDS = (PAD, UNK, CLS, SEP, MASK)
VOCAB = 1000


def make_batch(n_rows: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor,
                                                              torch.Tensor]:
    """(B, T) ids framed ``[CLS] … [SEP] … [SEP]`` with ragged lengths, padding at the end.

    Returns (input_ids, special_tokens_mask, attention_mask); the special mask covers
    [CLS], both [SEP] and padding.
    """
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (n_rows, length), generator=g)
    lengths = torch.randint(length // 2, length + 1, (n_rows,), generator=g)
    positions = torch.arange(length)
    attention = positions < lengths[:, None]
    middle = lengths // 2
    ids[:, 0] = CLS
    ids[torch.arange(n_rows), middle] = SEP
    ids[torch.arange(n_rows), lengths - 1] = SEP
    ids[~attention] = PAD
    special = torch.isin(ids, torch.tensor([CLS, SEP])) | ~attention
    return ids, special, attention.long()


def make_word_starts(input_ids: torch.Tensor, seed: int) -> torch.Tensor:
    """(B, T) word starts: each position starts a word with probability 0.6, so words have
    1, 2, 3, … pieces with geometric frequencies (60 %, 24 %, 10 %, …)."""
    g = torch.Generator().manual_seed(seed)
    starts = torch.rand(input_ids.shape, generator=g) < 0.6
    starts[:, 0] = True
    return starts


def make_documents(n_docs: int, seed: int, *, sentences: tuple[int, int] = (8, 40),
                   sentence_len: tuple[int, int] = (4, 24)) -> list[list[list[int]]]:
    """Documents whose every token encodes (document, sentence): ``10 + doc*100 + sentence``."""
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        n_sent = rng.randint(*sentences)
        docs.append([[10 + d * 100 + s] * rng.randint(*sentence_len) for s in range(n_sent)])
    return docs


def decode(token: int) -> tuple[int, int]:
    """(document, sentence) of a token made by :func:`make_documents`."""
    return (token - 10) // 100, (token - 10) % 100


@pytest.fixture(autouse=True)
def one_thread():
    """Data-layer ops are small; on a shared 2-core machine a second OpenMP thread only adds
    spin-waiting (10× slower under load), so these tests run single-threaded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Synthetic:
    """The helpers above, handed to tests as one fixture (test modules cannot import a
    ``conftest`` by name reliably: every test folder has one)."""

    PAD, UNK, CLS, SEP, MASK = PAD, UNK, CLS, SEP, MASK
    SPECIAL_IDS = SPECIAL_IDS
    VOCAB = VOCAB
    make_batch = staticmethod(make_batch)
    make_word_starts = staticmethod(make_word_starts)
    make_documents = staticmethod(make_documents)
    decode = staticmethod(decode)


@pytest.fixture
def synth() -> type[Synthetic]:
    return Synthetic


@pytest.fixture(scope="module")
def batch_ids() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """1,200 × 128 positions: about 115,000 real tokens, 111,000 of them candidates."""
    return make_batch(1200, 128, seed=7)
