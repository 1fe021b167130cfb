"""SQuAD v1.1 / v2.0 exact match and F1, as the official evaluation scripts compute them."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from bertkit.errors import DataFormatError, UsageError

SquadVersion = Literal["1.1", "2.0"]
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official normalisation, in its order: lower-case; drop ASCII punctuation
    (``string.punctuation`` only: ``«»``, ``—``, ``’`` survive); replace the whole words
    ``a``/``an``/``the`` by a space (``\\b`` is Unicode-aware, so ``theé`` is one word); split on
    any whitespace (NBSP included) and rejoin with single spaces.

    Punctuation goes before articles, so ``the-end`` becomes ``theend`` and keeps its letters.
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, ground_truth: str) -> float:
    """1.0 when both strings normalise to the same text, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def f1_score(prediction: str, ground_truth: str, version: SquadVersion = "2.0") -> float:
    """Token-level F1 of the normalised answers, counting each shared token as often as it
    occurs on both sides (bag overlap).

    If either side normalises to no tokens, v2.0 gives 1.0 when both are empty and 0.0
    otherwise (a correct "no answer"); the v1.1 script gives 0.0 even when both are empty.
    That is the only difference between the two scripts' F1.
    """
    if version not in ("1.1", "2.0"):
        raise UsageError(f"SQuAD version must be '1.1' or '2.0', got {version!r}")
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    if version == "2.0" and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def _answer_text(answer: Any, qid: str) -> str:
    if isinstance(answer, str):
        return answer
    if isinstance(answer, Mapping) and isinstance(answer.get("text"), str):
        return answer["text"]
    raise DataFormatError(f"question {qid!r}: an answer must be a string or {{'text': ...}}")


def _gold_answers(dataset_or_answers: Any) -> dict[str, list[str]]:
    """``{question id: [gold answer texts]}`` (empty list = unanswerable) from a SQuAD JSON
    object, its ``data`` list, or such a mapping given directly."""
    articles: Any = None
    if isinstance(dataset_or_answers, Mapping) and isinstance(dataset_or_answers.get("data"), list):
        articles = dataset_or_answers["data"]
    elif isinstance(dataset_or_answers, list):
        articles = dataset_or_answers
    gold: dict[str, list[str]] = {}

    def add(qid: Any, answers: Any) -> None:
        if not isinstance(qid, str):
            raise DataFormatError(f"question id {qid!r} is not a string")
        if qid in gold:
            raise DataFormatError(f"question id {qid!r} occurs twice")
        if isinstance(answers, str) or not isinstance(answers, Iterable):
            raise DataFormatError(f"question {qid!r}: answers must be a list")
        gold[qid] = [_answer_text(a, qid) for a in answers]

    if articles is None:
        if not isinstance(dataset_or_answers, Mapping):
            raise UsageError(
                "expected a SQuAD JSON object ({'data': [...]}), its 'data' list, or a mapping "
                f"question id -> gold answers; got {type(dataset_or_answers).__name__}"
            )
        for qid, answers in dataset_or_answers.items():
            add(qid, answers)
        return gold
    try:
        for article in articles:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    add(qa["id"], qa["answers"])
    except (KeyError, TypeError) as err:
        raise DataFormatError(
            f"not SQuAD JSON: expected data[].paragraphs[].qas[] with 'id' and 'answers' ({err!r})"
        ) from err
    return gold


def _raw_scores(
    gold: Mapping[str, list[str]], predictions: Mapping[str, str], version: SquadVersion
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Per-question EM and F1, max over gold answers (``get_raw_scores``); missing → 0."""
    if version not in ("1.1", "2.0"):
        raise UsageError(f"SQuAD version must be '1.1' or '2.0', got {version!r}")
    exact: dict[str, float] = {}
    f1: dict[str, float] = {}
    missing: list[str] = []
    for qid, answers in gold.items():
        if version == "2.0":
            # v2.0: answers that normalise to nothing are dropped; none left = unanswerable,
            # whose only correct prediction is the empty string.
            answers = [a for a in answers if normalize_answer(a)] or [""]
        elif not answers:
            raise UsageError(
                f"question {qid!r} has no gold answer; SQuAD v1.1 scoring needs one "
                "(use version='2.0' for unanswerable questions)"
            )
        if qid not in predictions:
            missing.append(qid)
            exact[qid] = f1[qid] = 0.0
            continue
        prediction = predictions[qid]
        if not isinstance(prediction, str):
            raise UsageError(f"prediction for {qid!r} must be a string, got {prediction!r}")
        exact[qid] = max(exact_match(prediction, a) for a in answers)
        f1[qid] = max(f1_score(prediction, a, version) for a in answers)
    return exact, f1, missing


def _check_probs(
    no_answer_probs: Mapping[str, float], predictions: Mapping[str, str], gold: Iterable[str]
) -> None:
    for qid in gold:
        if qid in predictions and qid not in no_answer_probs:
            raise UsageError(f"no_answer_probs has no entry for question {qid!r}")


def _find_best_thresh(
    predictions: Mapping[str, str],
    scores: Mapping[str, float],
    no_answer_probs: Mapping[str, float],
    has_answer: Mapping[str, bool],
) -> tuple[float, float]:
    """The official ``find_best_thresh``, over the questions that have a prediction."""
    cur_score = float(sum(1 for q, has in has_answer.items() if not has and q in predictions))
    best_score, best_thresh = cur_score, 0.0
    for qid in sorted(no_answer_probs, key=lambda k: no_answer_probs[k]):
        if qid not in scores or qid not in predictions:
            continue
        if has_answer[qid]:
            cur_score += scores[qid]
        elif predictions[qid]:  # the raw string: a prediction of " " counts as an answer
            cur_score -= 1.0
        if cur_score > best_score:
            best_score, best_thresh = cur_score, float(no_answer_probs[qid])
    return 100.0 * best_score / len(scores), best_thresh


def squad_evaluate(
    dataset_or_answers: Any,
    predictions: Mapping[str, str],
    no_answer_probs: Mapping[str, float] | None = None,
    threshold: float = 1.0,
    version: SquadVersion = "2.0",
) -> dict[str, float | int]:
    """Exact match and F1 (percentages, 0-100) as the official SQuAD scripts compute them.

    ``dataset_or_answers`` is the SQuAD JSON object, its ``data`` list, or ``{qid: [answers]}``
    (an empty list marks an unanswerable question); ``predictions`` maps qid → answer text
    (``""`` = no answer). Each question scores its best match over its gold answers.

    With ``no_answer_probs`` (qid → no-answer score) a question whose score is ``> threshold``
    is treated as answered "no answer" (score 1 iff it is unanswerable), and ``best_exact``,
    ``best_exact_thresh``, ``best_f1``, ``best_f1_thresh`` are added (see
    :func:`best_threshold`). Without it nothing is thresholded (the v2.0 script's default: all
    probabilities 0.0, threshold 1.0).

    Keys: ``exact``, ``f1``, ``total`` (the v1.1 script calls ``exact`` ``exact_match``),
    ``HasAns_*`` and ``NoAns_*`` when such questions exist, and ``missing`` (a bertkit addition):
    questions without a prediction score 0 and count in every total, as in the v1.1 script
    (the v2.0 script would crash on them). Predictions for unknown ids are ignored.
    """
    gold = _gold_answers(dataset_or_answers)
    if not gold:
        raise UsageError("the dataset has no questions: SQuAD scores are undefined")
    exact_raw, f1_raw, missing = _raw_scores(gold, predictions, version)
    has_answer = {qid: bool(answers) for qid, answers in gold.items()}
    exact, f1 = dict(exact_raw), dict(f1_raw)
    if no_answer_probs is not None:
        _check_probs(no_answer_probs, predictions, gold)
        for qid in gold:
            if qid in predictions and no_answer_probs[qid] > threshold:
                exact[qid] = f1[qid] = float(not has_answer[qid])

    def summary(qids: list[str]) -> dict[str, float | int]:
        return {
            "exact": 100.0 * sum(exact[q] for q in qids) / len(qids),
            "f1": 100.0 * sum(f1[q] for q in qids) / len(qids),
            "total": len(qids),
        }

    result: dict[str, float | int] = summary(list(gold))
    for name, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [q for q, has in has_answer.items() if has is wanted]
        if qids:
            result.update({f"{name}_{k}": v for k, v in summary(qids).items()})
    result["missing"] = len(missing)
    if no_answer_probs is not None:
        best_exact, exact_thresh = _find_best_thresh(
            predictions, exact_raw, no_answer_probs, has_answer
        )
        best_f1, f1_thresh = _find_best_thresh(predictions, f1_raw, no_answer_probs, has_answer)
        result.update(
            best_exact=best_exact,
            best_exact_thresh=exact_thresh,
            best_f1=best_f1,
            best_f1_thresh=f1_thresh,
        )
    return result


def best_threshold(
    dataset_or_answers: Any,
    predictions: Mapping[str, str],
    no_answer_probs: Mapping[str, float],
    metric: Literal["exact", "f1"] = "f1",
    version: SquadVersion = "2.0",
) -> tuple[float, float]:
    """``(best score in %, threshold)``: the v2.0 script's ``find_best_thresh``, exactly.

    The sweep starts from "every question abstains" (score = number of unanswerable questions,
    threshold 0.0), then walks the questions by increasing no-answer score; answering one adds
    its raw EM/F1 if it is answerable, and −1 if it is unanswerable but its prediction string is
    non-empty (the raw string, not the normalised one). The threshold moves to a question's
    score each time the running total strictly improves, so on ties the lowest threshold wins.
    Use it as ``no_answer_probs[q] > threshold`` → abstain.

    Inherited quirks, kept so numbers match published ones: the starting threshold 0.0 assumes
    probabilities in [0, 1] (with raw null-score differences, which can be negative, "abstain
    on everything" is not reproduced by 0.0), and questions sharing a score may be split by
    the sweep although one threshold cannot split them.
    """
    gold = _gold_answers(dataset_or_answers)
    if not gold:
        raise UsageError("the dataset has no questions: SQuAD scores are undefined")
    if metric not in ("exact", "f1"):
        raise UsageError(f"metric must be 'exact' or 'f1', got {metric!r}")
    _check_probs(no_answer_probs, predictions, gold)
    exact_raw, f1_raw, _ = _raw_scores(gold, predictions, version)
    has_answer = {qid: bool(answers) for qid, answers in gold.items()}
    scores = exact_raw if metric == "exact" else f1_raw
    return _find_best_thresh(predictions, scores, no_answer_probs, has_answer)
