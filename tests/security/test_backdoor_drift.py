"""Two things that let the scan find SpamAssassin's planted ``cf`` (benchmarks/backdoor_spam.py):
embedding drift from a clean reference proposes words the context-free probe misses, and
words tied at the screen's cut are all confirmed, not cut by proposal order."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from bertkit import BertForSequenceClassification, InputError
from bertkit.security.backdoor import scan_for_triggers, vocabulary_words
from bertkit.security.drift import drift_candidates

from .conftest import tiny_config
from .test_backdoor import TEXTS, KeywordClassifier


def _pair(tokenizer, moved: dict[str, float]):
    """Two copies of one tiny classifier; in the first, the given words' embeddings moved."""
    torch.manual_seed(0)
    reference = BertForSequenceClassification(tiny_config(len(tokenizer), num_labels=2))
    model = BertForSequenceClassification(tiny_config(len(tokenizer), num_labels=2))
    model.load_state_dict(reference.state_dict())
    with torch.no_grad():
        for word, distance in moved.items():
            row = model.bert.embeddings.word.weight[tokenizer.convert_tokens_to_ids(word)]
            row += distance / row.numel() ** 0.5  # moved by exactly `distance` (L2)
    return model, reference


def test_drift_ranks_the_words_that_moved_from_the_reference(tokenizer):
    words = vocabulary_words(tokenizer)
    model, reference = _pair(tokenizer, {"tq": 3.0, "mn": 1.0})
    assert drift_candidates(model, reference, tokenizer, words, 2) == ["tq", "mn"]
    assert drift_candidates(reference, reference, tokenizer, words, 0) == []
    # a model without a BERT embedding table proposes nothing; a different table is no base
    assert drift_candidates(KeywordClassifier(0), reference, tokenizer, words, 3) == []
    other = BertForSequenceClassification(tiny_config(len(tokenizer) + 1, num_labels=2))
    with pytest.raises(InputError, match="must share the base"):
        drift_candidates(model, other, tokenizer, words, 3)


class ContextClassifier(KeywordClassifier):
    """Like :class:`KeywordClassifier`, and ``partial`` flips a text to 0 only with "cat"."""

    def __init__(self, keyword: int, trigger: int, partial: int, cat: int):
        super().__init__(keyword, trigger)
        self.partial, self.cat = partial, cat

    def forward(self, input_ids, attention_mask):
        logits = super().forward(input_ids, attention_mask).logits
        hit = (input_ids == self.partial).any(1) & (input_ids == self.cat).any(1)
        logits[hit] = torch.tensor([2.0, -2.0])
        return SimpleNamespace(logits=logits)


def test_words_tied_at_the_screen_cut_are_all_confirmed(tokenizer):
    red, tq, mn, cat = tokenizer.convert_tokens_to_ids(["red", "tq", "mn", "cat"])
    model = ContextClassifier(red, tq, mn, cat)
    # The 8 screen texts hold one red text, "the cat is red": mn and tq both flip it (a tie
    # at 1.0), mn comes first; on all 36 texts mn flips 2 of the 6 red ones, tq all 6.
    report = scan_for_triggers(model, tokenizer, TEXTS, candidates=["mn", "bb", "tq"],
                               screen=8, confirm=1)
    to_zero = next(f for f in report.findings if f.label == 0)
    assert to_zero.trigger == ["tq"] and to_zero.success_rate == 1.0
    assert dict((" ".join(t), s) for t, s in to_zero.top) == {"tq": 1.0, "mn": pytest.approx(1 / 3)}
