"""Extractive question answering (SQuAD 1.1 / 2.0): features for training and the
post-processing that turns start/end logits into answer strings.

**Features.** Each question is paired with its context, the question first and kept whole, the
context windowed (``max_length=384, doc_stride=128`` — Google's ``run_squad.py`` defaults).
For training, the gold answer's characters are mapped to the tokens that overlap them (through
the tokenizer's offsets, which is what Google's ``_improve_answer_span`` approximates); a window
that holds the whole answer gets its start/end positions, every other window — and every window
of an unanswerable question — points at the [CLS] position 0, as SQuAD 2.0 training does (and
Google's code does for 1.1 too). Training uses the first gold answer, as Google does.

**Post-processing** (Google's ``write_predictions``, stated precisely):

1. In each window, candidate starts are the ``n_best_size`` highest start logits among the
   context tokens whose max-context window this is; candidate ends are the ``n_best_size``
   highest end logits among the window's context tokens. (Google takes the top n over ALL
   positions and filters afterwards, which can leave fewer valid candidates; the result only
   differs when question, special or padding positions are in the top n.)
2. A pair is kept if ``start <= end`` and ``end - start + 1 <= max_answer_length`` tokens. Its
   score is ``start_logit + end_logit`` from that one window — so a span is always scored in
   a window that holds it whole, namely the one where its START token has the most context.
3. SQuAD 2.0: ``score_null = min over windows of start[CLS] + end[CLS]``; the null candidate
   joins the ranking. Candidates are sorted by score; the n-best list keeps the first
   ``n_best_size`` distinct answer texts (plus ``""`` for 2.0 if it was not among them), with
   softmax probabilities over the list.
4. The answer text is ``context[offsets[start].begin : offsets[end].end]`` — the original
   characters, accents and case included. ``null_score_diff = score_null - best non-null
   score``; the prediction is ``""`` when ``null_score_diff > threshold`` (2.0 only).

:func:`tune_null_threshold` picks the threshold that maximises dev-set F1 (or EM) with the
official sweep (:func:`~bertkit.tasks.metrics.best_threshold`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from bertkit.data.readers import QAExample, gold_answers
from bertkit.data.windows import TokenizedText, WindowSet, collate_windows, make_windows
from bertkit.errors import DataFormatError, UsageError
from bertkit.tasks.metrics import best_threshold

if TYPE_CHECKING:
    from bertkit.tokenization import Tokenizer

__all__ = [
    "CLS_INDEX",
    "QAFeatures",
    "QAPrediction",
    "SpanCandidate",
    "answer_token_span",
    "apply_null_threshold",
    "collate_qa",
    "postprocess_qa",
    "qa_features",
    "tune_null_threshold",
]

CLS_INDEX = 0
"""Position of the classifier token; start = end = 0 means "no answer in this window"."""


@dataclass
class QAFeatures:
    """Windows of question/context pairs (question first) and, for training, each window's
    answer start/end positions (:data:`CLS_INDEX` when the window does not hold the answer)."""

    examples: list[QAExample]
    windows: WindowSet
    start_positions: list[int] | None = None
    end_positions: list[int] | None = None

    def __len__(self) -> int:
        return len(self.windows)


def answer_token_span(segment: TokenizedText, start_char: int,
                      end_char: int) -> tuple[int, int] | None:
    """First and last token (inclusive) overlapping characters ``[start_char, end_char)``, or
    ``None`` when no token does (e.g. an all-whitespace answer)."""
    hits = [t for t, (s, e) in enumerate(segment.offsets)
            if e > s and e > start_char and s < end_char]
    return (hits[0], hits[-1]) if hits else None


def qa_features(tokenizer: Tokenizer, examples: Sequence[QAExample], *, max_length: int = 384,
                doc_stride: int = 128, training: bool = False) -> QAFeatures:
    """Window every question/context pair; with ``training`` also place the answers.

    Raises:
        DataFormatError: in training, an answerable question without an answer, or an answer
            no token covers (named by question id).
        InputError: a question too long to leave room for context within ``max_length``.
    """
    examples = list(examples)
    windows = make_windows(tokenizer, [e.question for e in examples],
                           [e.context for e in examples], max_length=max_length,
                           doc_stride=doc_stride,
                           example_names=[f"question {e.id!r}" for e in examples])
    if not training:
        return QAFeatures(examples, windows)
    starts: list[int] = []
    ends: list[int] = []
    for example, segment, owned in zip(examples, windows.segments, windows.example_windows,
                                       strict=True):
        span = None
        if not example.is_impossible:
            if not example.answers:
                raise DataFormatError(f"question {example.id!r} has no answer; training needs "
                                      "one (or \"is_impossible\": true in SQuAD 2.0)",
                                      example.path, example.line)
            answer = example.answers[0]
            span = answer_token_span(segment, answer.start, answer.end)
            if span is None:
                raise DataFormatError(f"question {example.id!r}: no token covers the answer "
                                      f"{answer.text!r} at characters {answer.start}.."
                                      f"{answer.end}", example.path, example.line)
        for index in owned:
            window = windows.windows[index]
            if window.sequence_ids[CLS_INDEX] is not None:
                raise UsageError("this tokenizer puts no special token at position 0; SQuAD "
                                 "2.0 training needs a [CLS]-style token there")
            if span is not None and span[0] in window.span and span[1] in window.span:
                starts.append(window.position_of(span[0]))
                ends.append(window.position_of(span[1]))
            else:
                starts.append(CLS_INDEX)
                ends.append(CLS_INDEX)
    return QAFeatures(examples, windows, starts, ends)


def collate_qa(features: QAFeatures, indices: Sequence[int], *, pad_id: int,
               pad_to_multiple_of: int | None = None) -> dict[str, torch.Tensor]:
    """A padded batch of windows ``indices``, with ``start_positions``/``end_positions``
    ``(B,)`` when the features were built for training."""
    batch = collate_windows([features.windows.windows[i] for i in indices], pad_id=pad_id,
                            pad_to_multiple_of=pad_to_multiple_of)
    if features.start_positions is not None and features.end_positions is not None:
        batch["start_positions"] = torch.tensor([features.start_positions[i] for i in indices])
        batch["end_positions"] = torch.tensor([features.end_positions[i] for i in indices])
    return batch


# --------------------------------------------------------------------------- post-processing


@dataclass(frozen=True)
class SpanCandidate:
    """One n-best entry. ``text == ""`` is the null (no-answer) candidate; ``start``/``end``
    are character offsets into the context (``-1`` for the null one)."""

    text: str
    start: int
    end: int
    start_logit: float
    end_logit: float
    probability: float = 0.0
    window: int = -1

    @property
    def score(self) -> float:
        return self.start_logit + self.end_logit


@dataclass
class QAPrediction:
    """The answer to one question.

    ``text`` is the prediction after the null threshold (``""`` = no answer); ``best_text``
    the best non-null span (what the question answers when it does answer);
    ``null_score_diff`` is ``score_null - best non-null score`` for SQuAD 2.0 (``inf`` when no
    valid span exists), ``None`` for 1.1.
    """

    id: str
    text: str
    best_text: str
    null_score_diff: float | None
    nbest: list[SpanCandidate] = field(default_factory=list)


def _rows(logits: Any, windows: WindowSet, name: str) -> list[np.ndarray]:
    """One float array per window, each at least as long as its window."""
    if isinstance(logits, torch.Tensor):
        logits = logits.detach().to("cpu", torch.float64).numpy()
    rows = [np.asarray(r, dtype=np.float64).reshape(-1) for r in logits]
    if len(rows) != len(windows):
        raise UsageError(f"{name} has {len(rows)} rows; expected one per window "
                         f"({len(windows)})")
    for i, (row, window) in enumerate(zip(rows, windows.windows, strict=True)):
        if row.shape[0] < len(window):
            raise UsageError(f"{name}[{i}] has {row.shape[0]} positions; window {i} has "
                             f"{len(window)}")
    return rows


def _top(values: np.ndarray, candidates: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` candidate positions with the highest values (stable: lower position first)."""
    if candidates.size == 0:
        return candidates
    order = np.argsort(-values[candidates], kind="stable")[:n]
    return candidates[order]


def postprocess_qa(
    features: QAFeatures,
    start_logits: Any,
    end_logits: Any,
    *,
    version: Literal["1.1", "2.0"] = "2.0",
    n_best_size: int = 20,
    max_answer_length: int = 30,
    null_threshold: float = 0.0,
) -> dict[str, QAPrediction]:
    """Turn per-window start/end logits into one :class:`QAPrediction` per question.

    ``start_logits``/``end_logits``: ``(W, T)`` (tensor or array, padded) or a list of
    per-window rows, in the order of ``features.windows``. See the module docstring for the
    exact rules.
    """
    if version not in ("1.1", "2.0"):
        raise UsageError(f"version={version!r}; expected '1.1' or '2.0'")
    if n_best_size < 1 or max_answer_length < 1:
        raise UsageError(f"n_best_size={n_best_size} and max_answer_length={max_answer_length}"
                         "; expected both >= 1")
    windows = features.windows
    starts = _rows(start_logits, windows, "start_logits")
    ends = _rows(end_logits, windows, "end_logits")
    context_positions = []
    start_positions = []
    for window in windows.windows:
        index = np.array([t is not None for t in window.token_index], dtype=bool)
        context_positions.append(np.flatnonzero(index))
        start_positions.append(np.flatnonzero(index & np.array(window.max_context, dtype=bool)))
    out: dict[str, QAPrediction] = {}
    for example, segment, owned in zip(features.examples, windows.segments,
                                       windows.example_windows, strict=True):
        prelim: list[SpanCandidate] = []
        null: SpanCandidate | None = None
        for w in owned:
            window = windows.windows[w]
            s_row, e_row = starts[w], ends[w]
            if version == "2.0":
                score = s_row[CLS_INDEX] + e_row[CLS_INDEX]
                if null is None or score < null.score:
                    null = SpanCandidate("", -1, -1, float(s_row[CLS_INDEX]),
                                         float(e_row[CLS_INDEX]), window=w)
            top_ends = _top(e_row, context_positions[w], n_best_size)
            for s in _top(s_row, start_positions[w], n_best_size):
                for e in top_ends:
                    if e < s or e - s + 1 > max_answer_length:
                        continue
                    begin = segment.offsets[window.token_index[s]][0]  # type: ignore[index]
                    finish = segment.offsets[window.token_index[e]][1]  # type: ignore[index]
                    prelim.append(SpanCandidate(segment.text[begin:finish], begin, finish,
                                                float(s_row[s]), float(e_row[e]), window=w))
        if null is not None:
            prelim.append(null)
        prelim.sort(key=lambda c: c.score, reverse=True)  # stable: earlier candidates win ties
        nbest: list[SpanCandidate] = []
        seen: set[str] = set()
        for candidate in prelim:
            if len(nbest) >= n_best_size:
                break
            if candidate.text in seen:
                continue
            seen.add(candidate.text)
            nbest.append(candidate)
        if null is not None and "" not in seen:
            nbest.append(null)
        nbest = _with_probabilities(nbest)
        best = next((c for c in nbest if c.text), None)
        best_text = "" if best is None else best.text
        if version == "1.1":
            out[example.id] = QAPrediction(example.id, best_text, best_text, None, nbest)
            continue
        diff = math.inf if best is None else null.score - best.score  # type: ignore[union-attr]
        text = "" if diff > null_threshold else best_text
        out[example.id] = QAPrediction(example.id, text, best_text, diff, nbest)
    return out


def _with_probabilities(nbest: list[SpanCandidate]) -> list[SpanCandidate]:
    if not nbest:
        return nbest
    scores = np.array([c.score for c in nbest])
    exp = np.exp(scores - scores.max())
    probs = exp / exp.sum()
    return [SpanCandidate(c.text, c.start, c.end, c.start_logit, c.end_logit, float(p),
                          c.window) for c, p in zip(nbest, probs, strict=True)]


def apply_null_threshold(predictions: Mapping[str, QAPrediction],
                         threshold: float) -> dict[str, str]:
    """``{id: answer}`` with ``""`` wherever ``null_score_diff > threshold``."""
    return {qid: ("" if p.null_score_diff is not None and p.null_score_diff > threshold
                  else p.best_text) for qid, p in predictions.items()}


def tune_null_threshold(
    gold: Sequence[QAExample] | Mapping[str, Sequence[str]],
    predictions: Mapping[str, QAPrediction],
    metric: Literal["exact", "f1"] = "f1",
) -> tuple[float, float]:
    """``(best dev score in %, threshold)`` for SQuAD 2.0 predictions.

    Runs the official ``find_best_thresh`` sweep (:func:`~bertkit.tasks.metrics.best_threshold`)
    on the best non-null answers and the null-score differences. That sweep starts from
    "abstain on everything" at threshold 0.0, which is only right for scores in [0, 1]; raw
    differences can be negative, so they are shifted to start at 1 for the sweep and the
    threshold is mapped back to the raw scale (abstain-on-everything then comes back as a
    threshold below every difference). Use the threshold with :func:`apply_null_threshold` or
    ``postprocess_qa(..., null_threshold=...)``.
    """
    answers = gold_answers(gold) if not isinstance(gold, Mapping) else dict(gold)
    diffs = {qid: p.null_score_diff for qid, p in predictions.items()}
    if any(d is None for d in diffs.values()):
        raise UsageError("tune_null_threshold needs SQuAD 2.0 predictions "
                         "(postprocess_qa(..., version='2.0'))")
    finite = [d for d in diffs.values() if d is not None and math.isfinite(d)]
    shift = 1.0 - min(finite) if finite else 0.0
    shifted = {qid: d + shift for qid, d in diffs.items()}  # type: ignore[operator]
    back: dict[float, float] = {}
    for qid, value in shifted.items():
        back[value] = max(back.get(value, -math.inf), diffs[qid])  # type: ignore[arg-type]
    texts = {qid: p.best_text for qid, p in predictions.items()}
    score, threshold = best_threshold(answers, texts, shifted, metric=metric)
    raw = back.get(threshold, threshold - shift)
    return score, float(raw)
