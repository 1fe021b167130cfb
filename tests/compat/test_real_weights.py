"""Real pretrained checkpoints give the reference's outputs in bertkit.

all-MiniLM-L6-v2 (a 6-layer BertModel) over hundreds of real sentences of mixed length in padded
batches, and a bert-tiny-shaped BertForMaskedLM whose checkpoint uses TensorFlow-port names
(LayerNorm gamma/beta, no stored decoder) — both fetched from the package registries.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from bertkit.model.pretrained import BertForMaskedLM, BertModel
from bertkit.tokenization import Tokenizer

pytestmark = pytest.mark.needs_artifacts


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1)


def batches(texts: list[str], size: int):
    for start in range(0, len(texts), size):
        yield texts[start:start + size]


@pytest.fixture
def sentences(real_lines: list[str]) -> list[str]:
    """240 real lines of mixed length, interleaved so every batch mixes short and long."""
    chosen = [line for line in real_lines if line.strip()][:240]
    assert len(chosen) == 240
    return chosen


def test_minilm_matches_reference_on_real_sentences(artifact, sentences):
    directory: Path = artifact("all-minilm-l6-v2")
    tokenizer = Tokenizer.from_pretrained(directory)
    ours = BertModel.from_pretrained(directory)
    reference = transformers.BertModel.from_pretrained(directory).eval()
    worst_hidden, worst_cosine, padded_rows = 0.0, 1.0, 0
    with torch.inference_mode():
        for texts in batches(sentences, 16):
            inputs = tokenizer(texts, padding=True, truncation=True, max_length=128,
                               return_tensors="pt")
            mask = inputs["attention_mask"]
            padded_rows += int((mask == 0).any(dim=1).sum())
            expected = reference(**inputs).last_hidden_state
            actual = ours(**inputs).last_hidden_state
            real = mask.bool()
            worst_hidden = max(worst_hidden, (expected - actual)[real].abs().max().item())
            cosine = torch.cosine_similarity(mean_pool(expected, mask), mean_pool(actual, mask))
            worst_cosine = min(worst_cosine, cosine.min().item())
    assert padded_rows > 100, "the batches must really be padded"
    assert worst_hidden <= 1e-4
    assert worst_cosine >= 0.99999


def test_minilm_sentence_similarity_is_meaningful(artifact):
    """A sanity check beyond parity: paraphrases score above unrelated pairs."""
    directory = artifact("all-minilm-l6-v2")
    tokenizer = Tokenizer.from_pretrained(directory)
    model = BertModel.from_pretrained(directory)
    texts = ["A man is playing a guitar.", "Someone plays an instrument.",
             "The stock market fell sharply today.", "Shares dropped steeply on Wall Street."]
    inputs = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        vectors = mean_pool(model(**inputs).last_hidden_state, inputs["attention_mask"])
    vectors = torch.nn.functional.normalize(vectors, dim=-1)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.5 and similarity[2, 3] > 0.5
    assert similarity[0, 2] < 0.2 and similarity[1, 3] < 0.2


def test_splade_tiny_mlm_logits_match_reference(artifact, sentences):
    directory: Path = artifact("splade-tiny")
    tokenizer = Tokenizer.from_pretrained(directory)
    ours, report = BertForMaskedLM.from_pretrained(directory, output_loading_info=True)
    assert report.new == [] and report.unused == []
    reference = transformers.BertForMaskedLM.from_pretrained(directory).eval()
    worst = 0.0
    with torch.inference_mode():
        for texts in batches(sentences[:64], 16):
            inputs = tokenizer(texts, padding=True, truncation=True, max_length=128,
                               return_tensors="pt")
            real = inputs["attention_mask"].bool()
            difference = reference(**inputs).logits - ours(**inputs).logits
            worst = max(worst, difference[real].abs().max().item())
    assert worst <= 1e-4
