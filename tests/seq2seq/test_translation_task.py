"""Tests for bertkit.tasks.translation: teacher-forcing features, batches and the loss."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from bertkit.data.readers import TextPair
from bertkit.errors import UsageError
from bertkit.tasks.translation import (
    IGNORE_INDEX,
    collate_seq2seq,
    seq2seq_features,
    seq2seq_loss,
)
from tiny import word_tokenizer

WORDS = ["eins", "zwei", "drei", "vier", "one", "two", "three", "four"]


@pytest.fixture
def tokenizer(tmp_path):
    return word_tokenizer(tmp_path, WORDS, max_length=16)


def test_labels_end_with_sep_and_decoder_reads_them_shifted(tokenizer):
    pairs = [TextPair("eins zwei", "one two"), TextPair("drei", "three")]
    features = seq2seq_features(tokenizer, pairs, max_source_length=8, max_target_length=8)
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    one, two, three = (tokenizer.convert_tokens_to_ids(w) for w in ("one", "two", "three"))
    assert features.labels == [[one, two, sep], [three, sep]]
    batch = collate_seq2seq(features, [0, 1], pad_id=pad, start_id=cls)
    assert batch["labels"].tolist() == [[one, two, sep], [three, sep, IGNORE_INDEX]]
    assert batch["decoder_input_ids"].tolist() == [[cls, one, two], [cls, three, pad]]
    assert batch["decoder_attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["input_ids"].shape == (2, 4) and batch["attention_mask"].tolist() == [
        [1, 1, 1, 1], [1, 1, 1, 0]]


def test_long_sources_and_targets_are_truncated_with_a_warning(tokenizer, caplog):
    pairs = [TextPair("eins zwei drei vier", "one two three four"), TextPair("eins", "one")]
    with caplog.at_level(logging.WARNING):
        features = seq2seq_features(tokenizer, pairs, max_source_length=4, max_target_length=3)
    sep = tokenizer.sep_token_id
    assert [len(s) for s in features.sources] == [4, 3] and features.sources[0][-1] == sep
    assert [len(t) for t in features.labels] == [3, 2] and features.labels[0][-1] == sep
    assert (features.truncated_sources, features.truncated_targets) == (1, 1)
    assert "1 of 2 sources are longer than 4 tokens" in caplog.text
    with pytest.raises(UsageError, match="max_source_length=2"):
        seq2seq_features(tokenizer, pairs, max_source_length=2, max_target_length=3)


def test_loss_ignores_padding_and_smooths_labels(generator):
    logits = torch.randn(2, 3, 7, generator=generator)
    labels = torch.tensor([[1, 2, 3], [4, IGNORE_INDEX, IGNORE_INDEX]])
    loss, nll = seq2seq_loss(logits, labels)
    real = labels != IGNORE_INDEX
    expected = F.cross_entropy(logits[real], labels[real])
    assert torch.allclose(loss, expected) and torch.allclose(nll, expected)
    # padded positions change nothing, whatever their logits
    noisy = logits.clone()
    noisy[1, 1:] = 100.0
    assert torch.allclose(seq2seq_loss(noisy, labels)[0], loss)
    smoothed, plain = seq2seq_loss(logits, labels, label_smoothing=0.2)
    log_probs = logits[real].log_softmax(-1)
    by_hand = (0.8 * -log_probs.gather(1, labels[real][:, None]).squeeze(1)
               + 0.2 * -log_probs.mean(-1)).mean()
    assert torch.allclose(smoothed, by_hand, atol=1e-6) and torch.allclose(plain, expected)
