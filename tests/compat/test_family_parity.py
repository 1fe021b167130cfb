"""RoBERTa, DistilBERT, ALBERT and ELECTRA equal the `transformers` reference, every head, in
both directions — through the one bertkit encoder configured per family.

Configurations are written in each family's own ``config.json`` keys (DistilBERT's ``dim``,
ALBERT's groups), so reading them exercises bertkit's key tables; the harness is the BERT
parity test's (``compat_harness``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers
from compat_harness import TOLERANCE, compare, make_inputs, make_labels

import bertkit.model.pretrained as bk
from bertkit.model import BertConfig

SMALL = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=37, max_position_embeddings=64)

CONFIGS = {
    "roberta": {
        "tiny": dict(SMALL, type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5),
        "wide-pad": dict(vocab_size=120, hidden_size=48, num_hidden_layers=3,
                         num_attention_heads=6, intermediate_size=64, hidden_act="gelu_new",
                         max_position_embeddings=40, type_vocab_size=2, pad_token_id=5),
    },
    "distilbert": {
        "tiny": dict(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37,
                     max_position_embeddings=64),
        "sinusoidal-relu": dict(vocab_size=80, dim=24, n_layers=3, n_heads=3, hidden_dim=40,
                                activation="relu", sinusoidal_pos_embds=True,
                                max_position_embeddings=32, pad_token_id=2),
    },
    "albert": {
        "tiny": dict(SMALL, embedding_size=16, num_hidden_layers=3, hidden_act="gelu_new"),
        "groups": dict(SMALL, embedding_size=24, hidden_size=48, num_attention_heads=6,
                       num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2,
                       type_vocab_size=3, pad_token_id=4),
    },
    "electra": {
        "tiny": dict(SMALL, embedding_size=16),
        "no-projection": dict(SMALL, embedding_size=32, hidden_act="relu", type_vocab_size=3),
    },
}

HF_CONFIGS = {"roberta": transformers.RobertaConfig, "distilbert": transformers.DistilBertConfig,
              "albert": transformers.AlbertConfig, "electra": transformers.ElectraConfig}

HEADS = {
    "roberta": ["Model", "ForMaskedLM", "ForSequenceClassification", "ForTokenClassification",
                "ForQuestionAnswering", "ForMultipleChoice"],
    "distilbert": ["Model", "ForMaskedLM", "ForSequenceClassification",
                   "ForTokenClassification", "ForQuestionAnswering", "ForMultipleChoice"],
    "albert": ["Model", "ForPreTraining", "ForMaskedLM", "ForSequenceClassification",
               "ForTokenClassification", "ForQuestionAnswering", "ForMultipleChoice"],
    "electra": ["Model", "ForPreTraining", "ForMaskedLM", "ForSequenceClassification",
                "ForTokenClassification", "ForQuestionAnswering", "ForMultipleChoice"],
}
PREFIX = {"roberta": "Roberta", "distilbert": "DistilBert", "albert": "Albert",
          "electra": "Electra"}

# The first configuration of each family runs always; the second (the family's rarer
# switches) is marked slow to keep the default run short.
CASES = [pytest.param(family, config_name, PREFIX[family] + head,
                      id=f"{PREFIX[family]}{head}-{config_name}",
                      marks=[pytest.mark.slow] if index else [])
         for family, configs in CONFIGS.items() for index, config_name in enumerate(configs)
         for head in HEADS[family]]


def inputs_for(family: str, config: dict, class_name: str, seed: int):
    inputs = make_inputs(config, class_name, seed, segments=family != "distilbert")
    return inputs, make_labels(config, class_name, inputs, seed)


@pytest.mark.parametrize(("family", "config_name", "class_name"), CASES)
def test_reference_checkpoint_loads_into_bertkit(tmp_path: Path, family: str, config_name: str,
                                                 class_name: str):
    config = CONFIGS[family][config_name]
    torch.manual_seed(7)
    reference = getattr(transformers, class_name)(
        HF_CONFIGS[family](**config, attn_implementation="eager")).eval()
    reference.save_pretrained(tmp_path)
    ours, report = getattr(bk, class_name).from_pretrained(tmp_path, output_loading_info=True)
    assert not ours.training
    assert report.new == [] and report.unused == [], "every tensor maps to exactly one weight"

    inputs, labels = inputs_for(family, config, class_name, seed=11)
    with torch.no_grad():
        expected = reference(**inputs, **labels, output_hidden_states=True,
                             output_attentions=True)
        actual = ours(**inputs, **labels, output_hidden_states=True, output_attentions=True)
    assert compare(expected, actual, with_internals=True) <= TOLERANCE


@pytest.mark.parametrize(("family", "config_name", "class_name"), CASES)
def test_bertkit_checkpoint_loads_into_reference(tmp_path: Path, family: str, config_name: str,
                                                 class_name: str):
    config = CONFIGS[family][config_name]
    torch.manual_seed(3)
    ours = getattr(bk, class_name)(BertConfig.from_dict({**config, "model_type": family})).eval()
    # Non-zero biases and LayerNorms, so a weight mapped to the wrong name cannot hide.
    with torch.no_grad():
        for param in ours.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.05)
    ours.save_pretrained(tmp_path)
    reference = getattr(transformers, class_name).from_pretrained(
        tmp_path, attn_implementation="eager").eval()

    inputs, labels = inputs_for(family, config, class_name, seed=5)
    with torch.no_grad():
        expected = reference(**inputs, **labels, output_hidden_states=True,
                             output_attentions=True)
        actual = ours(**inputs, **labels, output_hidden_states=True, output_attentions=True)
    assert compare(expected, actual, with_internals=True) <= TOLERANCE
