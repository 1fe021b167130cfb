"""CPU inference calls run the encoder's fast twin by default (every class:
``test_fast_form.py``); training and autograd run the
core; the twin follows every change to the parameters it was built from.

"Which path ran" is read from the twin holder (``model.fast_twin``) and from the prepacked
layers' own refusal of gradients; "same numerics" compares against the core path of the same
model (a call with autograd on) at real positions, within 1e-5.
"""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from bertkit.inference.fastpath.layers import FastBert
from bertkit.model import BertConfig
from bertkit.model.pretrained import BertModel, PreTrainedModel
from tiny import tiny_config

IDS = torch.tensor([[2, 7, 9, 11, 3, 0], [2, 8, 10, 3, 0, 0]])
MASK = (IDS != 0).long()
KEEP = MASK.bool()


def core_output(model: BertModel) -> torch.Tensor:
    """The core path: autograd on (eval mode), detached."""
    with torch.enable_grad():
        return model(IDS, MASK).last_hidden_state.detach()


def fast_output(model: BertModel) -> torch.Tensor:
    with torch.inference_mode():
        return model(IDS, MASK).last_hidden_state


def twin_of(model: PreTrainedModel) -> FastBert | None:
    return model.fast_twin._twin


@pytest.fixture()
def model() -> BertModel:
    torch.manual_seed(0)
    return BertModel(tiny_config(20, max_position_embeddings=8)).eval()


def test_twin_uses_prepacked_kernels_and_shares_parameters(model: BertModel):
    fast_output(model)
    twin = twin_of(model)
    assert type(twin.layers[0].attention.qkv).__name__ == "PrepackedLinear"
    assert type(model.bert.layers[0].attention.qkv) is nn.Linear     # the core is untouched
    assert twin.embeddings.word.weight is model.bert.embeddings.word.weight
    assert set(model.state_dict()) == set(BertModel(model.config).state_dict())


def test_training_mode_and_gradients_run_the_core(model: BertModel):
    model.train()
    with torch.no_grad():
        model(IDS, MASK)
    assert twin_of(model) is None
    model.eval()
    out = model(IDS, MASK).last_hidden_state                        # autograd on
    out[KEEP].sum().backward()
    grad = model.bert.layers[0].attention.qkv.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert twin_of(model) is None


def test_load_state_dict_rebuilds_the_twin(model: BertModel):
    first = fast_output(model)
    torch.manual_seed(1)
    other = BertModel(model.config).eval()
    model.load_state_dict(other.state_dict())
    torch.testing.assert_close(fast_output(model)[KEEP], core_output(other)[KEEP],
                               atol=1e-5, rtol=0)
    assert (fast_output(model) - first)[KEEP].abs().max() > 1e-2


def test_in_place_edits_and_optimizer_steps_are_seen(model: BertModel):
    fast_output(model)
    with torch.no_grad():
        model.bert.layers[1].feed_forward.up.weight.mul_(2.0)
    torch.testing.assert_close(fast_output(model)[KEEP], core_output(model)[KEEP],
                               atol=1e-5, rtol=0)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model(IDS, MASK).last_hidden_state[KEEP].pow(2).sum().backward()
    optimizer.step()
    model.eval()
    torch.testing.assert_close(fast_output(model)[KEEP], core_output(model)[KEEP],
                               atol=1e-5, rtol=0)


def test_replaced_parameters_and_modules_are_seen(model: BertModel):
    fast_output(model)
    attention = model.bert.layers[0].attention
    attention.output.weight = nn.Parameter(torch.randn_like(attention.output.weight))
    torch.testing.assert_close(fast_output(model)[KEEP], core_output(model)[KEEP],
                               atol=1e-5, rtol=0)
    model.bert.layers[1].feed_forward_norm = nn.LayerNorm(model.config.hidden_size,
                                                          elementwise_affine=False)
    torch.testing.assert_close(fast_output(model)[KEEP], core_output(model)[KEEP],
                               atol=1e-5, rtol=0)


def test_dtype_change_is_seen(model: BertModel):
    fast_output(model)
    model.to(torch.float64)
    with torch.inference_mode():
        out = model(IDS, MASK).last_hidden_state
    assert out.dtype == torch.float64
    torch.testing.assert_close(out[KEEP], core_output(model)[KEEP], atol=1e-9, rtol=0)


def test_hooks_keep_the_core(model: BertModel):
    seen = []
    model.bert.layers[0].register_forward_hook(lambda module, args, out: seen.append(module))
    fast_output(model)
    assert seen == [model.bert.layers[0]]


def test_copies_and_pickles_start_without_a_twin(model: BertModel):
    fast_output(model)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert twin_of(clone) is None
        torch.testing.assert_close(fast_output(clone), fast_output(model), atol=0, rtol=0)


def test_compiled_and_prepared_models_do_not_build_a_twin():
    torch.manual_seed(0)
    prepared = BertModel(BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=20,
                                    max_position_embeddings=8)).prepare_for_inference()
    fast_output(prepared)
    assert twin_of(prepared) is None and isinstance(prepared.bert, FastBert)
