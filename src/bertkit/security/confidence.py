"""Confidence, calibration and out-of-distribution (OOD) scores for a classifier's outputs.

Why this lives in the security suite: a model that is confidently wrong on inputs unlike its
training data is exploitable (an attacker only needs an input far from the data), and a
detector is only trustworthy if its numbers are measured the same way every time. So every
metric here is written out in numpy with one stated convention, and tested against
hand-computed cases rather than against another library.

Conventions, used everywhere in :mod:`bertkit.security`:

- A *confidence score* is "higher = more in-distribution": :func:`max_softmax`,
  :func:`energy_score` (the negative free energy of Liu et al. 2020) and
  :meth:`Mahalanobis.score` (the negative distance). :func:`entropy` is the one natural
  quantity where higher means *less* confident; negate it before using it as a score.
- Detection metrics take the scores of the *positive* set (in-distribution examples, or
  members for membership inference) and of the *negative* set, and "higher = positive".
- Thresholds are fitted on one split and reported on another: :class:`TemperatureScaler` fits
  on held-out logits, :func:`threshold_at_fpr` on a clean calibration split.

Shape legend: N examples, C classes, H feature size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertkit.errors import InputError, UsageError

ArrayLike = Any  # numpy array, torch tensor or nested sequence of floats

DEFAULT_BINS = 15


# ----------------------------------------------------------------------------- conversions


def as_array(values: ArrayLike, *, name: str, ndim: int | None = None,
             allow_empty: bool = False) -> np.ndarray:
    """A float64 numpy array from a tensor/array/list, with errors that name the argument."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to(torch.float64).cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name}: expected numbers ({err})") from None
    if ndim is not None and array.ndim != ndim:
        raise InputError(f"{name}: expected a {ndim}-d array, got shape {tuple(array.shape)}")
    if not allow_empty and array.size == 0:
        raise InputError(f"{name} is empty; at least one example is needed")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name} holds NaN or infinite values")
    return array


def check_labels(labels: ArrayLike, num_classes: int, *, name: str = "labels") -> np.ndarray:
    """Integer labels in ``[0, num_classes)``; a label the model has no output for is an error
    (a silent wrap-around would make every metric meaningless)."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim != 1 or array.size == 0:
        raise InputError(f"{name}: expected a non-empty 1-d sequence, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise InputError(f"{name}: expected integer class ids, got {array.dtype}")
    unseen = sorted({int(v) for v in array if v < 0 or v >= num_classes})
    if unseen:
        raise InputError(f"{name}: label(s) {unseen[:10]} unseen by the model, which has "
                         f"{num_classes} output classes (ids 0..{num_classes - 1})")
    return array.astype(np.int64)


def softmax(logits: ArrayLike, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``, computed stably. (N, C) → (N, C)"""
    z = as_array(logits, name="logits", ndim=2) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _logsumexp(z: np.ndarray) -> np.ndarray:
    top = z.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))[:, 0]


# ----------------------------------------------------------------------------- scores


def max_softmax(logits: ArrayLike, temperature: float = 1.0) -> np.ndarray:
    """Maximum softmax probability (Hendrycks & Gimpel 2017): the baseline OOD score. (N,)"""
    return softmax(logits, temperature).max(axis=1)


def entropy(logits: ArrayLike, temperature: float = 1.0) -> np.ndarray:
    """Predictive entropy in nats; higher = *less* confident (negate it to use as a score)."""
    p = softmax(logits, temperature)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def energy_score(logits: ArrayLike, temperature: float = 1.0) -> np.ndarray:
    """Negative free energy ``T · logsumexp(logits / T)`` (Liu et al. 2020); higher = more
    in-distribution. Unlike max-softmax it does not saturate for large logits."""
    z = as_array(logits, name="logits", ndim=2)
    return temperature * _logsumexp(z / temperature)


# ----------------------------------------------------------------------------- Mahalanobis


@dataclass
class Mahalanobis:
    """Class-conditional Gaussians with one shared covariance (Lee et al. 2018), fitted on
    clean features.

    The covariance is shrunk toward a scaled identity,
    ``(1 - λ) Σ + λ · (tr Σ / H) · I``, because BERT features have H ≥ N in most audits
    (768 dimensions, a few hundred clean examples): the raw covariance is singular there and
    its inverse amplifies noise directions.
    """

    means: np.ndarray        # (K, H), K = classes (1 without labels)
    precision: np.ndarray    # (H, H)
    shrinkage: float
    classes: np.ndarray      # (K,) label of each mean

    @classmethod
    def fit(cls, features: ArrayLike, labels: ArrayLike | None = None, *,
            shrinkage: float = 0.1) -> Mahalanobis:
        """Fit means (per class when ``labels`` are given) and the pooled covariance."""
        x = as_array(features, name="features (the clean reference set)", ndim=2)
        if x.shape[0] < 2:
            raise InputError(f"features (the clean reference set): {x.shape[0]} example(s); "
                             "at least 2 are needed to estimate a covariance")
        if not 0.0 <= shrinkage <= 1.0:
            raise UsageError(f"shrinkage is {shrinkage}; expected a value in [0, 1]")
        if labels is None:
            y = np.zeros(x.shape[0], dtype=np.int64)
        else:
            y = np.asarray(labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor)
                           else labels).astype(np.int64)
            if y.shape != (x.shape[0],):
                raise InputError(f"labels: {y.shape[0] if y.ndim else 0} labels for "
                                 f"{x.shape[0]} feature rows")
        classes = np.unique(y)
        means = np.stack([x[y == c].mean(axis=0) for c in classes])        # (K, H)
        centred = x - means[np.searchsorted(classes, y)]                      # (N, H)
        dof = max(x.shape[0] - len(classes), 1)
        cov = centred.T @ centred / dof                                       # (H, H)
        dim = cov.shape[0]
        scale = np.trace(cov) / dim
        if scale <= 0:
            scale = 1.0  # every feature constant: fall back to Euclidean distance
        cov = (1.0 - shrinkage) * cov + shrinkage * scale * np.eye(dim)
        precision = np.linalg.pinv(cov, hermitian=True)
        return cls(means, precision, shrinkage, classes)

    def distances(self, features: ArrayLike) -> np.ndarray:
        """Squared Mahalanobis distance to every class mean. (N, H) → (N, K)"""
        x = as_array(features, name="features", ndim=2)
        if x.shape[1] != self.means.shape[1]:
            raise InputError(f"features have {x.shape[1]} dimensions; the fitted statistics "
                             f"have {self.means.shape[1]}")
        diff = x[:, None, :] - self.means[None, :, :]                        # (N, K, H)
        return np.einsum("nkh,hg,nkg->nk", diff, self.precision, diff)

    def distance(self, features: ArrayLike) -> np.ndarray:
        """Squared distance to the nearest class mean; higher = more anomalous. (N,)"""
        return self.distances(features).min(axis=1)

    def score(self, features: ArrayLike) -> np.ndarray:
        """Confidence score: the negative nearest-class distance (higher = in-distribution)."""
        return -self.distance(features)


# ----------------------------------------------------------------------------- detection metrics


def auroc(positive: ArrayLike, negative: ArrayLike) -> float:
    """Area under the ROC curve = P(score of a random positive > a random negative), ties
    counted one half (the Mann–Whitney U statistic over average ranks)."""
    pos = as_array(positive, name="positive scores", ndim=1)
    neg = as_array(negative, name="negative scores", ndim=1)
    both = np.concatenate([pos, neg])
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(len(both), dtype=np.float64)
    sorted_values = both[order]
    # Average rank (1-based) within each run of tied values.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(both)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


@dataclass(frozen=True)
class RocCurve:
    """ROC points for the rule "positive if score ≥ threshold", one per distinct score, plus the
    (0, 0) point of a threshold above every score."""

    thresholds: np.ndarray  # descending; the first is +inf
    fpr: np.ndarray
    tpr: np.ndarray


def roc_curve(positive: ArrayLike, negative: ArrayLike) -> RocCurve:
    """Every operating point of a score threshold (see :class:`RocCurve`)."""
    pos = as_array(positive, name="positive scores", ndim=1)
    neg = as_array(negative, name="negative scores", ndim=1)
    thresholds = np.unique(np.concatenate([pos, neg]))[::-1]
    pos_sorted, neg_sorted = np.sort(pos), np.sort(neg)
    # count of scores >= t = n - (number of scores < t)
    tpr = (len(pos) - np.searchsorted(pos_sorted, thresholds, side="left")) / len(pos)
    fpr = (len(neg) - np.searchsorted(neg_sorted, thresholds, side="left")) / len(neg)
    return RocCurve(np.r_[np.inf, thresholds], np.r_[0.0, fpr], np.r_[0.0, tpr])


def tpr_at_fpr(positive: ArrayLike, negative: ArrayLike, max_fpr: float = 0.01) -> float:
    """The highest true-positive rate of any threshold whose false-positive rate is ≤
    ``max_fpr`` (Carlini et al. 2022's "TPR at low FPR" for membership inference)."""
    curve = roc_curve(positive, negative)
    return float(curve.tpr[curve.fpr <= max_fpr + 1e-12].max())


def fpr_at_tpr(positive: ArrayLike, negative: ArrayLike, min_tpr: float = 0.95) -> float:
    """The lowest false-positive rate of any threshold whose true-positive rate is ≥
    ``min_tpr`` — "FPR at 95 % TPR" with in-distribution as the positive class."""
    curve = roc_curve(positive, negative)
    return float(curve.fpr[curve.tpr >= min_tpr - 1e-12].min())


def ood_metrics(in_scores: ArrayLike, out_scores: ArrayLike) -> dict[str, float]:
    """AUROC and FPR@95 %TPR of a confidence score, in-distribution as positive."""
    inside = as_array(in_scores, name="in-distribution scores", ndim=1)
    outside = as_array(out_scores, name="out-of-distribution scores", ndim=1)
    return {"auroc": auroc(inside, outside),
            "fpr_at_95_tpr": fpr_at_tpr(inside, outside, 0.95),
            "n_in": float(len(inside)), "n_out": float(len(outside))}


def threshold_at_fpr(clean_scores: ArrayLike, fpr: float) -> float:
    """A threshold on an *anomaly* score (higher = more suspicious) that flags at most a
    fraction ``fpr`` of clean inputs, chosen on a clean calibration split.

    It is the ⌈(n + 1)(1 − fpr)⌉-th smallest calibration score (the split-conformal quantile):
    for a fresh clean input exchangeable with the calibration set, P(score > threshold) ≤ fpr.
    Too few calibration examples for the requested rate is an error, not a silent 0 % or 100 %.
    """
    scores = np.sort(as_array(clean_scores, name="clean calibration scores", ndim=1))
    if not 0.0 < fpr < 1.0:
        raise UsageError(f"fpr is {fpr}; expected a rate strictly between 0 and 1")
    n = len(scores)
    k = math.ceil((n + 1) * (1.0 - fpr))
    if k > n:
        needed = math.ceil(1.0 / fpr - 1.0)
        raise InputError(f"{n} clean calibration example(s) cannot support a false-positive "
                         f"rate of {fpr:g}; at least {needed} are needed")
    return float(scores[k - 1])


# ----------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin counts, mean confidence and accuracy of equal-width confidence bins."""

    edges: np.ndarray       # (bins + 1,)
    counts: np.ndarray      # (bins,)
    confidence: np.ndarray  # (bins,) mean max-probability; NaN for empty bins
    accuracy: np.ndarray    # (bins,) NaN for empty bins


def reliability_bins(probabilities: ArrayLike, labels: ArrayLike,
                     bins: int = DEFAULT_BINS) -> ReliabilityBins:
    """Bin predictions by confidence into ``bins`` equal-width bins (i/M, (i+1)/M]; a
    confidence of exactly 0 goes into the first bin."""
    p = as_array(probabilities, name="probabilities", ndim=2)
    y = check_labels(labels, p.shape[1])
    if len(y) != len(p):
        raise InputError(f"{len(y)} labels for {len(p)} predictions")
    if bins < 1:
        raise UsageError(f"bins is {bins}; expected >= 1")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, conf, minlength=bins) / counts
        accuracy = np.bincount(index, correct, minlength=bins) / counts
    return ReliabilityBins(edges, counts, mean_conf, accuracy)


def expected_calibration_error(probabilities: ArrayLike, labels: ArrayLike,
                               bins: int = DEFAULT_BINS) -> float:
    """ECE = Σ_b (|b| / N) · |accuracy(b) − confidence(b)| over equal-width bins (Guo et al.
    2017, 15 bins by default)."""
    r = reliability_bins(probabilities, labels, bins)
    filled = r.counts > 0
    gaps = np.abs(r.accuracy[filled] - r.confidence[filled])
    return float((r.counts[filled] / r.counts.sum() * gaps).sum())


@dataclass
class TemperatureScaler:
    """One temperature T dividing every logit (Guo et al. 2017), fitted on held-out logits by
    minimising the negative log-likelihood. It changes confidence, never the predicted class,
    so accuracy is untouched while the ECE drops for an over-confident model."""

    temperature: float = 1.0

    @classmethod
    def fit(cls, logits: ArrayLike, labels: ArrayLike, *, max_iter: int = 100) -> TemperatureScaler:
        """Fit T > 0 (optimised as log T) with L-BFGS on held-out ``logits`` (N, C)."""
        z = as_array(logits, name="held-out logits", ndim=2)
        y = check_labels(labels, z.shape[1], name="held-out labels")
        if len(y) != len(z):
            raise InputError(f"{len(y)} held-out labels for {len(z)} rows of logits")
        logits_t = torch.from_numpy(z)
        labels_t = torch.from_numpy(y)
        log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter,
                                      line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(logits_t / log_t.exp(), labels_t)
            loss.backward()
            return loss

        optimizer.step(closure)
        return cls(float(log_t.detach().exp()))

    def probabilities(self, logits: ArrayLike) -> np.ndarray:
        """Calibrated probabilities softmax(logits / T). (N, C)"""
        return softmax(logits, self.temperature)


def calibration_report(fit_logits: ArrayLike, fit_labels: ArrayLike, eval_logits: ArrayLike,
                       eval_labels: ArrayLike, *, bins: int = DEFAULT_BINS) -> dict[str, float]:
    """Fit a temperature on one split and report ECE before/after on *another* split."""
    scaler = TemperatureScaler.fit(fit_logits, fit_labels)
    eval_z = as_array(eval_logits, name="evaluation logits", ndim=2)
    y = check_labels(eval_labels, eval_z.shape[1], name="evaluation labels")
    before = softmax(eval_z)
    return {"temperature": scaler.temperature,
            "ece_before": expected_calibration_error(before, y, bins),
            "ece_after": expected_calibration_error(scaler.probabilities(eval_z), y, bins),
            "accuracy": float((before.argmax(axis=1) == y).mean()),
            "bins": float(bins)}


def reliability_diagram(probabilities: ArrayLike, labels: ArrayLike, path: str | Path, *,
                        bins: int = DEFAULT_BINS, title: str | None = None,
                        compare: ArrayLike | None = None,
                        labels_for: Sequence[str] = ("before", "after")) -> Path:
    """Write a reliability diagram (accuracy vs confidence per bin, with the diagonal) as PNG.

    ``compare`` (calibrated probabilities of the same examples) adds a second series.
    matplotlib is an optional extra (``bertkit[viz]``), imported only here.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("the reliability diagram needs matplotlib; install it with "
                         "`pip install 'bertkit[viz]'`") from None
    from bertkit._fileio import atomic_path

    series = [(labels_for[0], reliability_bins(probabilities, labels, bins))]
    if compare is not None:
        series.append((labels_for[1], reliability_bins(compare, labels, bins)))
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    width = 1.0 / bins
    for i, (name, r) in enumerate(series):
        filled = r.counts > 0
        centres = (r.edges[:-1] + r.edges[1:]) / 2
        offset = (i - (len(series) - 1) / 2) * width / len(series)
        ece = float((r.counts[filled] / r.counts.sum()
                     * np.abs(r.accuracy[filled] - r.confidence[filled])).sum())
        axis.bar(centres[filled] + offset, r.accuracy[filled], width=width / len(series),
                 alpha=0.7, label=f"{name} (ECE {ece:.3f})")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("confidence")
    axis.set_ylabel("accuracy")
    axis.set_title(title or "reliability diagram")
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return path


# ----------------------------------------------------------------------------- model side


@torch.no_grad()
def classifier_logits(model: torch.nn.Module, tokenizer: Any, texts: Sequence[str], *,
                      batch_size: int = 32, max_length: int | None = None) -> np.ndarray:
    """Logits of a sequence classifier for ``texts`` (N, C), batch by batch.

    A model without a classification head (a bare encoder, a masked LM) is a usage error here:
    its "logits" would be hidden states or vocabulary scores and every confidence metric
    computed from them would be meaningless.
    """
    if getattr(model, "classifier", None) is None:
        raise UsageError(f"{type(model).__name__} has no classification head; a classifier "
                         "audit needs a fine-tuned BertForSequenceClassification")
    if isinstance(texts, str) or not texts:
        raise InputError("expected a non-empty list of texts")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    rows = []
    try:
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), padding=True,
                              truncation=max_length is not None, max_length=max_length,
                              return_tensors="pt")
            out = model(input_ids=batch["input_ids"].to(device),
                        attention_mask=batch["attention_mask"].to(device))
            rows.append(out.logits.float().cpu().double().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(rows)
