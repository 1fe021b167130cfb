"""A tiny BERT checkpoint and toy German → English pair files for the seq2seq tests."""

from __future__ import annotations

import json
import random

import pytest
import torch

from bertkit import BertForMaskedLM
from tiny import tiny_config, word_tokenizer

GERMAN = ["eins", "zwei", "drei", "vier", "fünf", "sechs"]
ENGLISH = ["one", "two", "three", "four", "five", "six"]


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """A tiny MLM checkpoint with its tokenizer, and toy train/dev pair files."""
    root = tmp_path_factory.mktemp("seq2seq")
    tokenizer = word_tokenizer(root, GERMAN + ENGLISH, max_length=16)
    torch.manual_seed(0)
    checkpoint = root / "bert"
    BertForMaskedLM(tiny_config(tokenizer.vocab_size, max_position_embeddings=16)
                    ).save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    rng = random.Random(0)

    def write(path, n):
        rows = []
        for _ in range(n):
            idx = [rng.randrange(6) for _ in range(rng.randint(1, 3))]
            rows.append({"source": " ".join(GERMAN[i] for i in idx),
                         "target": " ".join(ENGLISH[i] for i in idx)})
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    return {"bert": checkpoint, "train": write(root / "train.jsonl", 64),
            "dev": write(root / "dev.jsonl", 8)}
