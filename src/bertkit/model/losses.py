"""The standard losses of the BERT task models, as the reference implementation defines them.

Labels equal to ``IGNORE_INDEX`` (-100) contribute nothing: unmasked MLM positions, word-piece
continuations in token classification, padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from bertkit.errors import InputError

IGNORE_INDEX = -100


def token_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over every labelled position; (…, C) logits, (…) labels."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                           ignore_index=IGNORE_INDEX)


def resolve_problem_type(problem_type: str | None, num_labels: int, labels: Tensor) -> str:
    """The loss a sequence classifier uses. An explicit ``problem_type`` wins; otherwise the
    reference rule: one output → regression, integer labels → single-label, else multi-label."""
    if problem_type is not None:
        return problem_type
    if num_labels == 1:
        return "regression"
    if labels.dtype in (torch.long, torch.int, torch.int16, torch.int8, torch.uint8):
        return "single_label_classification"
    return "multi_label_classification"


def sequence_classification_loss(logits: Tensor, labels: Tensor, problem_type: str | None,
                                 num_labels: int) -> Tensor:
    """MSE for regression, cross-entropy for single-label, BCE-with-logits for multi-label."""
    kind = resolve_problem_type(problem_type, num_labels, labels)
    if kind == "regression":
        if num_labels == 1:
            return F.mse_loss(logits.squeeze(-1).float(), labels.squeeze(-1).float())
        return F.mse_loss(logits.float(), labels.float())
    if kind == "single_label_classification":
        labels = labels.reshape(-1)
        if labels.numel() and (int(labels.max()) >= num_labels or int(labels.min()) < IGNORE_INDEX):
            raise InputError(f"label {int(labels.max())} is out of range for {num_labels} labels")
        return F.cross_entropy(logits.reshape(-1, num_labels).float(), labels)
    if tuple(labels.shape) != tuple(logits.shape):
        raise InputError(f"multi-label targets must have shape {tuple(logits.shape)}, "
                         f"got {tuple(labels.shape)}")
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def span_loss(start_logits: Tensor, end_logits: Tensor, start_positions: Tensor,
              end_positions: Tensor) -> Tensor:
    """Mean of start and end cross-entropy; positions outside the sequence are ignored
    (clamped to T and skipped), which is how windows without the answer are trained."""
    length = start_logits.shape[1]
    start = start_positions.reshape(-1).clamp(0, length)
    end = end_positions.reshape(-1).clamp(0, length)
    start_loss = F.cross_entropy(start_logits.float(), start, ignore_index=length)
    end_loss = F.cross_entropy(end_logits.float(), end, ignore_index=length)
    return (start_loss + end_loss) / 2


def replaced_token_loss(logits: Tensor, labels: Tensor, attention_mask: Tensor | None) -> Tensor:
    """ELECTRA's discriminator loss: binary cross-entropy of "replaced" (1) vs "original" (0),
    averaged over real tokens (all tokens without a mask)."""
    if attention_mask is not None:
        real = attention_mask.reshape(labels.shape) == 1
        logits, labels = logits[real], labels[real]
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
