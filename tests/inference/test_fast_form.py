"""Every model class computes the same outputs in its fast form as in its core form.

The fast form is applied with its default thresholds and with packing forced on (the tiny
models here would otherwise never pack), on a right-padded batch; compared at real positions
(padded positions of a packed run hold zeros by design).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bertkit.inference.fastpath.layers import FastBert
from bertkit.model import BertConfig
from bertkit.model.pretrained import MODEL_CLASSES, PreTrainedModel
from tiny import family_configs

FAMILY_CONFIGS = family_configs(num_labels=3, hidden_dropout_prob=0.0,
                                attention_probs_dropout_prob=0.0)


def batch(config: BertConfig, choices: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask, (B, T), or (B, C, T) for multiple choice."""
    gen = torch.Generator().manual_seed(1)
    shape = (2, 3, 9) if choices else (3, 9)
    ids = torch.randint(config.pad_token_id + 1, config.vocab_size, shape, generator=gen)
    lengths = torch.tensor([9, 6, 3])
    mask = (torch.arange(9) < lengths[:, None]).long()                  # (3, T)
    mask = mask.expand(2, 3, 9) if choices else mask
    return ids.masked_fill(mask == 0, config.pad_token_id), mask


@pytest.mark.parametrize("packed", [False, True], ids=["default", "packed"])
@pytest.mark.parametrize("name", sorted(n for n, c in MODEL_CLASSES.items() if not c.is_decoder))
def test_fast_form_equals_core(name: str, packed: bool):
    cls: type[PreTrainedModel] = MODEL_CLASSES[name]
    config = FAMILY_CONFIGS[cls.model_type]
    torch.manual_seed(0)
    core = cls(config).eval()
    fast = cls(config)
    fast.load_state_dict(core.state_dict())
    fast.prepare_for_inference()  # eval mode + to_fast_form
    assert isinstance(fast.bert, FastBert)
    if packed:
        fast.bert.unpad_min_saved_flops = 0.0
    ids, mask = batch(config, choices="MultipleChoice" in name)
    with torch.inference_mode():
        want, got = core(ids, mask, output_hidden_states=True), fast(ids, mask,
                                                                  output_hidden_states=True)
    keep = mask.reshape(-1, 9).bool()                                    # (B·C, T)
    for a, b in zip(got.hidden_states, want.hidden_states, strict=True):
        torch.testing.assert_close(a[keep], b[keep], atol=1e-5, rtol=0)
    first, reference = got[0], want[0]                 # logits, or the last hidden state
    if first.dim() >= 2 and first.shape[:2] == ids.shape[:2] and "MultipleChoice" not in name:
        first, reference = first[keep], reference[keep]    # per-token: real positions only
    torch.testing.assert_close(first, reference, atol=1e-5, rtol=0)


ENCODER_CLASSES = sorted(name for name, cls in MODEL_CLASSES.items() if not cls.is_decoder)
DECODER_CLASSES = sorted(name for name, cls in MODEL_CLASSES.items() if cls.is_decoder)


@pytest.mark.parametrize("name", DECODER_CLASSES)
def test_decoders_run_the_core_for_inference(name: str):
    """The fast form has no causal or cross-attention path: decoders never build a twin."""
    cls: type[PreTrainedModel] = MODEL_CLASSES[name]
    config = dataclasses.replace(FAMILY_CONFIGS[cls.model_type], is_decoder=True)
    model = cls(config).eval()
    ids, mask = batch(config, choices=False)
    with torch.no_grad():
        model(ids, mask)
    assert model.fast_twin._twin is None


@pytest.mark.parametrize("name", ENCODER_CLASSES)
def test_every_class_runs_the_twin_for_inference(name: str):
    cls: type[PreTrainedModel] = MODEL_CLASSES[name]
    config = FAMILY_CONFIGS[cls.model_type]
    torch.manual_seed(0)
    model = cls(config).eval()
    ids, mask = batch(config, choices="MultipleChoice" in name)
    with torch.enable_grad():
        want = model(ids, mask, output_hidden_states=True)
    assert model.fast_twin._twin is None                       # autograd on: the core ran
    with torch.no_grad():
        got = model(ids, mask, output_hidden_states=True)
    assert isinstance(model.fast_twin._twin, FastBert)
    keep = mask.reshape(-1, 9).bool()
    for a, b in zip(got.hidden_states, want.hidden_states, strict=True):
        torch.testing.assert_close(a[keep], b[keep], atol=1e-5, rtol=0)
    first, reference = got[0], want[0].detach()        # logits, or the last hidden state
    if first.dim() >= 2 and first.shape[:2] == ids.shape[:2] and "MultipleChoice" not in name:
        first, reference = first[keep], reference[keep]    # per-token: real positions only
    torch.testing.assert_close(first, reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("packed", [False, True], ids=["default", "packed"])
@pytest.mark.parametrize("model_type", ["bert", "roberta"])
def test_pre_ln_fast_form_equals_core(model_type: str, packed: bool):
    """The fast layers run the pre-LN block (``pre_layer_norm``) too, fused adds included."""
    config = dataclasses.replace(FAMILY_CONFIGS[model_type], pre_layer_norm=True)
    cls = MODEL_CLASSES["RobertaForMaskedLM" if model_type == "roberta" else "BertForMaskedLM"]
    torch.manual_seed(0)
    core = cls(config).eval()
    fast = cls(config)
    fast.load_state_dict(core.state_dict())
    fast.prepare_for_inference()
    if packed:
        fast.bert.unpad_min_saved_flops = 0.0
    ids, mask = batch(config, choices=False)
    with torch.inference_mode():
        want, got = core(ids, mask, output_hidden_states=True), fast(ids, mask,
                                                                  output_hidden_states=True)
    keep = mask.bool()
    for a, b in zip(got.hidden_states, want.hidden_states, strict=True):
        torch.testing.assert_close(a[keep], b[keep], atol=1e-5, rtol=0)
    torch.testing.assert_close(got.logits[keep], want.logits[keep], atol=1e-5, rtol=0)
