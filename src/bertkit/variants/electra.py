"""ELECTRA (Clark et al. 2020): a generator (a small masked LM) and a discriminator (replaced-
token detection) on BERT's encoder with E-wide embeddings projected to H when E ≠ H, and no
pooler. Checkpoints use BERT's layer names under ``electra.``; the heads are
``generator_predictions`` + ``generator_lm_head`` and ``discriminator_predictions``."""

from __future__ import annotations

from bertkit.variants.bert import (
    CLASSIFIER_HEAD_RULES,
    EMBEDDING_RULES,
    LAYER_RULES,
    TASK_RULES,
    W,
    mlm_rules,
)
from bertkit.variants.names import NameTable, rule
from bertkit.variants.presets import make_presets, shape

ELECTRA_NAMES = NameTable(
    model_type="electra",
    encoder_prefix="electra",
    encoder_rules=(*EMBEDDING_RULES, *LAYER_RULES,
                   rule(rf"embeddings\.projection\.{W}", r"embeddings_project.\1")),
    head_rules=(
        *mlm_rules("generator_predictions.dense", "generator_predictions.LayerNorm",
                   "generator_lm_head.bias"),
        rule(rf"discriminator\.dense\.{W}", r"discriminator_predictions.dense.\1"),
        rule(rf"discriminator\.linear\.{W}", r"discriminator_predictions.dense_prediction.\1"),
        *CLASSIFIER_HEAD_RULES,
        *TASK_RULES,
    ),
    tied_decoder="generator_lm_head.weight",
    # Multiple choice summarises [CLS] with a "sequence summary" layer, then scores it.
    class_rules={"ElectraForMultipleChoice": (
        rule(rf"classifier\.dense\.{W}", r"sequence_summary.summary.\1"),
        rule(rf"classifier\.out\.{W}", r"classifier.\1"),
    )},
)


PRESETS = make_presets(dict(model_type="electra"), {
    "electra_small_discriminator": (
        shape(12, 256, 4, embedding_size=128),
        "12 layers, hidden 256, 4 heads, embeddings 128 (14 M parameters)."),
    "electra_small_generator": (
        shape(12, 256, 4, embedding_size=128),
        "The released small generator: the discriminator's shape (14 M parameters with its MLM "
        "head; the two share the embeddings in joint training)."),
    "electra_base_discriminator": (
        shape(12, 768, 12, embedding_size=768),
        "12 layers, hidden 768, 12 heads, embeddings 768 (110 M parameters)."),
    "electra_base_generator": (
        shape(12, 256, 4, embedding_size=768),
        "A third of the discriminator's width: hidden 256, 4 heads, embeddings 768 (34 M)."),
    "electra_large_discriminator": (
        shape(24, 1024, 16, embedding_size=1024),
        "24 layers, hidden 1024, 16 heads, embeddings 1024 (335 M parameters)."),
})
(electra_small_discriminator, electra_small_generator, electra_base_discriminator,
 electra_base_generator, electra_large_discriminator) = PRESETS.values()
