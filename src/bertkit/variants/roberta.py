"""RoBERTa (Liu et al. 2019): BERT's encoder with byte-level BPE, positions counted from past the
padding index, one segment, no NSP. Checkpoint names are BERT's under ``roberta.``; the heads
are ``lm_head`` (activation fixed to GELU) and a classifier with its own dense layer."""

from __future__ import annotations

from bertkit.variants.bert import EMBEDDING_RULES, LAYER_RULES, POOLER_RULE, W
from bertkit.variants.names import NameTable, rule
from bertkit.variants.presets import make_presets, shape

ROBERTA_NAMES = NameTable(
    model_type="roberta",
    encoder_prefix="roberta",
    encoder_rules=(*EMBEDDING_RULES, *LAYER_RULES, POOLER_RULE),
    head_rules=(
        rule(rf"mlm\.dense\.{W}", r"lm_head.dense.\1"),
        rule(rf"mlm\.norm\.{W}", r"lm_head.layer_norm.\1"),
        rule(r"mlm\.bias", "lm_head.bias"),
        rule(rf"classifier\.dense\.{W}", r"classifier.dense.\1"),
        rule(rf"classifier\.out\.{W}", r"classifier.out_proj.\1"),
        rule(rf"classifier\.linear\.{W}", r"classifier.\1"),
        rule(rf"qa\.linear\.{W}", r"qa_outputs.\1"),
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
