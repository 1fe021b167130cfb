"""bertkit equals the `transformers` reference, class by class, in both directions.

For random small configurations: build the reference model, save it, load it into bertkit and
compare every hidden state, every attention map, the pooled output, the logits and the loss;
then save bertkit's model, load it into the reference and compare again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

import bertkit.pretrained as bk

TOLERANCE = 1e-5

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

OUTPUT_FIELDS = ("last_hidden_state", "pooler_output", "logits", "prediction_logits",
                 "seq_relationship_logits", "start_logits", "end_logits", "loss")


def make_inputs(config: dict, name: str, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    batch, length = 3, 13
    ids = torch.randint(0, config["vocab_size"], (batch, length), generator=gen)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, 9:] = 0
    mask[2, 4:] = 0
    types = torch.randint(0, config.get("type_vocab_size", 2), (batch, length), generator=gen)
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if name == "BertForMultipleChoice":
        return {k: v.unsqueeze(0) for k, v in inputs.items()}          # one question, 3 choices
    return inputs


def make_labels(config: dict, name: str, inputs: dict, seed: int) -> dict[str, torch.Tensor]:
    if name == "BertForMultipleChoice":
        return {"labels": torch.tensor([2])}                            # the third choice
    gen = torch.Generator().manual_seed(seed + 1)
    batch, length = inputs["input_ids"].shape
    mlm = torch.full((batch, length), -100)
    mlm[:, 1:4] = torch.randint(0, config["vocab_size"], (batch, 3), generator=gen)
    pair = torch.randint(0, 2, (batch,), generator=gen)
    return {
        "BertModel": {},
        "BertForPreTraining": {"labels": mlm, "next_sentence_label": pair},
        "BertForMaskedLM": {"labels": mlm},
        "BertForNextSentencePrediction": {"labels": pair},
        "BertForSequenceClassification": {"labels": pair},
        "BertForTokenClassification": {"labels": torch.where(mlm >= 0, mlm % 2, mlm)},
        "BertForQuestionAnswering": {"start_positions": torch.tensor([1, 2, 40]),
                                     "end_positions": torch.tensor([3, 2, 41])},
    }[name]


def compare(reference, ours, *, with_internals: bool) -> float:
    """Largest absolute difference over every output both models produced."""
    worst = 0.0
    for field in OUTPUT_FIELDS:
        expected, actual = getattr(reference, field, None), getattr(ours, field, None)
        if expected is None:
            continue
        assert actual is not None, f"bertkit gave no {field}"
        assert actual.shape == expected.shape, field
        worst = max(worst, (expected - actual).abs().max().item())
    if with_internals:
        for group in ("hidden_states", "attentions"):
            expected, actual = getattr(reference, group), getattr(ours, group)
            assert len(expected) == len(actual), group
            for a, b in zip(expected, actual, strict=True):
                worst = max(worst, (a - b).abs().max().item())
    return worst


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
