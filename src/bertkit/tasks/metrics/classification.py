"""Classification, multi-label and regression metrics, as scikit-learn and SciPy define them
(see :mod:`bertkit.tasks.metrics`)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from bertkit.errors import UsageError

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


NO_SCORE = PRF(0.0, 0.0, 0.0, 0)
"""The scores of a label nothing was predicted or labelled for."""


def prf_from_counts(tp: int, n_pred: int, n_true: int) -> PRF:
    """Precision, recall and F1 from true positives, predicted and true counts."""
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


def average_prf(per_label: Sequence[PRF], counts: Sequence[tuple[int, int, int]],
                average: str) -> PRF:
    """Combine per-label scores the way sklearn / seqeval do for micro, macro and weighted."""
    support = int(sum(c[2] for c in counts))
    if average == "micro":
        return prf_from_counts(sum(c[0] for c in counts), sum(c[1] for c in counts), support)
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
    return label_list, [prf_from_counts(*c) for c in counts], counts


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
    return average_prf(per_label, counts, average)


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
        report[f"{average} avg"] = average_prf(per_label, counts, average).as_dict()
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
    per_label = [prf_from_counts(*c) for c in counts]
    micro = average_prf(per_label, counts, "micro")
    macro = average_prf(per_label, counts, "macro")
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


def roc_auc(y_true: Any, scores: Any) -> float:
    """Area under the ROC curve of ``scores`` for 0/1 ``y_true`` (scikit-learn's
    ``roc_auc_score`` for binary targets): the chance that a random positive scores above a
    random negative, ties counting half — the Mann-Whitney U over the average ranks.

    Raises:
        UsageError: labels other than 0/1, or only one class present (the area is undefined).
    """
    labels, values = _pair_1d(y_true, scores)
    if not np.isin(labels, (0, 1)).all():
        raise UsageError("roc_auc needs 0/1 labels")
    positive = labels.astype(bool)
    n_pos = int(positive.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise UsageError(f"roc_auc needs both classes; got {n_pos} positive and {n_neg} "
                         "negative samples")
    rank_sum = float(_average_ranks(values.astype(np.float64))[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
