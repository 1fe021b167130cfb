"""Pretraining objectives: losses and metrics computed from a model's outputs and a batch.

``masked_lm`` — BERT's masked-LM loss on masked positions only (sparse prediction) plus
next-sentence / sentence-order prediction; exact metric aggregation for evaluation.
``replaced_token`` — ELECTRA: a small generator's samples, a discriminator's replaced-token
detection, trained jointly with tied embeddings.
``distillation`` — DistilBERT: a student initialised from every other layer of a BERT teacher,
trained on soft-target KL (× T²) + MLM + hidden-state cosine losses.
"""

from bertkit.objectives.distillation import (
    DistillationLoss,
    DistillationObjective,
    init_student,
    student_config,
    summarize_distillation,
    teacher_layers,
)
from bertkit.objectives.masked_lm import (
    PAD_LOGIT,
    PAIR_TASKS,
    SUM_METRICS,
    PreTrainingMetrics,
    PreTrainingModel,
    PreTrainingObjective,
    SparseMaskedLM,
    evaluate,
    masked_lm_logits,
    pretraining_loss,
    pretraining_loss_fn,
    sparse_masked_lm,
    summarize,
    task_metrics,
)
from bertkit.objectives.replaced_token import (
    ElectraObjective,
    corrupt_with_samples,
    electra_loss,
    generator_config,
    rtd_scores,
    sample_replacements,
    tie_embeddings,
)

__all__ = [
    "PAD_LOGIT",
    "PAIR_TASKS",
    "SUM_METRICS",
    "DistillationLoss",
    "DistillationObjective",
    "ElectraObjective",
    "PreTrainingMetrics",
    "PreTrainingModel",
    "PreTrainingObjective",
    "SparseMaskedLM",
    "corrupt_with_samples",
    "electra_loss",
    "evaluate",
    "generator_config",
    "init_student",
    "masked_lm_logits",
    "pretraining_loss",
    "pretraining_loss_fn",
    "rtd_scores",
    "sample_replacements",
    "sparse_masked_lm",
    "student_config",
    "summarize",
    "summarize_distillation",
    "task_metrics",
    "teacher_layers",
    "tie_embeddings",
]
