"""SQuAD EM/F1 against an independent re-implementation of the official evaluation scripts.

The reference below is written from the published algorithm of ``evaluate-v1.1.py`` and
``evaluate-v2.0.py`` (normalise: lower-case, drop ``string.punctuation``, blank out the words
a/an/the, collapse whitespace; F1 over the *bag* of tokens; v2.0 drops gold answers that
normalise to nothing and scores an empty side as "both empty"), not from bertkit's code, so a
change to either the normalisation or the overlap count in bertkit shows up as a mismatch on
some of the generated pairs.
"""

from __future__ import annotations

import collections
import random
import re
import string

import pytest

from bertkit.tasks.metrics import f1_score, squad_evaluate

# --------------------------------------------------------------------------- the reference


def _ref_normalize(text: str) -> str:
    lowered = text.lower()
    no_punc = "".join(ch for ch in lowered if ch not in set(string.punctuation))
    no_articles = re.sub(r"\b(a|an|the)\b", " ", no_punc)
    return " ".join(no_articles.split())


def _ref_f1_v11(prediction: str, truth: str) -> float:
    pred, gold = _ref_normalize(prediction).split(), _ref_normalize(truth).split()
    common = collections.Counter(pred) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def _ref_f1_v20(prediction: str, truth: str) -> float:
    pred = _ref_normalize(prediction).split() if prediction else []
    gold = _ref_normalize(truth).split() if truth else []
    if not pred or not gold:
        return float(pred == gold)
    return _ref_f1_v11(prediction, truth)


def _ref_evaluate(golds: dict[str, list[str]], preds: dict[str, str], version: str):
    exact = f1 = 0.0
    for qid, answers in golds.items():
        pred = preds[qid]
        if version == "2.0":
            answers = [a for a in answers if _ref_normalize(a)] or [""]
            f1_fn = _ref_f1_v20
        else:
            f1_fn = _ref_f1_v11
        exact += max(float(_ref_normalize(pred) == _ref_normalize(a)) for a in answers)
        f1 += max(f1_fn(pred, a) for a in answers)
    return 100.0 * exact / len(golds), 100.0 * f1 / len(golds)


# --------------------------------------------------------------------------- generated pairs

# Words chosen to hit every branch: articles (whole words and inside words), case, ASCII and
# non-ASCII punctuation, repeats (bag vs set), NBSP and tabs as separators.
_WORDS = ("cat", "Cat", "cat", "dog", "the", "The", "a", "an", "anthem", "theory", "x",
          "cat.", "(dog)", "it's", "«cat»", "—", "état", "Été", "1,000", "-", "?!", "a-b")
_SEPARATORS = (" ", " ", " ", "  ", "\t", "\u00a0", "\n")


def _phrase(rng: random.Random, max_words: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(0, max_words))]
    text = ""
    for word in words:
        text += word + rng.choice(_SEPARATORS)
    return text.strip() if rng.random() < 0.8 else text


def _related(rng: random.Random, gold: str) -> str:
    """A prediction near ``gold``: a sub-span, a repeat, a shuffle, or unrelated text."""
    words = gold.split()
    kind = rng.randrange(5)
    if kind == 0 and words:
        start = rng.randrange(len(words))
        return " ".join(words[start:start + rng.randint(1, 4)])
    if kind == 1:
        return " ".join(words + words[: rng.randint(0, len(words))])
    if kind == 2:
        rng.shuffle(words)
        return " ".join(words)
    if kind == 3:
        return ""
    return _phrase(rng, 6)


def _generated_dataset(seed: int, n: int) -> tuple[dict[str, list[str]], dict[str, str]]:
    rng = random.Random(seed)
    golds: dict[str, list[str]] = {}
    preds: dict[str, str] = {}
    for i in range(n):
        answers = [_phrase(rng, 5) for _ in range(rng.randint(0, 3))]
        qid = f"q{i}"
        golds[qid] = answers
        base = rng.choice(answers) if answers else _phrase(rng, 3)
        preds[qid] = _related(rng, base)
    return golds, preds


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    ("prediction", "truth", "bag_f1"),
    [
        ("cat cat", "cat cat dog", 0.8),  # a set intersection would give 0.4
        ("cat cat cat", "cat", 0.5),  # set: 1.0
        ("cat dog cat", "dog cat cat", 1.0),
        ("the cat, the cat!", "a cat and a cat", 2 * (2 / 2) * (2 / 3) / (2 / 2 + 2 / 3)),
    ],
)
def test_f1_counts_repeated_tokens_as_a_bag(prediction: str, truth: str, bag_f1: float) -> None:
    for version in ("1.1", "2.0"):
        assert f1_score(prediction, truth, version) == pytest.approx(bag_f1)
        assert f1_score(truth, prediction, version) == pytest.approx(bag_f1)


def test_reference_itself_tells_bag_from_set() -> None:
    """Guard the guard: the reference must reproduce 0.8, or the cross-check proves nothing."""
    assert _ref_f1_v11("cat cat", "cat cat dog") == pytest.approx(0.8)


@pytest.mark.parametrize("seed", range(6))
def test_em_f1_match_the_official_algorithm_on_generated_pairs(seed: int) -> None:
    golds, preds = _generated_dataset(seed, 400)
    answerable = {q: a for q, a in golds.items() if any(_ref_normalize(x) for x in a)}
    # v1.1 needs a gold answer per question; v2.0 takes everything.
    for version, subset in (("1.1", answerable), ("2.0", golds)):
        result = squad_evaluate(subset, {q: preds[q] for q in subset}, version=version)
        exact, f1 = _ref_evaluate(subset, preds, version)
        assert result["exact"] == pytest.approx(exact, abs=1e-9), version
        assert result["f1"] == pytest.approx(f1, abs=1e-9), version
    # The generator must produce the cases that matter, or matching them is vacuous.
    assert any(0 < _ref_f1_v11(p, a[0]) < 1 for q, p in preds.items() for a in [golds[q]] if a)
    assert any(not a for a in golds.values())


@pytest.mark.parametrize("seed", range(6))
def test_per_pair_f1_matches_the_official_algorithm(seed: int) -> None:
    rng = random.Random(1000 + seed)
    for _ in range(300):
        truth = _phrase(rng, 6)
        prediction = _related(rng, truth)
        assert f1_score(prediction, truth, "2.0") == pytest.approx(_ref_f1_v20(prediction, truth))
        assert f1_score(prediction, truth, "1.1") == pytest.approx(_ref_f1_v11(prediction, truth))
