"""BERT: presets of the published sizes, and the Hugging Face checkpoint name table."""

from __future__ import annotations

from bertkit.variants.names import NameRule, NameTable, rule
from bertkit.variants.presets import make_presets, shape

W = r"(weight|bias)"
LAYER = r"layers\.(\d+)\."

EMBEDDING_RULES = (
    rule(r"embeddings\.word\.weight", "embeddings.word_embeddings.weight"),
    rule(r"embeddings\.position\.weight", "embeddings.position_embeddings.weight"),
    rule(r"embeddings\.token_type\.weight", "embeddings.token_type_embeddings.weight"),
    rule(rf"embeddings\.norm\.{W}", r"embeddings.LayerNorm.\1"),
)
"""The embedding names every family's checkpoints share."""

LAYER_RULES = (
    rule(rf"{LAYER}attention\.qkv\.{W}",
         r"encoder.layer.\1.attention.self.query.\2",
         r"encoder.layer.\1.attention.self.key.\2",
         r"encoder.layer.\1.attention.self.value.\2"),
    rule(rf"{LAYER}attention\.output\.{W}", r"encoder.layer.\1.attention.output.dense.\2"),
    rule(rf"{LAYER}attention_norm\.{W}", r"encoder.layer.\1.attention.output.LayerNorm.\2"),
    rule(rf"{LAYER}feed_forward\.up\.{W}", r"encoder.layer.\1.intermediate.dense.\2"),
    rule(rf"{LAYER}feed_forward\.down\.{W}", r"encoder.layer.\1.output.dense.\2"),
    rule(rf"{LAYER}feed_forward_norm\.{W}", r"encoder.layer.\1.output.LayerNorm.\2"),
    rule(rf"final_norm\.{W}", r"encoder.final_layer_norm.\1"),
)
"""BERT's layer names, which RoBERTa and ELECTRA checkpoints use too, and the name of a pre-LN
encoder's final LayerNorm (``pre_layer_norm``: bertkit's own, no released checkpoint has it)."""

CROSS_ATTENTION_RULES = (
    rule(rf"{LAYER}cross_attention\.qkv\.{W}",
         r"encoder.layer.\1.crossattention.self.query.\2",
         r"encoder.layer.\1.crossattention.self.key.\2",
         r"encoder.layer.\1.crossattention.self.value.\2"),
    rule(rf"{LAYER}cross_attention\.output\.{W}",
         r"encoder.layer.\1.crossattention.output.dense.\2"),
    rule(rf"{LAYER}cross_attention_norm\.{W}",
         r"encoder.layer.\1.crossattention.output.LayerNorm.\2"),
)
"""A decoder layer's attention to the encoder's output (``add_cross_attention``)."""

POOLER_RULE = rule(rf"pooler\.dense\.{W}", r"pooler.dense.\1")

TASK_RULES = (
    rule(rf"classifier\.linear\.{W}", r"classifier.\1"),
    rule(rf"qa\.linear\.{W}", r"qa_outputs.\1"),
)
"""The one-linear classifier and the answer-span head: every family but DistilBERT names them
alike."""

CLASSIFIER_HEAD_RULES = (
    rule(rf"classifier\.dense\.{W}", r"classifier.dense.\1"),
    rule(rf"classifier\.out\.{W}", r"classifier.out_proj.\1"),
)
"""RoBERTa's classification head (dense, then ``out_proj``), which ELECTRA's checkpoints use."""


def mlm_rules(dense: str, norm: str, bias: str) -> tuple[NameRule, ...]:
    """The MLM head's transform (``dense``, ``norm``: module names) and output ``bias`` under a
    family's checkpoint names; every family has the same three parameters."""
    return (rule(rf"mlm\.dense\.{W}", dense + r".\1"),
            rule(rf"mlm\.norm\.{W}", norm + r".\1"),
            rule(r"mlm\.bias", bias))

BERT_NAMES = NameTable(
    model_type="bert",
    encoder_prefix="bert",
    encoder_rules=(*EMBEDDING_RULES, *LAYER_RULES, *CROSS_ATTENTION_RULES, POOLER_RULE),
    head_rules=(
        *mlm_rules("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm",
                   "cls.predictions.bias"),
        rule(rf"nsp\.linear\.{W}", r"cls.seq_relationship.\1"),
        *TASK_RULES,
    ),
    tied_decoder="cls.predictions.decoder.weight",
    decoder_bias=("cls.predictions.decoder.bias", "cls.predictions.bias"),
)


# The sizes Google released (Turc et al. 2019, "Well-Read Students Learn Better").
PRESETS = make_presets({}, {
    "bert_tiny": (shape(2, 128, 2),
                  "2 layers, hidden 128, 2 heads (4.4 M parameters with the 30,522-word "
                  "vocabulary)."),
    "bert_mini": (shape(4, 256, 4), "4 layers, hidden 256, 4 heads (11.2 M parameters)."),
    "bert_small": (shape(4, 512, 8), "4 layers, hidden 512, 8 heads (28.8 M parameters)."),
    "bert_medium": (shape(8, 512, 8), "8 layers, hidden 512, 8 heads (41.4 M parameters)."),
    "bert_base": (shape(12, 768, 12), "12 layers, hidden 768, 12 heads (110 M parameters)."),
    "bert_large": (shape(24, 1024, 16), "24 layers, hidden 1024, 16 heads (335 M parameters)."),
})
bert_tiny, bert_mini, bert_small, bert_medium, bert_base, bert_large = PRESETS.values()
