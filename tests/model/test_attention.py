"""The one attention module: self- and cross-attention, causal masking, returned
probabilities and a key/value cache all compute softmax(q·kᵀ/√D + bias)·v consistently."""

from __future__ import annotations

import torch

from bertkit.model import BertConfig
from bertkit.model.bert import Attention, padding_bias

TOL = {"atol": 1e-5, "rtol": 0.0}


def attention(config: BertConfig) -> Attention:
    torch.manual_seed(0)
    return Attention(config).eval()


def test_self_attention_is_cross_attention_to_itself(tiny_config):
    module = attention(tiny_config)
    x = torch.randn(2, 7, tiny_config.hidden_size)
    own, _, _ = module(x)
    crossed, _, _ = module(x, key_value_states=x)
    torch.testing.assert_close(crossed, own, **TOL)


def test_cross_attention_reads_keys_of_another_length(tiny_config):
    module = attention(tiny_config)
    queries = torch.randn(2, 5, tiny_config.hidden_size)
    memory = torch.randn(2, 11, tiny_config.hidden_size)
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[1, 8:] = 0
    out, probs, (k, v) = module(queries, memory, bias=padding_bias(mask, memory.dtype),
                                return_probs=True)
    assert out.shape == queries.shape and k.shape == v.shape == memory.shape
    assert probs.shape == (2, tiny_config.num_attention_heads, 5, 11)
    assert probs[1, :, :, 8:].abs().max() == 0.0
    fused, _, _ = module(queries, memory, bias=padding_bias(mask, memory.dtype))
    torch.testing.assert_close(fused, out, **TOL)  # explicit path = fused kernel


def test_causal_attention_ignores_later_positions(tiny_config):
    module = attention(tiny_config)
    x = torch.randn(1, 8, tiny_config.hidden_size)
    changed = x.clone()
    changed[:, 5:] = torch.randn(1, 3, tiny_config.hidden_size)
    before, probs, _ = module(x, causal=True, return_probs=True)
    after, _, _ = module(changed, causal=True)
    torch.testing.assert_close(after[:, :5], before[:, :5], **TOL)
    assert probs.triu(diagonal=1).abs().max() == 0.0
    torch.testing.assert_close(probs.sum(-1), torch.ones(1, 4, 8), **TOL)


def test_key_value_cache_decodes_step_by_step(tiny_config):
    module = attention(tiny_config)
    x = torch.randn(2, 6, tiny_config.hidden_size)
    whole, _, _ = module(x, causal=True)
    out, _, cache = module(x[:, :3], causal=True)
    steps = [out]
    for t in range(3, 6):
        out, _, cache = module(x[:, t:t + 1], causal=True, past_key_value=cache)
        steps.append(out)
    assert cache[0].shape == (2, 6, tiny_config.hidden_size)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole, **TOL)
