"""bertkit equals the `transformers` reference, class by class, in both directions.

For random small configurations: build the reference model, save it, load it into bertkit and
compare every hidden state, every attention map, the pooled output, the logits and the loss;
then save bertkit's model, load it into the reference and compare again. The harness
(``compat_harness``) is shared with the other families' parity tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers
from compat_harness import TOLERANCE, compare, make_inputs, make_labels

import bertkit.model.pretrained as bk

CONFIGS = {
    "tiny": dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=37, type_vocab_size=3, max_position_embeddings=64),
    "tanh-gelu": dict(vocab_size=120, hidden_size=48, num_hidden_layers=3, num_attention_heads=6,
                      intermediate_size=64, hidden_act="gelu_new", max_position_embeddings=32,
                      layer_norm_eps=1e-7, pad_token_id=3),
    "one-head-relu": dict(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                          num_attention_heads=1, intermediate_size=24, hidden_act="relu",
                          type_vocab_size=1),
}

CLASSES = ["BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForNextSentencePrediction",
           "BertForSequenceClassification", "BertForTokenClassification",
           "BertForQuestionAnswering", "BertForMultipleChoice"]


@pytest.mark.parametrize("config_name", CONFIGS)
@pytest.mark.parametrize("class_name", CLASSES)
def test_reference_checkpoint_loads_into_bertkit(tmp_path: Path, config_name: str,
                                                 class_name: str):
    config = CONFIGS[config_name]
    torch.manual_seed(7)
    reference = getattr(transformers, class_name)(
        transformers.BertConfig(**config, attn_implementation="eager")).eval()
    reference.save_pretrained(tmp_path)
    ours = getattr(bk, class_name).from_pretrained(tmp_path)
    assert not ours.training

    inputs = make_inputs(config, class_name, seed=11)
    labels = make_labels(config, class_name, inputs, seed=11)
    with torch.no_grad():
        expected = reference(**inputs, **labels, output_hidden_states=True,
                             output_attentions=True)
        actual = ours(**inputs, **labels, output_hidden_states=True, output_attentions=True)
    assert compare(expected, actual, with_internals=True) <= TOLERANCE


@pytest.mark.parametrize("config_name", CONFIGS)
@pytest.mark.parametrize("class_name", CLASSES)
def test_bertkit_checkpoint_loads_into_reference(tmp_path: Path, config_name: str,
                                                 class_name: str):
    config = CONFIGS[config_name]
    torch.manual_seed(3)
    ours = getattr(bk, class_name)(bk.BertConfig(**config)).eval()
    ours.save_pretrained(tmp_path)
    reference = getattr(transformers, class_name).from_pretrained(
        tmp_path, attn_implementation="eager").eval()

    inputs = make_inputs(config, class_name, seed=5)
    labels = make_labels(config, class_name, inputs, seed=5)
    with torch.no_grad():
        expected = reference(**inputs, **labels, output_hidden_states=True)
        actual = ours(**inputs, **labels, output_hidden_states=True)
    assert compare(expected, actual, with_internals=False) <= TOLERANCE


@pytest.mark.parametrize("problem_type", ["regression", "multi_label_classification"])
def test_sequence_classification_losses_match(tmp_path: Path, problem_type: str):
    config = dict(CONFIGS["tiny"], num_labels=1 if problem_type == "regression" else 4,
                  problem_type=problem_type)
    torch.manual_seed(0)
    reference = transformers.BertForSequenceClassification(
        transformers.BertConfig(**config)).eval()
    reference.save_pretrained(tmp_path)
    ours = bk.BertForSequenceClassification.from_pretrained(tmp_path)
    inputs = make_inputs(config, "BertForSequenceClassification", seed=2)
    labels = (torch.randn(3) if problem_type == "regression"
              else torch.randint(0, 2, (3, 4)).float())
    with torch.no_grad():
        expected = reference(**inputs, labels=labels).loss
        actual = ours(**inputs, labels=labels).loss
    assert abs(expected.item() - actual.item()) <= TOLERANCE


def test_label_maps_round_trip_through_reference(tmp_path: Path):
    id2label = {0: "negative", 1: "neutral", 2: "positive"}
    ours = bk.BertForSequenceClassification(bk.BertConfig(**CONFIGS["tiny"], id2label=id2label))
    ours.save_pretrained(tmp_path)
    reference = transformers.BertForSequenceClassification.from_pretrained(tmp_path)
    assert reference.config.id2label == id2label
    assert reference.config.label2id == {v: k for k, v in id2label.items()}
    assert reference.config.architectures == ["BertForSequenceClassification"]
