"""ALBERT (Lan et al. 2020): factorised embeddings (E → H projection), layers shared across
depth in groups, sentence-order prediction. Checkpoints store each distinct layer once, as
``encoder.albert_layer_groups.G.albert_layers.J``; bertkit's ``layers.i`` (one per depth step)
map onto the group and inner layer that step runs."""

from __future__ import annotations

import re

from bertkit.model.config import BertConfig
from bertkit.variants.bert import EMBEDDING_RULES, LAYER, TASK_RULES, W, mlm_rules
from bertkit.variants.names import NameTable, Template, rule
from bertkit.variants.presets import make_presets, shape


def _layer(suffix: str) -> Template:
    """The stored name of step ``\\1``'s layer: group = depth block, inner = step within it."""
    def name(match: re.Match[str], config: BertConfig) -> str:
        step, inner = int(match[1]), config.inner_group_num
        group = (step // inner) * config.num_hidden_groups // config.num_hidden_layers
        return (f"encoder.albert_layer_groups.{group}.albert_layers.{step % inner}."
                f"{match.expand(suffix)}")
    return name


ALBERT_NAMES = NameTable(
    model_type="albert",
    encoder_prefix="albert",
    encoder_rules=(
        *EMBEDDING_RULES,
        rule(rf"embeddings\.projection\.{W}", r"encoder.embedding_hidden_mapping_in.\1"),
        rule(rf"{LAYER}attention\.qkv\.{W}", _layer(r"attention.query.\2"),
             _layer(r"attention.key.\2"), _layer(r"attention.value.\2")),
        rule(rf"{LAYER}attention\.output\.{W}", _layer(r"attention.dense.\2")),
        rule(rf"{LAYER}attention_norm\.{W}", _layer(r"attention.LayerNorm.\2")),
        rule(rf"{LAYER}feed_forward\.up\.{W}", _layer(r"ffn.\2")),
        rule(rf"{LAYER}feed_forward\.down\.{W}", _layer(r"ffn_output.\2")),
        rule(rf"{LAYER}feed_forward_norm\.{W}", _layer(r"full_layer_layer_norm.\2")),
        rule(rf"pooler\.dense\.{W}", r"pooler.\1"),  # a bare Linear, not BERT's pooler.dense
    ),
    head_rules=(
        *mlm_rules("predictions.dense", "predictions.LayerNorm", "predictions.bias"),
        rule(rf"nsp\.linear\.{W}", r"sop_classifier.classifier.\1"),
        *TASK_RULES,
    ),
    tied_decoder="predictions.decoder.weight",
    decoder_bias=("predictions.decoder.bias", "predictions.bias"),
)


# The released v2 settings: 30,000 SentencePiece tokens, E = 128, one shared layer group,
# tanh-approximated GELU, no dropout.
PRESETS = make_presets(
    dict(model_type="albert", vocab_size=30000, embedding_size=128, hidden_act="gelu_new",
         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.1),
    {"albert_base": (shape(12, 768, 12),
                     "12 layers sharing one, hidden 768, 12 heads (12 M parameters)."),
     "albert_large": (shape(24, 1024, 16),
                      "24 layers sharing one, hidden 1024, 16 heads (18 M parameters)."),
     "albert_xlarge": (shape(24, 2048, 16),
                       "24 layers sharing one, hidden 2048, 16 heads (60 M parameters)."),
     "albert_xxlarge": (shape(12, 4096, 64),
                        "12 layers sharing one, hidden 4096, 64 heads (235 M parameters).")})
albert_base, albert_large, albert_xlarge, albert_xxlarge = PRESETS.values()
