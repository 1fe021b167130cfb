"""Tests for bertkit.tasks.metrics.translation: sacreBLEU's BLEU/chrF, the copy baseline."""

from __future__ import annotations

import pytest

from bertkit.errors import UsageError
from bertkit.tasks.metrics import (
    copy_source_baseline,
    detokenize,
    translation_scores,
)

sacrebleu = pytest.importorskip("sacrebleu")

REFS = ["SOCKS (v4 and v5) proxy daemon", "Library of common debian-installer functions",
        "Real-time strategy game of ancient warfare"]


def test_scores_equal_sacrebleu_and_carry_signatures():
    hyps = ["SOCKS proxy daemon (v4 and v5)", "library of common installer functions",
            "strategy game about ancient war"]
    scores = translation_scores(hyps, REFS)
    assert scores.bleu == round(sacrebleu.corpus_bleu(hyps, [REFS]).score, 2)
    assert scores.chrf == round(sacrebleu.corpus_chrf(hyps, [REFS]).score, 2)
    assert 0 < scores.bleu < 100 and scores.sentences == 3
    assert "case:mixed" in scores.bleu_signature and "tok:13a" in scores.bleu_signature
    assert f"version:{sacrebleu.__version__}" in scores.chrf_signature
    assert translation_scores(REFS, REFS).bleu == 100.0


def test_lowercase_scoring_is_case_blind_and_says_so():
    lower = [r.lower() for r in REFS]
    assert translation_scores(lower, REFS).bleu < 100
    scores = translation_scores(lower, REFS, lowercase=True)
    assert scores.bleu == 100.0 and "case:lc" in scores.bleu_signature


def test_copy_baseline_scores_the_source_as_the_translation():
    sources = ["SOCKS-Proxy-Daemon (v4 und v5)", "Bibliothek für Debian-Installer-Funktionen",
               "Echtzeit-Strategiespiel über antike Kriegsführung"]
    baseline = copy_source_baseline(sources, REFS)
    assert baseline == translation_scores(sources, REFS)
    assert 0 < baseline.chrf < translation_scores(REFS, REFS).chrf


def test_mismatched_or_empty_lists_are_usage_errors():
    with pytest.raises(UsageError, match="2 hypotheses for 3 references"):
        translation_scores(REFS[:2], REFS)
    with pytest.raises(UsageError, match="no sentences"):
        translation_scores([], [])


def test_detokenize_removes_wordpiece_spacing():
    assert detokenize("socks ( v4 and v5 ) proxy daemon ' s , e. g. foo / bar .") == \
        "socks (v4 and v5) proxy daemon's, e. g. foo/bar."
