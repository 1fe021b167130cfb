"""Pre-LN encoders (``pre_layer_norm``): the config switch survives a save, the network computes
the pre-LN block written out by hand, and the families without a pre-LN layout refuse it (the
fast form: tests/inference/test_fast_form.py; ``transformers``: tests/compat)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from bertkit.errors import ConfigError
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import BertForMaskedLM, RobertaForMaskedLM
from tiny import tiny_config


def pre_ln_config(**overrides: object) -> BertConfig:
    return tiny_config(53, num_attention_heads=2, pre_layer_norm=True, **overrides)


def reference_encoder(state: dict[str, torch.Tensor], config: BertConfig,
                      ids: torch.Tensor) -> torch.Tensor:
    """The pre-LN encoder from the state dict, one operation at a time (no padding):
    embeddings → LN; per layer x += Attn(LN(x)), x += FFN(LN(x)); a final LN."""
    def norm(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], state[f"{name}.weight"], state[f"{name}.bias"],
                            config.layer_norm_eps)

    def linear(x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ state[f"{name}.weight"].T + state[f"{name}.bias"]

    T, H, N = ids.shape[1], config.hidden_size, config.num_attention_heads
    x = (state["embeddings.word.weight"][ids] + state["embeddings.position.weight"][:T]
         + state["embeddings.token_type.weight"][0])
    x = norm(x, "embeddings.norm")
    for i in range(config.num_hidden_layers):
        layer = f"layers.{i}"
        q, k, v = linear(norm(x, f"{layer}.attention_norm"), f"{layer}.attention.qkv").split(H, -1)
        q, k, v = (t.view(1, T, N, H // N).transpose(1, 2) for t in (q, k, v))
        probs = (q @ k.transpose(-1, -2) / math.sqrt(H // N)).softmax(-1)
        x = x + linear((probs @ v).transpose(1, 2).reshape(1, T, H), f"{layer}.attention.output")
        up = F.gelu(linear(norm(x, f"{layer}.feed_forward_norm"), f"{layer}.feed_forward.up"))
        x = x + linear(up, f"{layer}.feed_forward.down")
    return norm(x, "final_norm")


def test_pre_ln_encoder_is_the_hand_written_block_and_differs_from_post_ln():
    config = pre_ln_config()
    torch.manual_seed(0)
    model = BertForMaskedLM(config).eval()
    ids = torch.randint(1, config.vocab_size, (1, 7))
    with torch.no_grad():
        for block in model.bert.layers:  # away from init, so that every term counts
            for p in block.parameters():
                p.add_(torch.randn_like(p) * 0.3)
        got = model.bert(ids).last_hidden_state
        want = reference_encoder(model.bert.state_dict(), config, ids)
        post = BertForMaskedLM(tiny_config(53, num_attention_heads=2)).eval()
        post.bert.load_state_dict(model.bert.state_dict(), strict=False)  # all but final_norm
        other = post.bert(ids).last_hidden_state
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert (got - other).abs().max() > 0.1


@pytest.mark.parametrize("cls", [BertForMaskedLM, RobertaForMaskedLM])
def test_save_and_load_keep_pre_layer_norm(tmp_path, cls):
    config = pre_ln_config(**({"model_type": "roberta", "pad_token_id": 1, "type_vocab_size": 1}
                              if cls is RobertaForMaskedLM else {}))
    torch.manual_seed(0)
    model = cls(config).eval()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["pre_layer_norm"] is True
    loaded = cls.from_pretrained(tmp_path).eval()
    assert loaded.config.pre_layer_norm
    ids = torch.randint(2, config.vocab_size, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, atol=0, rtol=0)


def test_a_post_ln_config_json_does_not_name_the_switch(tmp_path):
    tiny_config(53).save_pretrained(tmp_path)
    assert "pre_layer_norm" not in json.loads((tmp_path / "config.json").read_text())
    assert not BertConfig.from_pretrained(tmp_path).pre_layer_norm


@pytest.mark.parametrize("overrides", [{"is_decoder": True}, {"model_type": "albert"},
                                       {"model_type": "distilbert", "type_vocab_size": 0}])
def test_pre_ln_is_refused_where_it_has_no_layout(overrides):
    with pytest.raises(ConfigError, match="pre_layer_norm"):
        pre_ln_config(**overrides).validate()



def test_onnx_export_refuses_a_pre_ln_model(tmp_path):
    from bertkit.export.onnx import export_onnx

    with pytest.raises(ConfigError, match="pre_layer_norm"):
        export_onnx(BertForMaskedLM(pre_ln_config()), tmp_path / "m.onnx")
