"""Fixtures for the inference tests: a tiny word-level tokenizer, a tiny masked LM trained to
predict a planted colour from its context, tiny random encoders saved as checkpoints, and the
real all-MiniLM-L6-v2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from bertkit import BertForMaskedLM, BertModel, Tokenizer
from tiny import tiny_config as shared_tiny_config
from tiny import word_tokenizer

WORDS = ["the", "sky", "grass", "sun", "snow", "is", "blue", "green", "yellow", "white", ".",
         "a", "cat", "sat", "on", "mat", "because", "it", "was", "tired", "play", "##ing", "##s",
         "i", "like", "and", "dog", "ran", "far"]
# The planted pattern: "the <thing> is <colour> ." — the colour is fixed by the thing.
COLOURS = {"sky": "blue", "grass": "green", "sun": "yellow", "snow": "white"}


tiny_config = functools.partial(shared_tiny_config, num_hidden_layers=3,
                                max_position_embeddings=40)


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    return word_tokenizer(tmp_path_factory.mktemp("vocab"), WORDS, 40)


@pytest.fixture(scope="session")
def planted_mlm(tiny_tokenizer: Tokenizer) -> BertForMaskedLM:
    """A BertForMaskedLM trained for a few dozen steps on "[CLS] the X is [MASK] . [SEP]" with
    the label the colour of X: it can only rank the right colour first by reading X."""
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config(len(tiny_tokenizer)))
    # Single sentences and every ordered pair of them, so the colour must come from the
    # sentence's own subject, wherever it stands.
    pairs = [(a,) for a in COLOURS] + [(a, b) for a in COLOURS for b in COLOURS]
    texts = [" ".join(f"the {thing} is [MASK] ." for thing in pair) for pair in pairs]
    batch = tiny_tokenizer(texts, return_tensors="pt", padding=True)
    labels = torch.full_like(batch["input_ids"], -100)
    mask_id = tiny_tokenizer.mask_token_id
    colour_ids = [tiny_tokenizer.convert_tokens_to_ids(COLOURS[t]) for p in pairs for t in p]
    labels[batch["input_ids"] == mask_id] = torch.tensor(colour_ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains fastest, and steadiest, on one thread
    try:
        for _ in range(60):
            loss = model(batch["input_ids"], batch["attention_mask"], labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    assert loss.item() < 0.2, f"the planted pattern was not learned (loss {loss.item():.3f})"
    return model


@pytest.fixture(scope="session")
def tiny_encoder(tiny_tokenizer: Tokenizer) -> BertModel:
    torch.manual_seed(1)
    return BertModel(tiny_config(len(tiny_tokenizer))).eval()


@pytest.fixture(scope="session")
def mlm_dir(tmp_path_factory: pytest.TempPathFactory, planted_mlm: BertForMaskedLM,
            tiny_tokenizer: Tokenizer) -> Path:
    """The planted masked LM saved as a checkpoint directory with its tokenizer."""
    directory = tmp_path_factory.mktemp("mlm")
    planted_mlm.save_pretrained(directory)
    tiny_tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: BertModel,
                tiny_tokenizer: Tokenizer) -> Path:
    """A bare BertModel checkpoint (no masked-LM head) with its tokenizer."""
    directory = tmp_path_factory.mktemp("encoder")
    tiny_encoder.save_pretrained(directory)
    tiny_tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def minilm_dir(artifact: Callable[[str], Path]) -> Path:
    return artifact("all-minilm-l6-v2")
