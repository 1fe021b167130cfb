"""Sequence classification data: labels → targets, texts → windows, window logits → one answer.

A text longer than the model is never truncated: it becomes several windows
(:func:`~bertkit.data.windows.make_windows`), each window is trained on with the text's label,
and at prediction time the windows' logits are combined back into one row per text by
:func:`aggregate_windows` (mean of logits — a soft vote that keeps every window's evidence — or
element-wise max, which lets one decisive passage win, e.g. a topic mentioned once in a long
document). With pairs the first text is kept whole and the second is windowed.

Targets per label kind (the loss each one implies is the caller's business):
``multiclass`` → class id (int, cross-entropy); ``multilabel`` → multi-hot float vector
(BCE-with-logits); ``regression`` → float (MSE). :data:`PROBLEM_TYPES` gives the matching
Hugging Face ``config.problem_type``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from bertkit.data.readers import LabelKind, LabelMap, TextExample
from bertkit.data.windows import WindowSet, collate_windows, make_windows
from bertkit.errors import DataFormatError, UsageError

if TYPE_CHECKING:
    from bertkit.tokenization import Tokenizer

__all__ = [
    "PROBLEM_TYPES",
    "ClassificationFeatures",
    "aggregate_windows",
    "classification_features",
    "collate_classification",
    "encode_targets",
]

PROBLEM_TYPES: dict[str, str] = {
    "multiclass": "single_label_classification",
    "multilabel": "multi_label_classification",
    "regression": "regression",
}
"""bertkit label kind → Hugging Face ``config.problem_type``."""

Target = int | float | list[float]


def encode_targets(examples: Sequence[TextExample], label_kind: LabelKind,
                   label_map: LabelMap | None = None) -> list[Target]:
    """One training target per example (see the module docstring).

    ``label_map`` (from the TRAINING data) is required for the two classification kinds; a
    label it does not know raises a :class:`DataFormatError` naming the label, file and line.
    """
    if label_kind not in PROBLEM_TYPES:
        raise UsageError(f"label_kind={label_kind!r}; expected one of {list(PROBLEM_TYPES)}")
    if label_kind != "regression" and label_map is None:
        raise UsageError(f"{label_kind} targets need the training data's label_map")
    targets: list[Target] = []
    for example in examples:
        label = example.label
        where = (example.path, example.line)
        if label is None:
            raise DataFormatError("example has no label; expected a labelled file here", *where)
        if label_kind == "regression":
            if not isinstance(label, float):
                raise DataFormatError(f"label {label!r} is not a number; read the file with "
                                      "label_kind='regression'", *where)
            targets.append(label)
        elif label_kind == "multiclass":
            if not isinstance(label, str):
                raise DataFormatError(f"label {label!r} is not a single class; read the file "
                                      "with label_kind='multiclass'", *where)
            targets.append(label_map.id_of(label, *where))  # type: ignore[union-attr]
        else:
            if not isinstance(label, tuple):
                raise DataFormatError(f"label {label!r} is not a label set; read the file with "
                                      "label_kind='multilabel'", *where)
            row = [0.0] * len(label_map)  # type: ignore[arg-type]
            for name in label:
                row[label_map.id_of(name, *where)] = 1.0  # type: ignore[union-attr]
            targets.append(row)
    return targets


@dataclass
class ClassificationFeatures:
    """Windows of every example and, when labelled, each window's target (its example's)."""

    windows: WindowSet
    targets: list[Target] | None  # one per window

    def __len__(self) -> int:
        return len(self.windows)


def classification_features(
    tokenizer: Tokenizer,
    examples: Sequence[TextExample],
    *,
    label_kind: LabelKind | None = None,
    label_map: LabelMap | None = None,
    max_length: int | None = None,
    doc_stride: int | None = None,
) -> ClassificationFeatures:
    """Tokenize and window ``examples``; with ``label_kind`` also attach targets.

    Either every example has a ``text_pair`` or none does. ``max_length``/``doc_stride`` as in
    :func:`~bertkit.data.windows.make_windows`.
    """
    with_pair = [e.text_pair is not None for e in examples]
    if any(with_pair) and not all(with_pair):
        first = with_pair.index(not with_pair[0])
        raise DataFormatError("some examples have a text pair and some do not; expected all or "
                              "none", examples[first].path, examples[first].line)
    names = [f"{e.path}:{e.line}" if e.path is not None else f"example {i}"
             for i, e in enumerate(examples)]
    windows = make_windows(
        tokenizer,
        [e.text for e in examples],
        [e.text_pair for e in examples] if examples and with_pair[0] else None,  # type: ignore[misc]
        max_length=max_length,
        doc_stride=doc_stride,
        example_names=names,
    )
    targets = None
    if label_kind is not None:
        per_example = encode_targets(examples, label_kind, label_map)
        targets = [per_example[w.example] for w in windows.windows]
    return ClassificationFeatures(windows, targets)


def collate_classification(features: ClassificationFeatures, indices: Sequence[int], *,
                           pad_id: int, label_kind: LabelKind | None = None,
                           pad_to_multiple_of: int | None = None) -> dict[str, torch.Tensor]:
    """A padded batch of windows ``indices``: model inputs plus ``labels`` when targets exist
    (``(B,)`` long for multiclass, ``(B, L)`` float for multilabel, ``(B,)`` float for
    regression)."""
    batch = collate_windows([features.windows.windows[i] for i in indices], pad_id=pad_id,
                            pad_to_multiple_of=pad_to_multiple_of)
    if features.targets is not None:
        if label_kind is None:
            raise UsageError("collating labelled features needs label_kind")
        rows = [features.targets[i] for i in indices]
        dtype = torch.long if label_kind == "multiclass" else torch.float32
        batch["labels"] = torch.tensor(rows, dtype=dtype)
    return batch


def aggregate_windows(window_logits: Any, window_example: Sequence[int] | np.ndarray,
                      num_examples: int | None = None,
                      how: Literal["mean", "max"] = "mean") -> np.ndarray:
    """Combine per-window logits into one row per example.

    Args:
        window_logits: ``(W, C)`` (or ``(W,)`` for regression) logits, a tensor or array.
        window_example: ``(W,)`` example index of each window (``WindowSet.window_example``).
        num_examples: number of examples (default: ``max(window_example) + 1``); every example
            must own at least one window.
        how: ``"mean"`` (average of logits) or ``"max"`` (element-wise maximum per class).

    Returns:
        ``(E, C)`` (or ``(E,)``) float64 array, rows in example order.
    """
    if how not in ("mean", "max"):
        raise UsageError(f"how={how!r}; expected 'mean' or 'max'")
    if isinstance(window_logits, torch.Tensor):
        window_logits = window_logits.detach().to("cpu", torch.float64).numpy()
    logits = np.asarray(window_logits, dtype=np.float64)
    owner = np.asarray(window_example, dtype=np.int64).reshape(-1)
    if logits.ndim not in (1, 2) or logits.shape[0] != owner.shape[0]:
        raise UsageError(f"window_logits has shape {logits.shape}; expected ({owner.shape[0]},"
                         " C) or (W,) to match window_example")
    if owner.size and owner.min() < 0:
        raise UsageError("window_example holds negative example indices")
    n = int(owner.max()) + 1 if num_examples is None and owner.size else (num_examples or 0)
    counts = np.bincount(owner, minlength=n)
    if counts.shape[0] > n:
        raise UsageError(f"window_example refers to example {counts.shape[0] - 1} but "
                         f"num_examples={n}")
    if (counts == 0).any():
        raise UsageError(f"example {int(np.flatnonzero(counts == 0)[0])} has no window")
    shape = (n, *logits.shape[1:])
    if how == "mean":
        total = np.zeros(shape)
        np.add.at(total, owner, logits)
        return total / counts.reshape(-1, *([1] * (logits.ndim - 1)))
    out = np.full(shape, -np.inf)
    np.maximum.at(out, owner, logits)
    return out
