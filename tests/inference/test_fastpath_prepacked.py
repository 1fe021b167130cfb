"""The fast form (oneDNN-prepacked linear layers, fused post-ops) changes speed, nothing else.

Same outputs as the plain model on dense, padded and split-projection inputs; the tied MLM
decoder stays tied; the state dict and a saved checkpoint are unchanged; gradients are refused
with a clear error; off float32 nothing is replaced.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bertkit.errors import UsageError
from bertkit.inference.fastpath import layers as fast_layers
from bertkit.inference.fastpath import to_fast_form
from bertkit.inference.fastpath.prepacked import (
    PrepackedLinear,
    prepack_linears,
    prepacking_available,
)
from bertkit.model import BertConfig
from bertkit.model.pretrained import BertForMaskedLM, BertForSequenceClassification, BertModel

pytestmark = pytest.mark.skipif(not prepacking_available(),
                                reason="this PyTorch build has no oneDNN prepacked linear")

TOL = {"atol": 2e-5, "rtol": 0.0}


@pytest.fixture
def tiny_config() -> BertConfig:
    """The model tests' tiny encoder: odd sizes so shape mix-ups cannot hide."""
    return BertConfig(vocab_size=101, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                      intermediate_size=37, max_position_embeddings=40, type_vocab_size=2)


def twin(cls: type, config: BertConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The same random model twice: plain, and in its fast form."""
    torch.manual_seed(0)
    plain = cls(config).eval()
    prepared = cls(config)
    prepared.load_state_dict(plain.state_dict())
    return plain, to_fast_form(prepared.eval())


def padded_inputs(config: BertConfig) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1, config.vocab_size, (3, 17), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    mask[2, 4:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_every_untied_linear_is_replaced_and_outputs_match(tiny_config):
    plain, prepared = twin(BertModel, tiny_config)
    packed = [m for m in prepared.modules() if isinstance(m, PrepackedLinear)]
    # 4 per layer (QKV, output, FFN up, FFN down) + the pooler.
    assert len(packed) == 4 * tiny_config.num_hidden_layers + 1
    inputs = padded_inputs(tiny_config)
    with torch.inference_mode():
        want, got = plain(**inputs), prepared(**inputs)
    real = inputs["attention_mask"].bool()
    torch.testing.assert_close(got.last_hidden_state[real], want.last_hidden_state[real], **TOL)
    torch.testing.assert_close(got.pooler_output, want.pooler_output, **TOL)


def test_split_projection_path_matches(tiny_config, monkeypatch):
    """Long inputs project Q, K, V apart through ``weight.split`` (and the FFN in row blocks):
    the dense view of the packed weight serves it."""
    plain, prepared = twin(BertModel, tiny_config)
    monkeypatch.setattr(fast_layers, "BUFFER_BYTES", 1)
    inputs = padded_inputs(tiny_config)
    with torch.inference_mode():
        torch.testing.assert_close(prepared(**inputs).pooler_output,
                                   plain(**inputs).pooler_output, **TOL)


def test_mlm_logits_match_through_the_tied_decoder(tiny_config):
    """The decoder multiplies by the word-embedding matrix itself, which is never prepacked."""
    plain, prepared = twin(BertForMaskedLM, tiny_config)
    assert isinstance(prepared.bert.embeddings.word.weight, torch.nn.Parameter)
    inputs = padded_inputs(tiny_config)
    with torch.inference_mode():
        torch.testing.assert_close(prepared(**inputs).logits, plain(**inputs).logits, **TOL)


def test_state_dict_and_saved_checkpoint_are_unchanged(tiny_config, tmp_path):
    plain, prepared = twin(BertForSequenceClassification, tiny_config)
    want = plain.state_dict()
    got = prepared.state_dict()
    assert set(got) == set(want)
    for name, tensor in want.items():
        assert torch.equal(got[name], tensor), name
    prepared.save_pretrained(tmp_path)
    reloaded = BertForSequenceClassification.from_pretrained(tmp_path)
    inputs = padded_inputs(tiny_config)
    with torch.inference_mode():
        torch.testing.assert_close(reloaded(**inputs).logits, plain(**inputs).logits,
                                   atol=0.0, rtol=0.0)


def test_gradients_are_refused_with_a_clear_error(tiny_config):
    _, prepared = twin(BertModel, tiny_config)
    embeds = torch.randn(1, 5, tiny_config.hidden_size, requires_grad=True)
    with pytest.raises(UsageError, match="prepared for inference"):
        prepared(inputs_embeds=embeds)


def test_other_dtypes_are_left_alone(tiny_config):
    torch.manual_seed(0)
    model = BertModel(tiny_config).to(torch.bfloat16)
    assert prepack_linears(model) == 0
    assert not any(isinstance(m, PrepackedLinear) for m in model.modules())


@pytest.mark.parametrize("hidden_act, fused", [("gelu", True), ("gelu_new", True),
                                               ("relu", True), ("silu", False)])
def test_activation_and_residual_adds_join_the_matrix_multiplies(tiny_config, hidden_act,
                                                                 fused):
    """The FFN activation becomes a oneDNN post-op where oneDNN computes it exactly as
    PyTorch does (others stay a separate pass); the outputs match either way."""
    config = dataclasses.replace(tiny_config, hidden_act=hidden_act)
    plain, prepared = twin(BertModel, config)
    feed_forward = prepared.bert.layers[0].feed_forward
    assert ("then" in repr(feed_forward.up)) is fused
    inputs = padded_inputs(config)
    with torch.inference_mode():
        want, got = plain(**inputs), prepared(**inputs)
    real = inputs["attention_mask"].bool()
    torch.testing.assert_close(got.last_hidden_state[real], want.last_hidden_state[real], **TOL)


def test_dropout_still_applies_if_a_prepared_model_is_put_back_in_training_mode(tiny_config):
    """The fused residual add skips dropout only when dropout is off."""
    config = dataclasses.replace(tiny_config, hidden_dropout_prob=0.5,
                                 attention_probs_dropout_prob=0.0)
    _, prepared = twin(BertModel, config)
    inputs = padded_inputs(config)
    with torch.no_grad():
        evaluated = prepared(**inputs).last_hidden_state
        prepared.train()
        first, second = (prepared(**inputs).last_hidden_state for _ in range(2))
    assert not torch.allclose(first, second)
    assert not torch.allclose(first, evaluated)
