"""Control tasks and the baselines a probe's accuracy is read against.

A probe's accuracy alone does not say whether the representation *encodes* the property or
the probe *learned* it by memorising word identities. Hewitt & Liang (2019) answer with a
control task: give every word type a fixed random label, drawn from the real task's label
distribution, and train the same probe on it. A probe that scores high on the control can
memorise; **selectivity** = task accuracy - control accuracy is what the representation adds.

Here the control label of a type is a function of ``(seed, type)`` alone (a hash, not a draw
from a shared generator), so it is the same in the training and held-out splits, in every run
and whatever subset is taken. Word types are lowercased word forms. For sentence-level tasks,
which have no word type, the control keys each sentence by its first word's type: a probe can
pass it only by memorising which sentence openings carry which random label.

Baselines: the **majority** label of the training split, and **most frequent label per word
type** (the training split's commonest label of each type; types never seen in training get
the majority label) — the classic tagging baseline a contextual probe must beat.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np


def stable_fraction(seed: int, key: str) -> float:
    """A number in [0, 1) fixed by ``(seed, key)``."""
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def control_labels(types: Sequence[str], distribution: np.ndarray, *, seed: int = 0
                   ) -> np.ndarray:
    """One label per item: its type's fixed random label, drawn from ``distribution``
    (``distribution[c]`` is the share of class ``c``; it is normalised here)."""
    weights = np.asarray(distribution, dtype=np.float64)
    cumulative = np.cumsum(weights / weights.sum())
    cumulative[-1] = 1.0
    by_type: dict[str, int] = {}
    out = np.empty(len(types), dtype=np.int64)
    for index, word_type in enumerate(types):
        label = by_type.get(word_type)
        if label is None:
            label = by_type[word_type] = int(np.searchsorted(
                cumulative, stable_fraction(seed, word_type), side="right"))
        out[index] = label
    return out


def label_distribution(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Share of each class among ``labels``."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    return counts / max(counts.sum(), 1)


def majority_accuracy(train_labels: np.ndarray, test_labels: np.ndarray) -> float:
    """Accuracy of always answering the training split's commonest label."""
    majority = np.bincount(train_labels).argmax()
    return float((np.asarray(test_labels) == majority).mean())


def per_type_accuracy(train_types: Sequence[str], train_labels: np.ndarray,
                      test_types: Sequence[str], test_labels: np.ndarray) -> float:
    """Accuracy of answering each type's commonest training label (majority for new types)."""
    seen: defaultdict[str, Counter[int]] = defaultdict(Counter)
    for word_type, label in zip(train_types, train_labels, strict=True):
        seen[word_type][int(label)] += 1
    majority = int(np.bincount(train_labels).argmax())
    best = {word_type: counts.most_common(1)[0][0] for word_type, counts in seen.items()}
    guesses = np.array([best.get(word_type, majority) for word_type in test_types])
    return float((guesses == np.asarray(test_labels)).mean())
