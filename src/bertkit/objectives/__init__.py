"""Pretraining objectives: losses and metrics computed from a model's outputs and a batch.

``masked_lm`` — BERT's masked-LM loss on masked positions only (sparse prediction) plus
next-sentence / sentence-order prediction; exact metric aggregation for evaluation.
"""

from bertkit.objectives.masked_lm import (
    PAD_LOGIT,
    SUM_METRICS,
    PreTrainingMetrics,
    PreTrainingModel,
    PreTrainingObjective,
    evaluate,
    masked_lm_logits,
    pretraining_loss,
    pretraining_loss_fn,
    summarize,
)

__all__ = [
    "PAD_LOGIT",
    "SUM_METRICS",
    "PreTrainingMetrics",
    "PreTrainingModel",
    "PreTrainingObjective",
    "evaluate",
    "masked_lm_logits",
    "pretraining_loss",
    "pretraining_loss_fn",
    "summarize",
]
