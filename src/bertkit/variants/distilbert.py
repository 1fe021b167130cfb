"""DistilBERT (Sanh et al. 2019): a 6-layer BERT without segment embeddings or pooler, its
classifier on ``[CLS]`` behind a ReLU "pre-classifier". Checkpoints name the layers
``transformer.layer.N`` with ``q_lin``/``k_lin``/``v_lin``/``out_lin`` and ``ffn.lin1/lin2``."""

from __future__ import annotations

from bertkit.variants.bert import EMBEDDING_RULES, LAYER, W, mlm_rules
from bertkit.variants.names import NameTable, rule
from bertkit.variants.presets import make_presets

_OUT = r"transformer.layer.\1."

DISTILBERT_NAMES = NameTable(
    model_type="distilbert",
    encoder_prefix="distilbert",
    encoder_rules=(
        *EMBEDDING_RULES,
        rule(rf"{LAYER}attention\.qkv\.{W}", _OUT + r"attention.q_lin.\2",
             _OUT + r"attention.k_lin.\2", _OUT + r"attention.v_lin.\2"),
        rule(rf"{LAYER}attention\.output\.{W}", _OUT + r"attention.out_lin.\2"),
        rule(rf"{LAYER}attention_norm\.{W}", _OUT + r"sa_layer_norm.\2"),
        rule(rf"{LAYER}feed_forward\.up\.{W}", _OUT + r"ffn.lin1.\2"),
        rule(rf"{LAYER}feed_forward\.down\.{W}", _OUT + r"ffn.lin2.\2"),
        rule(rf"{LAYER}feed_forward_norm\.{W}", _OUT + r"output_layer_norm.\2"),
    ),
    head_rules=(
        *mlm_rules("vocab_transform", "vocab_layer_norm", "vocab_projector.bias"),
        rule(rf"classifier\.dense\.{W}", r"pre_classifier.\1"),
        rule(rf"classifier\.(?:out|linear)\.{W}", r"classifier.\1"),
        rule(rf"qa\.linear\.{W}", r"qa_outputs.\1"),
    ),
    tied_decoder="vocab_projector.weight",
)


PRESETS = make_presets(
    dict(model_type="distilbert", type_vocab_size=0, qa_dropout=0.1, classifier_dropout=0.2),
    {"distilbert_base": (dict(num_hidden_layers=6),
                         "6 layers, hidden 768, 12 heads, BERT's 30,522-word vocabulary "
                         "(66 M parameters).")})
(distilbert_base,) = PRESETS.values()
