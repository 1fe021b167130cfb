"""Evaluation metrics for fine-tuning, written to match the field's reference implementations.

Published numbers are only comparable when every corner case is decided the same way, so each
family here follows one named reference and says where it departs from it:

* **Classification / multi-label / regression** follow scikit-learn's definitions
  (``precision_recall_fscore_support``, ``matthews_corrcoef``, ``hamming_loss``) and SciPy's
  ``pearsonr`` / ``spearmanr``. Every ill-defined ratio (``0/0``) is **0.0**, as scikit-learn's
  ``zero_division="warn"`` default returns, but silently. A correlation with a constant side is
  **0.0** too (SciPy gives ``nan``), so "keep the best checkpoint by metric" stays well ordered.
* **NER** follows seqeval's *default* mode (conlleval-compatible chunking, lenient: an ``I-``
  after ``O`` or after another type starts an entity). See :func:`extract_entities` for the exact
  rules and the two places where plain-tag handling is decided.
* **SQuAD** follows the official v1.1 and v2.0 evaluation scripts line for line, including the
  quirks of ``find_best_thresh`` (see :func:`best_threshold`).

Everything is a pure function over Python sequences or NumPy arrays; no torch, so metrics can
run in a data-loader worker, a CLI ``evaluate`` command or a notebook alike.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

from bertkit.errors import DataFormatError, UsageError

__all__ = [
    "PRF",
    "Entity",
    "EntityScores",
    "accuracy",
    "best_threshold",
    "classification_report",
    "confusion_matrix",
    "entity_scores",
    "exact_match",
    "extract_entities",
    "f1_score",
    "matthews_corrcoef",
    "mse",
    "multilabel_metrics",
    "normalize_answer",
    "pearson",
    "precision_recall_f1",
    "spearman",
    "squad_evaluate",
    "token_accuracy",
    "validate_bio",
    "validate_iob2",
]

Average = Literal["macro", "micro", "weighted"]


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PRF:
    """Precision, recall, F1 and support (number of true instances) of one label or average.

    One small record instead of sklearn's 4-tuple, so callers write ``scores.f1`` rather than
    remembering positions, and ``as_dict()`` gives the JSON a metrics file stores.
    """

    precision: float
    recall: float
    f1: float
    support: int

    def as_dict(self) -> dict[str, float | int]:
        """Plain-dict form for JSON metric files."""
        return asdict(self)


def _div(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, or 0.0 when the ratio is undefined (the module convention)."""
    return float(numerator) / float(denominator) if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    """Harmonic mean; 0.0 when both are 0 (sklearn's ``denom[denom == 0] = 1`` trick)."""
    return _div(2.0 * precision * recall, precision + recall)


def _prf(tp: int, n_pred: int, n_true: int) -> PRF:
    precision = _div(tp, n_pred)
    recall = _div(tp, n_true)
    return PRF(precision, recall, _f1(precision, recall), int(n_true))


def _as_1d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise UsageError(f"{name} must be a 1-D sequence of labels, got shape {array.shape}")
    return array


def _pair_1d(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate two aligned, non-empty 1-D label arrays: the mistakes a metric must not hide."""
    t, p = _as_1d(y_true, "y_true"), _as_1d(y_pred, "y_pred")
    if len(t) != len(p):
        raise UsageError(f"y_true has {len(t)} items but y_pred has {len(p)}; they must align")
    if len(t) == 0:
        raise UsageError("no samples: y_true and y_pred are empty, the metric is undefined")
    kinds = {_kind(t), _kind(p)}
    if kinds == {"number", "text"}:
        # Comparing ids with names is always False: the classic id2label mix-up, which would
        # otherwise show up as a silent accuracy of 0.
        raise UsageError(
            f"y_true holds {_kind(t)} labels but y_pred holds {_kind(p)} labels "
            f"(e.g. {t[0]!r} vs {p[0]!r}); map both through the same id2label/label2id"
        )
    return t, p


def _kind(array: np.ndarray) -> str:
    if array.dtype.kind in "biuf":
        return "number"
    return "text" if array.dtype.kind in "US" else "other"


def _sorted_labels(*arrays: np.ndarray) -> list[Hashable]:
    """Union of labels, sorted, as sklearn's ``unique_labels`` orders them."""
    seen: set[Hashable] = set()
    for array in arrays:
        seen.update(array.tolist())
    try:
        return sorted(seen)
    except TypeError as err:
        raise UsageError(
            f"labels of mixed types cannot be ordered ({err}); pass labels=[...] explicitly"
        ) from err


def _average(per_label: Sequence[PRF], counts: Sequence[tuple[int, int, int]], average: str) -> PRF:
    """Combine per-label scores the way sklearn / seqeval do for micro, macro and weighted."""
    support = int(sum(c[2] for c in counts))
    if average == "micro":
        return _prf(sum(c[0] for c in counts), sum(c[1] for c in counts), support)
    if not per_label:
        return PRF(0.0, 0.0, 0.0, 0)
    if average == "macro":
        weights = np.ones(len(per_label))
    elif average == "weighted":
        weights = np.array([c[2] for c in counts], dtype=np.float64)
        if weights.sum() == 0:  # no true instance of any label: every ratio is 0/0
            return PRF(0.0, 0.0, 0.0, 0)
    else:
        raise UsageError(f"average must be 'micro', 'macro', 'weighted' or None, got {average!r}")
    return PRF(
        float(np.average([s.precision for s in per_label], weights=weights)),
        float(np.average([s.recall for s in per_label], weights=weights)),
        float(np.average([s.f1 for s in per_label], weights=weights)),
        support,
    )


# --------------------------------------------------------------------------------------------
# Single-label classification
# --------------------------------------------------------------------------------------------


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of samples whose predicted label equals the true one."""
    t, p = _pair_1d(y_true, y_pred)
    return float(np.mean(t == p))


def confusion_matrix(y_true: Any, y_pred: Any, num_labels: int) -> np.ndarray:
    """Counts ``C[i, j]`` of samples with true label ``i`` predicted as ``j`` (sklearn layout).

    Labels are integer ids ``0 … num_labels-1`` (the ``id2label`` keys), so the matrix has a row
    and column for every class even when a class never occurs in this evaluation set.
    """
    t, p = _pair_1d(y_true, y_pred)
    if num_labels < 1:
        raise UsageError(f"num_labels must be >= 1, got {num_labels}")
    for name, array in (("y_true", t), ("y_pred", p)):
        if not np.issubdtype(array.dtype, np.integer):
            raise UsageError(f"{name} must hold integer label ids, got dtype {array.dtype}")
        bad = array[(array < 0) | (array >= num_labels)]
        if bad.size:
            raise UsageError(
                f"{name} holds label id {int(bad[0])}, outside 0..{num_labels - 1} "
                f"(num_labels={num_labels})"
            )
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (t.astype(np.int64), p.astype(np.int64)), 1)
    return matrix


def _label_counts(
    t: np.ndarray, p: np.ndarray, labels: Sequence[Hashable]
) -> list[tuple[int, int, int]]:
    """(true positives, predicted count, true count) per label."""
    return [
        (int(np.sum((t == lab) & (p == lab))), int(np.sum(p == lab)), int(np.sum(t == lab)))
        for lab in labels
    ]


def _prf_table(
    t: np.ndarray, p: np.ndarray, labels: Sequence[Hashable] | None
) -> tuple[list[Hashable], list[PRF], list[tuple[int, int, int]]]:
    """Labels considered, their PRF, and their (tp, predicted, true) counts."""
    label_list = _sorted_labels(t, p) if labels is None else list(labels)
    if not label_list:
        raise UsageError("labels is empty: there is nothing to score")
    counts = _label_counts(t, p, label_list)
    return label_list, [_prf(*c) for c in counts], counts


def precision_recall_f1(
    y_true: Any,
    y_pred: Any,
    average: Average | None = "macro",
    labels: Sequence[Hashable] | None = None,
) -> PRF | dict[Hashable, PRF]:
    """Precision, recall and F1 per label or averaged, as sklearn's
    ``precision_recall_fscore_support``.

    * ``labels=None`` uses the sorted union of labels seen in ``y_true`` and ``y_pred``. Passing
      ``labels`` restricts every average to those labels (sklearn's rule: e.g. leave out an
      "other" class); samples of unlisted labels then count for nothing.
    * ``average=None`` returns ``{label: PRF}`` in label order; ``"micro"`` pools the counts (for
      single-label data over all labels, micro P = R = F1 = accuracy); ``"macro"`` is the
      unweighted mean of per-label P, R and F1 (the F1 of each label averaged, **not** the F1
      of the averaged P and R); ``"weighted"`` weights that mean by support.
    * **Zero division → 0.0**: a label never predicted has precision 0, a label with no true
      instance has recall 0, and F1 is 0 when P + R = 0 (sklearn's default, without the warning).
      Such labels still count in the macro mean.
    * ``support`` of an average is the total number of true instances of the labels considered.
    """
    t, p = _pair_1d(y_true, y_pred)
    label_list, per_label, counts = _prf_table(t, p, labels)
    if average is None:
        return dict(zip(label_list, per_label, strict=True))
    return _average(per_label, counts, average)


def matthews_corrcoef(y_true: Any, y_pred: Any) -> float:
    """Matthews correlation coefficient, multi-class form (Gorodkin's R_K, as sklearn computes).

    With confusion matrix ``C`` over the labels present, ``t_k`` true counts, ``p_k`` predicted
    counts, ``c`` correct and ``s`` samples::

        MCC = (c·s − Σ t_k p_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²))

    For two classes this is the familiar (TP·TN − FP·FN) / sqrt(…). When either factor under
    the root is 0 (all true, or all predicted, labels identical) the result is **0.0**, as in
    sklearn.
    """
    t, p = _pair_1d(y_true, y_pred)
    labels = _sorted_labels(t, p)
    index = {lab: i for i, lab in enumerate(labels)}
    matrix = confusion_matrix(
        [index[v] for v in t.tolist()], [index[v] for v in p.tolist()], len(labels)
    ).astype(np.float64)
    t_sum, p_sum = matrix.sum(axis=1), matrix.sum(axis=0)
    n_correct, n_samples = float(np.trace(matrix)), float(p_sum.sum())
    cov_ytyp = n_correct * n_samples - float(np.dot(t_sum, p_sum))
    cov_ypyp = n_samples**2 - float(np.dot(p_sum, p_sum))
    cov_ytyt = n_samples**2 - float(np.dot(t_sum, t_sum))
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return float(cov_ytyp / np.sqrt(cov_ypyp * cov_ytyt))


def classification_report(
    y_true: Any,
    y_pred: Any,
    labels: Sequence[Hashable] | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A JSON-ready report: per-label P/R/F1/support, accuracy, micro, macro and weighted avg.

    Keys are ``names`` (aligned with ``labels``, e.g. from ``id2label``) or ``str(label)``;
    ``"accuracy"`` is over all samples, whatever ``labels`` selects. The shape follows sklearn's
    ``classification_report(output_dict=True)`` with ``f1`` for ``f1-score`` and ``micro avg``
    always present, so a metrics file has the same keys run after run.
    """
    t, p = _pair_1d(y_true, y_pred)
    label_list, per_label, counts = _prf_table(t, p, labels)
    if names is not None and len(names) != len(label_list):
        raise UsageError(f"names has {len(names)} entries but there are {len(label_list)} labels")
    keys = [str(lab) for lab in label_list] if names is None else list(names)
    report: dict[str, Any] = {
        key: scores.as_dict() for key, scores in zip(keys, per_label, strict=True)
    }
    report["accuracy"] = accuracy(t, p)
    for average in ("micro", "macro", "weighted"):
        report[f"{average} avg"] = _average(per_label, counts, average).as_dict()
    return report


# --------------------------------------------------------------------------------------------
# Multi-label classification
# --------------------------------------------------------------------------------------------


def multilabel_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Metrics for multi-label data given as 0/1 indicator matrices of shape (samples, labels).

    * ``subset_accuracy``: fraction of samples whose whole label set is exactly right.
    * ``hamming_loss``: fraction of the samples × labels cells that are wrong.
    * ``micro_*``: P/R/F1 of the pooled cell counts (TP, FP, FN over every label).
    * ``macro_*``: mean over **every column** of per-label P/R/F1; a label with neither true nor
      predicted positives scores 0 (zero-division convention, as sklearn) and still counts.

    Thresholding probabilities into 0/1 is the caller's decision, so non-binary input is an
    error rather than a silent ``> 0``.
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.ndim != 2 or t.shape != p.shape:
        raise UsageError(
            f"multi-label targets must be two 0/1 matrices of one shape (samples, labels); "
            f"got y_true {t.shape} and y_pred {p.shape}"
        )
    if t.size == 0:
        raise UsageError("no samples or no labels: multi-label metrics are undefined")
    for name, array in (("y_true", t), ("y_pred", p)):
        if not np.isin(array, (0, 1)).all():
            raise UsageError(
                f"{name} must hold only 0/1 indicators (threshold probabilities first)"
            )
    t, p = t.astype(bool), p.astype(bool)
    tp = (t & p).sum(axis=0)
    n_pred, n_true = p.sum(axis=0), t.sum(axis=0)
    counts = [(int(a), int(b), int(c)) for a, b, c in zip(tp, n_pred, n_true, strict=True)]
    per_label = [_prf(*c) for c in counts]
    micro = _average(per_label, counts, "micro")
    macro = _average(per_label, counts, "macro")
    return {
        "subset_accuracy": float(np.mean((t == p).all(axis=1))),
        "hamming_loss": float(np.mean(t != p)),
        "micro_precision": micro.precision,
        "micro_recall": micro.recall,
        "micro_f1": micro.f1,
        "macro_precision": macro.precision,
        "macro_recall": macro.recall,
        "macro_f1": macro.f1,
    }


# --------------------------------------------------------------------------------------------
# Regression
# --------------------------------------------------------------------------------------------


def _pair_float(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _pair_1d(y_true, y_pred)
    try:
        t, p = t.astype(np.float64), p.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise UsageError(f"regression targets must be numbers: {err}") from err
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise UsageError("regression targets hold NaN or infinity; a correlation would be NaN")
    return t, p


def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error."""
    t, p = _pair_float(y_true, y_pred)
    return float(np.mean((t - p) ** 2))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    # Exact equality, not a small-variance test: a near-constant side still has a defined
    # correlation, while centring a truly constant array can leave rounding noise behind.
    if (x == x[0]).all() or (y == y[0]).all():
        return 0.0
    dx, dy = x - x.mean(), y - y.mean()
    r = float(np.dot(dx, dy) / np.sqrt(np.dot(dx, dx) * np.dot(dy, dy)))
    return max(-1.0, min(1.0, r))  # clamp rounding overshoot, as scipy does


def pearson(y_true: Any, y_pred: Any) -> float:
    """Pearson's r. **0.0** when either side is constant (undefined; SciPy returns ``nan``)."""
    return _pearson(*_pair_float(y_true, y_pred))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given the mean of the ranks they span (``rankdata('average')``)."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    new_group = np.concatenate(([True], sorted_x[1:] != sorted_x[:-1]))
    starts = np.flatnonzero(new_group)
    ends = np.concatenate((starts[1:], [len(x)]))  # exclusive
    group_rank = (starts + ends - 1) / 2.0 + 1.0  # mean of 1-based ranks start+1 … end
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = group_rank[np.cumsum(new_group) - 1]
    return ranks


def spearman(y_true: Any, y_pred: Any) -> float:
    """Spearman's rho: Pearson's r of the average ranks (ties share their mean rank, as
    ``scipy.stats.spearmanr``). **0.0** when either side is constant."""
    t, p = _pair_float(y_true, y_pred)
    return _pearson(_average_ranks(t), _average_ranks(p))


# --------------------------------------------------------------------------------------------
# Named-entity recognition: entity-level scores, seqeval default mode
# --------------------------------------------------------------------------------------------


class Entity(NamedTuple):
    """One entity: its type and the token span ``tags[start:end]`` (``end`` is EXCLUSIVE).

    seqeval reports ``(type, start, end_inclusive)``; bertkit uses Python's half-open spans so a
    span slices tokens and word offsets directly. Only the end index differs (ours = seqeval + 1).
    """

    type: str
    start: int
    end: int


_SINGLE_LETTER_PREFIXES = frozenset("BIES")


def _split_tag(tag: str) -> tuple[str, str]:
    """(prefix, type) of one tag under the rules documented in :func:`extract_entities`."""
    if not isinstance(tag, str):
        raise UsageError(f"NER tags must be strings, got {type(tag).__name__} {tag!r}")
    if tag == "O":
        return "O", "_"
    prefix, dash, type_ = tag.partition("-")
    if dash:
        return prefix, type_ or "_"
    if tag in _SINGLE_LETTER_PREFIXES:
        return tag, "_"
    return "B", tag  # conlleval -r: a plain tag is a one-token chunk


def _chunk_ends(prev: str, cur: str, prev_type: str, cur_type: str) -> bool:
    """seqeval ``end_of_chunk``: does an entity end between the previous and the current tag?"""
    if prev in ("E", "S"):
        return True
    if prev in ("B", "I") and cur in ("B", "S", "O"):
        return True
    return prev not in ("O", ".") and prev_type != cur_type


def _chunk_starts(prev: str, cur: str, prev_type: str, cur_type: str) -> bool:
    """seqeval ``start_of_chunk``: does an entity start at the current tag?"""
    if cur in ("B", "S"):
        return True
    if prev in ("E", "S", "O") and cur in ("E", "I"):
        return True
    return cur not in ("O", ".") and prev_type != cur_type


def extract_entities(tags: Sequence[str]) -> list[Entity]:
    """Entities of ONE sentence's tag sequence, with seqeval's default-mode (conlleval) rules.

    Lenient by design: it scores what a model predicted, and a model can emit any sequence.

    * **B-X** always starts an entity of type X.
    * **I-X** continues an entity of type X; after ``O``, after an entity of another type, or at
      the sentence start it **starts** a new one (so IOB1 data and "I- without B-" predictions
      are read as conlleval reads them).
    * **E-X / S-X** follow seqeval (BIOES meaning): ``E`` closes the entity it ends, ``S`` is a
      one-token entity; an ``E`` or ``I`` after ``E``/``S``/``O`` starts a new one. conlleval's
      own ``E`` (IOE) rules differ; seqeval is this project's reference.
    * A tag is split at its **first** hyphen, so types may contain hyphens (``B-geo-loc`` →
      ``geo-loc``); an empty type (``B-`` or a bare ``B``/``I``/``E``/``S``) is reported as ``"_"``,
      as seqeval does. An unknown prefix (``U-X``, ``L-X``) acts only through type changes, as in
      both conlleval and seqeval.
    * **Plain tags** without a prefix (``PER``) are read as conlleval's ``-r`` (raw) option reads
      them: ``B-PER``, one entity per token. seqeval instead garbles them (type ``"ER"``); convert
      IO-scheme data to BIO first if adjacent plain tags should merge.

    Returns entities in order of their start. End indices are exclusive (see :class:`Entity`).
    """
    entities: list[Entity] = []
    prev, prev_type, begin = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):  # the sentinel O closes an entity at the end
        cur, cur_type = _split_tag(tag)
        if _chunk_ends(prev, cur, prev_type, cur_type):
            entities.append(Entity(prev_type, begin, i))
        if _chunk_starts(prev, cur, prev_type, cur_type):
            begin = i
        prev, prev_type = cur, cur_type
    return entities


_BIO_TAG = re.compile(r"O|[BI]-\S+")


def _where(i: int, path: Any, line: int | None) -> tuple[str, int | None]:
    """Message fragment and line number of tag ``i``: tags of a CoNLL sentence sit on
    consecutive lines, so tag ``i`` is on ``line + i``."""
    if line is not None:
        return "", line + i
    return f"token {i}: ", None


def validate_bio(tags: Sequence[str], path: Any = None, line: int | None = None) -> None:
    """Raise :class:`DataFormatError` unless every tag is ``O``, ``B-TYPE`` or ``I-TYPE``.

    This checks the *form* of each tag only, so IOB1 files and "I- after O" pass; use
    :func:`validate_iob2` to also require that every entity opens with ``B-``. ``line`` is the
    file line of ``tags[0]``; the error points at ``path:line+i`` of the offending tag ``i``.
    Non-BIO schemes (BIOES's ``E-``/``S-``, plain tags) are rejected: the data loaders accept
    BIO/IOB2, and :func:`extract_entities` is the place that is lenient.
    """
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or not _BIO_TAG.fullmatch(tag):
            prefix, at = _where(i, path, line)
            raise DataFormatError(
                f"{prefix}tag {tag!r} is not a BIO tag; expected O, B-TYPE or I-TYPE",
                path=path,
                line=at,
            )


def validate_iob2(tags: Sequence[str], path: Any = None, line: int | None = None) -> None:
    """Strict IOB2: :func:`validate_bio`, and every ``I-X`` follows ``B-X`` or ``I-X``.

    Explicit and separate because the lenient reading (:func:`extract_entities`) is the right
    one for scoring, while a training file that breaks IOB2 usually means a conversion bug the
    user wants to hear about.
    """
    validate_bio(tags, path, line)
    prev = "O"
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and prev not in (f"B-{tag[2:]}", tag):
            prefix, at = _where(i, path, line)
            raise DataFormatError(
                f"{prefix}tag {tag!r} follows {prev!r}; IOB2 requires an entity to open with "
                f"B-{tag[2:]} (IOB1 data? convert it, or check with validate_bio only)",
                path=path,
                line=at,
            )
        prev = tag


@dataclass(frozen=True)
class EntityScores:
    """Entity-level scores: per type, and micro / macro / weighted over types.

    ``micro`` is the headline "overall" number of conlleval and seqeval. The macro and weighted
    means run over the sorted union of types found in the gold *or* predicted tags, as seqeval
    does: a type that was only ever predicted adds a 0 to the macro mean.
    """

    per_type: dict[str, PRF] = field(default_factory=dict)
    micro: PRF = PRF(0.0, 0.0, 0.0, 0)
    macro: PRF = PRF(0.0, 0.0, 0.0, 0)
    weighted: PRF = PRF(0.0, 0.0, 0.0, 0)

    def as_dict(self) -> dict[str, dict[str, float | int]]:
        """seqeval ``classification_report(output_dict=True)`` shape (with ``f1``)."""
        report = {name: scores.as_dict() for name, scores in self.per_type.items()}
        report["micro avg"] = self.micro.as_dict()
        report["macro avg"] = self.macro.as_dict()
        report["weighted avg"] = self.weighted.as_dict()
        return report


def _aligned_sentences(
    true_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]
) -> list[tuple[Sequence[str], Sequence[str]]]:
    for name, seqs in (("true_seqs", true_seqs), ("pred_seqs", pred_seqs)):
        if isinstance(seqs, str) or any(isinstance(s, str) for s in seqs):
            raise UsageError(
                f"{name} must be a list of sentences, each a list of tags "
                "(wrap a single sentence as [tags])"
            )
    if len(true_seqs) != len(pred_seqs):
        raise UsageError(
            f"{len(true_seqs)} gold sentences but {len(pred_seqs)} predicted; they must align"
        )
    for k, (t, p) in enumerate(zip(true_seqs, pred_seqs, strict=True)):
        if len(t) != len(p):
            raise UsageError(
                f"sentence {k}: {len(t)} gold tags but {len(p)} predicted; they must align"
            )
    return list(zip(true_seqs, pred_seqs, strict=True))


def entity_scores(
    true_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]
) -> EntityScores:
    """Entity-level precision / recall / F1 / support, seqeval default mode.

    A predicted entity is correct only if its type, start AND end all equal a gold entity's
    (so a wrong boundary is one false positive and one false negative). Sentences are scored
    separately, so no entity crosses a sentence boundary. Zero-division gives 0.0: with no
    predicted entity precision is 0 (and so is F1), with no gold entity recall is 0; when
    neither side has any entity every score is 0.0 (seqeval returns ``nan`` for that macro).
    """
    gold: dict[str, set[tuple[int, int, int]]] = {}
    pred: dict[str, set[tuple[int, int, int]]] = {}
    for k, (t, p) in enumerate(_aligned_sentences(true_seqs, pred_seqs)):
        for store, tags in ((gold, t), (pred, p)):
            for ent in extract_entities(tags):
                store.setdefault(ent.type, set()).add((k, ent.start, ent.end))
    types = sorted(set(gold) | set(pred))
    counts = [
        (
            len(gold.get(name, set()) & pred.get(name, set())),
            len(pred.get(name, set())),
            len(gold.get(name, set())),
        )
        for name in types
    ]
    per_type = [_prf(*c) for c in counts]
    return EntityScores(
        per_type=dict(zip(types, per_type, strict=True)),
        micro=_average(per_type, counts, "micro"),
        macro=_average(per_type, counts, "macro"),
        weighted=_average(per_type, counts, "weighted"),
    )


def token_accuracy(true_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> float:
    """Fraction of tokens whose tag is right (seqeval's ``accuracy_score``; ``O`` counts)."""
    pairs = _aligned_sentences(true_seqs, pred_seqs)
    total = sum(len(t) for t, _ in pairs)
    if total == 0:
        raise UsageError("no tokens: token accuracy is undefined")
    correct = sum(a == b for t, p in pairs for a, b in zip(t, p, strict=True))
    return correct / total


# --------------------------------------------------------------------------------------------
# SQuAD v1.1 / v2.0, as the official evaluation scripts
# --------------------------------------------------------------------------------------------

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
