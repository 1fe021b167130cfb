"""Embedding-shift detection: flag inputs whose internal representations move away from clean
data, and name the tokens that move them.

Why: an encoder sees the whole input at once, so one inserted trigger word or adversarial edit
shifts the representation at every layer, often more than it shifts the output. Fitting simple
Gaussian statistics of pooled per-layer states on clean inputs turns that into a score:

- for a **classifier**, the **layer-disagreement gap** (the default): Gaussians per predicted
  class with one shared covariance per layer and pooling (Lee et al. 2018), fitted on the
  model's own predictions for clean inputs; an input scores the Mahalanobis distance of its
  pooled states to the class the model *predicts* minus the distance to the *nearest* class,
  averaged over layers. Clean inputs sit nearest their predicted class at every layer (gap
  0); an adversarial edit pushes the output across a decision boundary while the earlier
  layers still sit near the original class, so the layers disagree with the prediction (the
  intuition of deep k-NN, Papernot & McDaniel 2018). Measured on all-MiniLM-L6-v2 fine-tuned
  on Reuters R8, real adversarial pairs from the attack module: AUROC 0.85 / 0.88 (seeds 1 / 2,
  38 / 52 pairs) against 0.59 / 0.56 for the class-free distance and 0.62 / 0.60 for
  max-softmax; 0.84 vs 0.57 in ``tests/security/test_real_data.py`` (33 pairs);
- for an **encoder** without a classification head, the **Mahalanobis distance** of the
  pooled states to the clean distribution, averaged over layers;
- **cosine shift** ``1 − cos`` between an original text and its modified version, per layer.

Distances are divided by the feature size so layers of different widths weigh alike. The
flagging threshold is chosen on a *clean calibration split* for a stated false-positive rate
(:func:`~bertkit.security.confidence.threshold_at_fpr`), never on the data it is reported on;
:func:`fit_detector` refuses calibration texts that overlap the fitting texts.

Leave-one-out attribution drops each token in turn and reports how much the score falls: the
tokens whose removal undoes the shift are the ones responsible.

Shape legend: N texts, B batch, T tokens, H hidden, K classes, F feature keys (layer × pooling).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from bertkit.errors import InputError, UsageError
from bertkit.security.confidence import Mahalanobis, auroc, threshold_at_fpr
from bertkit.tokenization import Tokenizer

Features = dict[str, np.ndarray]  # "layer{l}/{pooling}" → (N, H); PREDICTION → (N,)
POOLINGS = ("mean", "cls")
PREDICTION = "prediction"  # a classifier's predicted label per input, beside the pooled states


# ----------------------------------------------------------------------------- features


def _num_layers(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    layers = getattr(config, "num_hidden_layers", None)
    if layers is None:
        raise UsageError(f"{type(model).__name__} has no config.num_hidden_layers; expected a "
                         "bertkit model")
    return int(layers)


def _resolve(layers: Sequence[int] | None, num_layers: int) -> list[int]:
    if layers is None:
        return list(range(1, num_layers + 1))
    out = []
    for layer in layers:
        index = layer + num_layers + 1 if layer < 0 else layer
        if not 0 <= index <= num_layers:
            raise UsageError(f"layer {layer} does not exist: hidden states are numbered 0 "
                             f"(embeddings) to {num_layers}, or -1 for the last")
        out.append(index)
    return out


@torch.no_grad()
def features_from_ids(model: nn.Module, sequences: Sequence[Sequence[int]], *,
                      layers: Sequence[int] | None = None,
                      poolings: Sequence[str] = POOLINGS, pad_token_id: int = 0,
                      batch_size: int = 32) -> Features:
    """Pooled hidden states of pre-tokenised sequences, keyed ``layer{l}/{pooling}``, and,
    when the model has a classification head, its predicted labels under :data:`PREDICTION`.

    ``mean`` averages over the attention mask (padding never enters), ``cls`` takes position 0.
    Sequences are padded per batch only, so a text's features do not depend on its batch.
    """
    if not sequences:
        raise InputError("no inputs given; at least one text is needed")
    unknown = sorted(set(poolings) - set(POOLINGS))
    if unknown or not poolings:
        raise UsageError(f"pooling(s) {unknown or list(poolings)}; expected some of {POOLINGS}")
    chosen = _resolve(layers, _num_layers(model))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    parts: dict[str, list[np.ndarray]] = {f"layer{n}/{p}": [] for n in chosen
                                          for p in poolings}
    predictions: list[np.ndarray] = []
    try:
        for start in range(0, len(sequences), batch_size):
            chunk = sequences[start:start + batch_size]
            width = max(len(s) for s in chunk)
            ids = torch.full((len(chunk), width), pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, seq in enumerate(chunk):
                ids[row, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
                mask[row, : len(seq)] = 1
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                        output_hidden_states=True)
            hidden: tuple[Tensor, ...] = out.hidden_states                 # L+1 × (B, T, H)
            logits = getattr(out, "logits", None)
            if logits is not None and logits.dim() == 2:                      # (B, K)
                predictions.append(logits.argmax(-1).cpu().numpy())
            weights = mask.to(device).unsqueeze(-1).float()                  # (B, T, 1)
            for n in chosen:
                h = hidden[n].float()                                        # (B, T, H)
                if "mean" in poolings:
                    mean = (h * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, H)
                    parts[f"layer{n}/mean"].append(mean.cpu().double().numpy())
                if "cls" in poolings:
                    parts[f"layer{n}/cls"].append(h[:, 0].cpu().double().numpy())
    finally:
        model.train(was_training)
    features = {key: np.concatenate(values) for key, values in parts.items()}
    if predictions:
        features[PREDICTION] = np.concatenate(predictions)
    return features


def pooled(features: Features) -> Features:
    """The pooled-state keys only (without :data:`PREDICTION`)."""
    return {key: value for key, value in features.items() if key != PREDICTION}


def _encode(tokenizer: Tokenizer, texts: Sequence[str], max_length: int | None) -> list[list[int]]:
    if isinstance(texts, str):
        raise UsageError("texts must be a list of strings, not one string")
    if not texts:
        raise InputError("no texts given; at least one text is needed")
    return tokenizer(list(texts), truncation=max_length is not None,
                     max_length=max_length)["input_ids"]


def extract_features(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str], *,
                     layers: Sequence[int] | None = None, poolings: Sequence[str] = POOLINGS,
                     batch_size: int = 32, max_length: int | None = None) -> Features:
    """Pooled per-layer representations of ``texts`` (see :func:`features_from_ids`)."""
    return features_from_ids(model, _encode(tokenizer, texts, max_length), layers=layers,
                             poolings=poolings, pad_token_id=tokenizer.pad_token_id,
                             batch_size=batch_size)


def cosine_shift(original: Features, modified: Features) -> Features:
    """``1 − cos(original, modified)`` per feature key, row by row. F × (N, H) → F × (N,)"""
    original, modified = pooled(original), pooled(modified)
    if set(original) != set(modified):
        raise InputError("original and modified features have different layers/poolings")
    out = {}
    for key, a in original.items():
        b = modified[key]
        if a.shape != b.shape:
            raise InputError(f"{key}: {a.shape[0]} original rows vs {b.shape[0]} modified rows")
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        out[key] = 1.0 - (a * b).sum(axis=1) / np.maximum(norms, 1e-12)
    return out


def mean_over_keys(per_key: Mapping[str, np.ndarray]) -> np.ndarray:
    """Average a per-key score over layers/poolings. F × (N,) → (N,)"""
    return np.mean(np.stack(list(per_key.values())), axis=0)


# ----------------------------------------------------------------------------- detector


def _disagreement_gap(stats: Mahalanobis, x: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Distance to the predicted class's mean minus the distance to the nearest mean: 0 where
    this layer agrees with the prediction. A label no clean input was predicted as has no mean;
    its distance is taken as the largest to any class (the most suspicious reading).
    (N, H), (N,) → (N,)"""
    d = stats.distances(x)                                                   # (N, K)
    slot = np.searchsorted(stats.classes, predicted).clip(max=len(stats.classes) - 1)
    known = stats.classes[slot] == predicted
    to_predicted = np.where(known, d[np.arange(len(d)), slot], d.max(axis=1))
    return to_predicted - d.min(axis=1)


@dataclass
class ShiftDetector:
    """Per-key Gaussian statistics of clean features, and (once calibrated) a threshold on the
    score: the layer-disagreement gap when the statistics are per predicted class
    (``conditional``), else the distance to the clean distribution (see the module notes)."""

    stats: dict[str, Mahalanobis]
    conditional: bool = False
    threshold: float | None = None
    target_fpr: float | None = None
    calibration_size: int = 0

    @classmethod
    def fit(cls, clean: Features, *, shrinkage: float = 0.1,
            conditional: bool | None = None) -> ShiftDetector:
        """Fit one Gaussian per key on clean features (the reference set): per predicted class
        when the features carry a classifier's predictions (``conditional=None`` decides by
        that; ``False`` forces the class-free distance)."""
        states = pooled(clean)
        if not states:
            raise InputError("empty reference set: no clean features to fit statistics on")
        has_predictions = PREDICTION in clean
        if conditional and not has_predictions:
            raise UsageError("a class-conditional detector needs the classifier's predictions: "
                             "extract the clean features with a model that has a "
                             "classification head")
        conditional = has_predictions if conditional is None else conditional
        labels = clean[PREDICTION] if conditional else None
        return cls({key: Mahalanobis.fit(x, labels, shrinkage=shrinkage)
                    for key, x in states.items()}, conditional)

    def key_scores(self, features: Features) -> Features:
        """The score of each key, divided by its feature size. F × (N, H) → F × (N,)"""
        missing = sorted(set(self.stats) - set(features))
        if missing:
            raise InputError(f"features lack the fitted key(s) {missing}")
        if not self.conditional:
            return {key: m.distance(features[key]) / m.means.shape[1]
                    for key, m in self.stats.items()}
        if PREDICTION not in features:
            raise InputError("features lack the classifier's predictions this class-conditional "
                             "detector scores against; extract them with the fitted classifier")
        return {key: _disagreement_gap(m, features[key], features[PREDICTION]) / m.means.shape[1]
                for key, m in self.stats.items()}

    def score(self, features: Features) -> np.ndarray:
        """Anomaly score (higher = further from clean data). (N,)"""
        return mean_over_keys(self.key_scores(features))

    @property
    def score_name(self) -> str:
        return "layer-disagreement gap" if self.conditional else "mahalanobis distance"

    def calibrate(self, clean_calibration: Features, fpr: float = 0.05) -> ShiftDetector:
        """Set the threshold that flags a fraction ``fpr`` of clean inputs, from a clean split
        that was *not* used to fit the statistics."""
        scores = self.score(clean_calibration)
        self.threshold = threshold_at_fpr(scores, fpr)
        self.target_fpr = fpr
        self.calibration_size = len(scores)
        return self

    def flag(self, features: Features) -> np.ndarray:
        """True where an input's score exceeds the calibrated threshold. (N,)"""
        if self.threshold is None:
            raise UsageError("the detector has no threshold yet; call calibrate() on a clean "
                             "calibration split first")
        return self.score(features) > self.threshold

    def evaluate(self, clean: Features, shifted: Features) -> dict[str, float]:
        """AUROC (shifted as positive) and the false/true-positive rates at the calibrated
        threshold, on data that took no part in fitting or calibration."""
        clean_s, shifted_s = self.score(clean), self.score(shifted)
        report = {"auroc": auroc(shifted_s, clean_s), "n_clean": float(len(clean_s)),
                  "n_shifted": float(len(shifted_s))}
        if self.threshold is not None:
            report.update(threshold=self.threshold, target_fpr=float(self.target_fpr or 0),
                          fpr=float((clean_s > self.threshold).mean()),
                          tpr=float((shifted_s > self.threshold).mean()))
        return report


def fit_detector(model: nn.Module, tokenizer: Tokenizer, clean_texts: Sequence[str],
                 calibration_texts: Sequence[str], *, fpr: float = 0.05,
                 layers: Sequence[int] | None = None, poolings: Sequence[str] = POOLINGS,
                 shrinkage: float = 0.1, conditional: bool | None = None,
                 batch_size: int = 32) -> ShiftDetector:
    """Fit statistics on ``clean_texts`` and the threshold on the disjoint clean
    ``calibration_texts`` at false-positive rate ``fpr`` (``conditional``: see
    :meth:`ShiftDetector.fit`)."""
    if not clean_texts:
        raise InputError("empty reference set: clean_texts holds no texts")
    if not calibration_texts:
        raise InputError("empty calibration set: calibration_texts holds no texts")
    overlap = set(clean_texts) & set(calibration_texts)
    if overlap:
        raise UsageError(f"{len(overlap)} calibration text(s) also appear in the fitting set "
                         f"(e.g. {next(iter(overlap))[:60]!r}); the threshold must come from "
                         "held-out clean data")
    options = dict(layers=layers, poolings=poolings, batch_size=batch_size)
    detector = ShiftDetector.fit(extract_features(model, tokenizer, clean_texts, **options),
                                 shrinkage=shrinkage, conditional=conditional)
    return detector.calibrate(extract_features(model, tokenizer, calibration_texts, **options),
                              fpr)


# ----------------------------------------------------------------------------- attribution


@dataclass(frozen=True)
class TokenAttribution:
    """How much the score drops when the token at ``position`` is left out."""

    position: int
    token: str
    delta: float


@dataclass
class Attribution:
    """The score of the whole text and each token's leave-one-out effect, largest first."""

    score: float
    tokens: list[TokenAttribution] = field(default_factory=list)

    def top(self, k: int = 3) -> list[str]:
        return [t.token for t in self.tokens[:k]]


def leave_one_out(model: nn.Module, tokenizer: Tokenizer, text: str,
                  score: Callable[[Features], np.ndarray], *,
                  layers: Sequence[int] | None = None, poolings: Sequence[str] = POOLINGS,
                  batch_size: int = 32) -> Attribution:
    """Drop each non-special token in turn (one batched pass over all variants) and rank the
    tokens by ``score(full) − score(without token)``."""
    encoded = tokenizer(text, return_special_tokens_mask=True)
    ids, special = encoded["input_ids"], encoded["special_tokens_mask"]
    positions = [i for i, s in enumerate(special) if not s]
    if not positions:
        raise InputError(f"{text!r} has no tokens to attribute")
    variants = [ids] + [ids[:i] + ids[i + 1:] for i in positions]
    scores = score(features_from_ids(model, variants, layers=layers, poolings=poolings,
                                     pad_token_id=tokenizer.pad_token_id,
                                     batch_size=batch_size))
    tokens = tokenizer.convert_ids_to_tokens([ids[i] for i in positions])
    items = [TokenAttribution(p, tok, float(scores[0] - s))
             for p, tok, s in zip(positions, tokens, scores[1:], strict=True)]
    items.sort(key=lambda t: t.delta, reverse=True)
    return Attribution(float(scores[0]), items)


def explain_detection(detector: ShiftDetector, model: nn.Module, tokenizer: Tokenizer,
                      text: str, **options: object) -> Attribution:
    """Which tokens push ``text`` away from the clean distribution (detector score)."""
    keys = sorted(detector.stats)
    layers = sorted({int(k.split("/")[0].removeprefix("layer")) for k in keys})
    poolings = sorted({k.split("/")[1] for k in keys})
    return leave_one_out(model, tokenizer, text, detector.score, layers=layers,
                         poolings=poolings, **options)  # type: ignore[arg-type]


def explain_shift(model: nn.Module, tokenizer: Tokenizer, original: str, modified: str, *,
                  layers: Sequence[int] | None = None, poolings: Sequence[str] = POOLINGS,
                  batch_size: int = 32) -> Attribution:
    """Which tokens of ``modified`` account for its cosine shift away from ``original``."""
    reference = extract_features(model, tokenizer, [original], layers=layers, poolings=poolings)

    def shift(features: Features) -> np.ndarray:
        n = len(next(iter(features.values())))
        tiled = {k: np.repeat(v, n, axis=0) for k, v in reference.items()}
        return mean_over_keys(cosine_shift(tiled, features))

    return leave_one_out(model, tokenizer, modified, shift, layers=layers, poolings=poolings,
                         batch_size=batch_size)
