"""``head_mask`` works on every class that ``transformers`` 4 took it on, by one path.

The oracle is independent of the mask's code: a head whose mask is 0 contributes nothing to
its attention's output, exactly as if the output projection's columns that read the head were
zero.
"""

from __future__ import annotations

import pytest
import torch

from bertkit.errors import InputError
from bertkit.model.causal_lm import BertLMHeadModel
from bertkit.model.pretrained import (
    AlbertForPreTraining,
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    DistilBertForMaskedLM,
    ElectraForPreTraining,
)
from tiny import tiny_config

CLASSES = [BertModel, BertForPreTraining, BertForMaskedLM, BertForNextSentencePrediction,
           BertForSequenceClassification, BertForTokenClassification, BertForQuestionAnswering,
           BertForMultipleChoice, BertLMHeadModel, AlbertForPreTraining, DistilBertForMaskedLM,
           ElectraForPreTraining]
MASKED = (1, 2)  # (layer, head) whose output the mask removes


def build(model_class: type) -> torch.nn.Module:
    overrides = {"model_type": model_class.model_type, "is_decoder": model_class.is_decoder,
                 "initializer_range": 0.3}  # outputs far from 0, so a lost head shows
    if model_class.model_type == "albert":
        overrides["embedding_size"] = 16
    if model_class.model_type == "distilbert":
        overrides["type_vocab_size"] = 0
    if model_class.is_decoder:  # masks its cross-attention heads too, as transformers 4 did
        overrides["add_cross_attention"] = True
    return model_class(tiny_config(50, num_hidden_layers=2, **overrides)).eval()


def inputs(model_class: type) -> dict[str, torch.Tensor]:
    ids = torch.randint(5, 50, (2, 3, 7) if model_class is BertForMultipleChoice else (2, 7))
    mask = torch.ones_like(ids)
    mask[..., 0, 5:] = 0
    batch = {"input_ids": ids, "attention_mask": mask}
    if model_class.is_decoder:
        batch["encoder_hidden_states"] = torch.randn(2, 5, 32)
    return batch


def first_output(out: object) -> torch.Tensor:
    return next(value for value in vars(out).values() if isinstance(value, torch.Tensor))


@pytest.mark.parametrize("model_class", CLASSES, ids=lambda c: c.__name__)
def test_a_zero_head_mask_removes_that_heads_output(model_class: type):
    torch.manual_seed(0)
    model, batch = build(model_class), inputs(model_class)
    layer, head = MASKED
    mask = torch.ones(2, 4)
    mask[layer, head] = 0
    with torch.no_grad():  # an inference call: the fast form runs, and must mask too
        unmasked = first_output(model(**batch))
        masked = first_output(model(**batch, head_mask=mask))
        same_everywhere = first_output(model(**batch, head_mask=mask[layer]))  # (N,): all layers
        D = model.config.head_dim
        block = model.bert.layers[layer]
        for attention in (block.attention, getattr(block, "cross_attention", None)):
            if attention is not None:
                attention.output.weight[:, head * D:(head + 1) * D] = 0
        expected = first_output(model(**batch))
    assert (masked - unmasked).abs().max() > 1e-4  # the head mattered
    if model.config.family.shared_layers:  # ALBERT: the zeroed columns serve every layer
        torch.testing.assert_close(same_everywhere, expected, atol=1e-5, rtol=0)
    else:
        torch.testing.assert_close(masked, expected, atol=1e-5, rtol=0)
        assert (same_everywhere - masked).abs().max() > 1e-6  # (N,) masks every layer


def test_a_head_mask_of_the_wrong_shape_is_refused():
    model = build(BertForMaskedLM)
    batch = inputs(BertForMaskedLM)
    with pytest.raises(InputError, match="2 layers, got 3"):
        model(**batch, head_mask=[torch.ones(4)] * 3)
    with pytest.raises(InputError, match="layer 0 has shape \\(3,\\) but the layer has 4"):
        model(**batch, head_mask=torch.ones(2, 3))
