"""RoBERTa (Liu et al. 2019): BERT's encoder with byte-level BPE, positions counted from past the
padding index, one segment, no NSP. Checkpoint names are BERT's under ``roberta.``; the heads
are ``lm_head`` (activation fixed to GELU) and a classifier with its own dense layer."""

from __future__ import annotations

from bertkit.variants.bert import (
    CLASSIFIER_HEAD_RULES,
    EMBEDDING_RULES,
    LAYER_RULES,
    POOLER_RULE,
    TASK_RULES,
    mlm_rules,
)
from bertkit.variants.names import NameTable
from bertkit.variants.presets import make_presets, shape

ROBERTA_NAMES = NameTable(
    model_type="roberta",
    encoder_prefix="roberta",
    encoder_rules=(*EMBEDDING_RULES, *LAYER_RULES, POOLER_RULE),
    head_rules=(
        *mlm_rules("lm_head.dense", "lm_head.layer_norm", "lm_head.bias"),
        *CLASSIFIER_HEAD_RULES,
        *TASK_RULES,
    ),
    tied_decoder="lm_head.decoder.weight",
    decoder_bias=("lm_head.decoder.bias", "lm_head.bias"),
)


# 50,265 byte-level BPE tokens; <pad> = 1, so positions 0 and 1 are never used by a token.
PRESETS = make_presets(
    dict(model_type="roberta", vocab_size=50265, max_position_embeddings=514,
         type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5),
    {"roberta_base": (shape(12, 768, 12), "12 layers, hidden 768, 12 heads (125 M parameters)."),
     "roberta_large": (shape(24, 1024, 16),
                       "24 layers, hidden 1024, 16 heads (355 M parameters).")})
roberta_base, roberta_large = PRESETS.values()
