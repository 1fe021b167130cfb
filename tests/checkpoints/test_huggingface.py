"""Checkpoint loading across the naming variants real files use, and every way it can fail."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import bertkit.checkpoints.huggingface as hf
from bertkit.errors import CheckpointError, ConfigError, DataFormatError
from bertkit.model import BertConfig
from bertkit.model.init import initialise_fresh
from bertkit.model.pretrained import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
)

CONFIG = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=24, max_position_embeddings=20)


def saved(model_class, directory: Path, seed: int = 0):
    torch.manual_seed(seed)
    model = model_class(CONFIG).eval()
    model.save_pretrained(directory)
    return model


def rewrite(directory: Path, change) -> None:
    """Rewrite a saved checkpoint's tensors as another writer would have named them."""
    state = load_file(directory / "model.safetensors")
    save_file(change(state), directory / "model.safetensors")


def outputs_equal(a, b, ids) -> None:
    torch.testing.assert_close(a(ids).last_hidden_state, b(ids).last_hidden_state)


IDS = torch.tensor([[2, 7, 9, 11, 3], [2, 5, 3, 0, 0]])


def test_tensorflow_port_names_gamma_beta_and_position_ids(tmp_path: Path):
    original = saved(BertForMaskedLM, tmp_path)

    def tf_port(state):
        renamed = {k.replace("LayerNorm.weight", "LayerNorm.gamma")
                    .replace("LayerNorm.bias", "LayerNorm.beta"): v for k, v in state.items()}
        renamed["bert.embeddings.position_ids"] = torch.arange(20)[None]
        embeddings = state["bert.embeddings.word_embeddings.weight"]
        renamed["cls.predictions.decoder.weight"] = embeddings.clone()
        renamed["cls.predictions.decoder.bias"] = state["cls.predictions.bias"].clone()
        return renamed

    rewrite(tmp_path, tf_port)
    loaded, report = BertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert report.new == [] and report.unused == []
    torch.testing.assert_close(loaded(IDS).logits, original(IDS).logits)


def test_encoder_checkpoint_without_prefix_loads_into_task_class(tmp_path: Path, caplog):
    encoder = saved(BertModel, tmp_path)
    assert not any(k.startswith("bert.") for k in load_file(tmp_path / "model.safetensors"))
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        classifier, report = BertForSequenceClassification.from_pretrained(
            tmp_path, num_labels=3, output_loading_info=True)
    assert report.new == ["classifier.linear.weight", "classifier.linear.bias"]
    assert "initialised fresh" in caplog.text and "classifier.linear" in caplog.text
    assert_bert_init(classifier.classifier.linear)
    assert classifier(IDS).logits.shape == (2, 3)
    torch.testing.assert_close(classifier.bert(IDS).pooler_output, encoder(IDS).pooler_output)


def test_pretraining_checkpoint_into_bare_encoder_ignores_heads(tmp_path: Path, caplog):
    pretrained = saved(BertForPreTraining, tmp_path)
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        encoder, report = BertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert report.unused and all(name.startswith("cls.") for name in report.unused)
    assert "not used" in caplog.text and "cls.predictions" in caplog.text
    torch.testing.assert_close(encoder(IDS).pooler_output, pretrained.bert(IDS).pooler_output)


def test_unprefixed_encoder_with_head_tensors_keeps_heads_out_of_the_encoder(tmp_path: Path):
    """Some writers drop ``bert.`` from the encoder but keep ``cls.`` heads beside it: the
    prefix must be added to the encoder names only, or the heads load as fresh weights."""
    original = saved(BertForPreTraining, tmp_path, seed=3)
    rewrite(tmp_path, lambda state: {k.removeprefix("bert."): v for k, v in state.items()})
    names = set(load_file(tmp_path / "model.safetensors"))
    assert not any(k.startswith("bert.") for k in names)
    assert any(k.startswith("cls.predictions.") for k in names)
    assert any(k.startswith("cls.seq_relationship.") for k in names)
    loaded, report = BertForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert report.new == [] and report.unused == []
    want, got = original(IDS), loaded(IDS)
    torch.testing.assert_close(got.prediction_logits, want.prediction_logits)
    torch.testing.assert_close(got.seq_relationship_logits, want.seq_relationship_logits)


def test_tied_decoder_is_the_embedding_matrix(tmp_path: Path):
    model = saved(BertForMaskedLM, tmp_path)
    assert "decoder" not in " ".join(model.state_dict())
    logits = model(IDS).logits
    with torch.no_grad():
        # not a constant shift: LayerNorm removes one from the input embedding, and the
        # decoder's LayerNormed hidden states sum to ~0, so it would hardly move the logit
        model.bert.embeddings.word.weight[7] += torch.linspace(-1.0, 1.0, CONFIG.hidden_size)
    assert not torch.allclose(model(IDS).logits[..., 7], logits[..., 7])
    model.train()
    model(IDS, labels=IDS).loss.backward()
    assert model.bert.embeddings.word.weight.grad[9].abs().sum() > 0


def test_pickled_weights_are_read_safely(tmp_path: Path):
    original = saved(BertModel, tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    os.remove(tmp_path / "model.safetensors")
    torch.save(state, tmp_path / "pytorch_model.bin")
    outputs_equal(BertModel.from_pretrained(tmp_path), original, IDS)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_carrying_code_is_refused(tmp_path: Path):
    saved(BertModel, tmp_path)
    os.remove(tmp_path / "model.safetensors")
    torch.save({"embeddings.word_embeddings.weight": _Payload()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin: refused to load"):
        BertModel.from_pretrained(tmp_path)


def test_missing_config_names_the_path(tmp_path: Path):
    with pytest.raises(DataFormatError, match=rf"{tmp_path}/config.json: file not found"):
        BertModel.from_pretrained(tmp_path)


def test_corrupt_config_names_path_and_line(tmp_path: Path):
    saved(BertModel, tmp_path)
    (tmp_path / "config.json").write_text('{\n  "hidden_size": 16,\n  oops\n}\n')
    with pytest.raises(DataFormatError, match=r"config.json:3: invalid JSON"):
        BertModel.from_pretrained(tmp_path)


def test_invalid_config_value_names_file_and_field(tmp_path: Path):
    saved(BertModel, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["num_attention_heads"] = 3
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"config.json: hidden_size \(16\) must be divisible"):
        BertModel.from_pretrained(tmp_path)


def test_missing_and_corrupt_weights_name_the_path(tmp_path: Path):
    saved(BertModel, tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match=r"model.safetensors: not a readable safetensors"):
        BertModel.from_pretrained(tmp_path)
    os.remove(tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"no weights found \(looked for model.safetensors"):
        BertModel.from_pretrained(tmp_path)


def test_wrong_shape_names_parameter_and_both_shapes(tmp_path: Path):
    saved(BertModel, tmp_path)

    def shrink(state):
        state["encoder.layer.1.intermediate.dense.weight"] = torch.zeros(23, 16)
        return state

    rewrite(tmp_path, shrink)
    with pytest.raises(CheckpointError, match=r"encoder.layer.1.intermediate.dense.weight has "
                                              r"shape \[23, 16\] but the model's "
                                              r"bert.layers.1.feed_forward.up.weight expects "
                                              r"\[24, 16\]"):
        BertModel.from_pretrained(tmp_path)


def test_missing_encoder_weights_are_an_error_not_a_silent_init(tmp_path: Path):
    saved(BertModel, tmp_path)
    rewrite(tmp_path, lambda s: {k: v for k, v in s.items() if "layer.1." not in k})
    with pytest.raises(CheckpointError, match="12 encoder weights are missing"):
        BertModel.from_pretrained(tmp_path)


def test_another_family_is_refused_by_name(tmp_path: Path):
    saved(BertModel, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["model_type"] = "roberta"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"a 'roberta' checkpoint cannot be loaded as "
                                              r"BertModel"):
        BertModel.from_pretrained(tmp_path)


def test_classifier_with_other_label_count(tmp_path: Path):
    saved(BertForSequenceClassification, tmp_path)  # 2 labels
    with pytest.raises(CheckpointError, match=r"classifier.weight has shape \[2, 16\]"):
        BertForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    model, report = BertForSequenceClassification.from_pretrained(
        tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert report.mismatched == ["classifier.linear.weight", "classifier.linear.bias"]
    assert_bert_init(model.classifier.linear)
    assert model(IDS).logits.shape == (2, 5)


def assert_bert_init(linear: torch.nn.Linear) -> None:
    """A weight the checkpoint lacked was drawn as BERT draws it, N(0, 0.02) and a zero bias,
    not left as the uninitialised memory that loading builds the model in."""
    weight = linear.weight.detach()
    assert torch.isfinite(weight).all() and 0.012 < weight.std().item() < 0.03
    assert abs(weight.mean().item()) < 0.01
    assert torch.equal(linear.bias.detach(), torch.zeros_like(linear.bias))


def test_fresh_init_keeps_the_loaded_parameters_of_the_same_layer():
    model = torch.nn.Sequential(torch.nn.Linear(64, 32))
    with torch.no_grad():
        model[0].weight.fill_(3.0)
        model[0].bias.fill_(5.0)
    initialise_fresh(model, ["0.bias"], std=0.02)
    assert torch.equal(model[0].weight.detach(), torch.full((32, 64), 3.0))
    assert torch.equal(model[0].bias.detach(), torch.zeros(32))
    initialise_fresh(model, ["0.weight"], std=0.02)
    assert 0.015 < model[0].weight.std().item() < 0.025


def test_loaded_parameters_are_the_checkpoint_values_and_their_own(tmp_path: Path):
    """Loading takes the tensors it read instead of copying them: every parameter must still
    hold the file's values, and two loads of one file must not share storage."""
    saved(BertForMaskedLM, tmp_path)
    file = load_file(tmp_path / "model.safetensors")
    first, second = (BertForMaskedLM.from_pretrained(tmp_path) for _ in range(2))
    for name, tensor in first.checkpoint_state().items():
        torch.testing.assert_close(tensor, file[name], rtol=0, atol=0)
    with torch.no_grad():
        for parameter in first.parameters():
            parameter.zero_()
    assert all(p.abs().sum() > 0 for n, p in second.named_parameters() if "bias" not in n)


def test_interrupted_save_leaves_previous_checkpoint_intact(tmp_path: Path, monkeypatch):
    first = saved(BertModel, tmp_path, seed=0)
    before = (tmp_path / "model.safetensors").read_bytes()

    def crash_midway(state, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(hf, "save_file", crash_midway)
    torch.manual_seed(1)
    with pytest.raises(CheckpointError, match="No space left on device"):
        BertModel(CONFIG).save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    outputs_equal(BertModel.from_pretrained(tmp_path), first, IDS)


def test_unknown_config_keys_survive_a_round_trip(tmp_path: Path):
    saved(BertModel, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["some_future_field"] = {"kept": True}
    (tmp_path / "config.json").write_text(json.dumps(config))
    BertModel.from_pretrained(tmp_path).save_pretrained(tmp_path / "again")
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["some_future_field"] == {"kept": True}
    assert again["architectures"] == ["BertModel"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.int64])
def test_joined_is_torch_cat(dtype: torch.dtype):
    parts = [torch.randn(rows, 3).to(dtype) for rows in (2, 0, 5)]
    torch.testing.assert_close(hf.joined(parts), torch.cat(parts), rtol=0, atol=0)
    vectors = [torch.randn(4).to(dtype), torch.randn(1).to(dtype)]
    torch.testing.assert_close(hf.joined(vectors), torch.cat(vectors), rtol=0, atol=0)
    strided = [torch.randn(3, 4).to(dtype).t(), torch.randn(2, 3).to(dtype)]
    torch.testing.assert_close(hf.joined(strided), torch.cat(strided), rtol=0, atol=0)
