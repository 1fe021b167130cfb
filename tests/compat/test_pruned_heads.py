"""Pruned heads against ``transformers``, both directions, and bertkit's own paths agreeing.

``transformers`` 5 no longer applies ``config.pruned_heads`` when it loads a checkpoint (4.x did,
through ``PreTrainedModel.prune_heads``; 5.0 removed it). What stays is the convention: the
config names the heads removed (layer → heads of the unpruned layer) and the checkpoint holds
smaller query / key / value rows and output columns. :func:`hf_prune` applies it as 4.x's
``BertAttention.prune_heads`` did, with ``transformers.pytorch_utils.prune_linear_layer``.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig as HFConfig
from transformers import BertForSequenceClassification as HFClassifier
from transformers.pytorch_utils import prune_linear_layer

from bertkit import BertConfig, BertForSequenceClassification
from bertkit.errors import ConfigError

PRUNE = {0: [1, 3], 2: [0]}


def hf_prune(model: HFClassifier, heads: dict) -> None:
    """transformers 4.x's ``BertAttention.prune_heads`` (heads of the unpruned layers)."""
    size = model.config.hidden_size // model.config.num_attention_heads
    for layer, chosen in heads.items():
        attention = model.bert.encoder.layer[int(layer)].attention
        total = model.config.num_attention_heads
        keep = torch.ones(total, size)
        keep[sorted(chosen)] = 0
        index = keep.view(-1).eq(1).nonzero().squeeze(1)
        for name in ("query", "key", "value"):
            setattr(attention.self, name, prune_linear_layer(getattr(attention.self, name),
                                                             index))
        attention.output.dense = prune_linear_layer(attention.output.dense, index, dim=1)


@pytest.fixture
def config() -> BertConfig:
    return BertConfig(vocab_size=61, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                      intermediate_size=37, max_position_embeddings=24, num_labels=3,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@pytest.fixture
def batch() -> dict:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 61, (3, 11), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_bertkit_pruned_checkpoint_runs_in_transformers(tmp_path, config, batch):
    torch.manual_seed(0)
    ours = BertForSequenceClassification(config).eval()
    ours.prune_heads(PRUNE)
    ours.save_pretrained(tmp_path)
    assert BertConfig.from_pretrained(tmp_path).pruned_heads == {0: [1, 3], 2: [0]}
    reference = HFClassifier(HFConfig.from_pretrained(tmp_path)).eval()
    hf_prune(reference, reference.config.pruned_heads)  # string layer keys, as in the file
    missing = reference.load_state_dict(load_file(tmp_path / "model.safetensors"), strict=False)
    assert not missing.unexpected_keys and not missing.missing_keys
    with torch.no_grad():
        expected = reference(**batch).logits
        assert (ours(**batch).logits - expected).abs().max() <= 1e-5  # default (fast) path
    assert (ours(**batch).logits.detach() - expected).abs().max() <= 1e-5   # the core


def test_transformers_pruned_checkpoint_loads_in_bertkit(tmp_path, config, batch):
    torch.manual_seed(1)
    reference = HFClassifier(HFConfig(**{k: v for k, v in config.to_dict().items()})).eval()
    hf_prune(reference, PRUNE)
    reference.config.pruned_heads = PRUNE
    reference.save_pretrained(tmp_path)
    ours = BertForSequenceClassification.from_pretrained(tmp_path)
    assert [layer.attention.num_heads for layer in ours.bert.layers] == [2, 4, 3]
    with torch.no_grad():
        expected = reference(**batch).logits
        assert (ours(**batch).logits - expected).abs().max() <= 1e-5


def test_fast_form_of_a_pruned_model_equals_its_core(config, batch):
    torch.manual_seed(2)
    model = BertForSequenceClassification(config).eval()
    model.prune_heads(PRUNE)
    core = model(**batch).logits.detach()          # autograd on: the core encoder
    with torch.inference_mode():
        fast = model(**batch).logits               # the default inference path: fast twin
    assert model.fast_twin._twin is not None
    assert (fast - core).abs().max() <= 1e-5
    model.prepare_for_inference()
    with torch.inference_mode():
        assert (model(**batch).logits - core).abs().max() <= 1e-5


def test_a_zero_head_mask_equals_pruning_the_head(config, batch):
    torch.manual_seed(3)
    model = BertForSequenceClassification(config).eval()
    mask = torch.ones(3, 4)
    for layer, heads in PRUNE.items():
        mask[layer, heads] = 0
    masked = model(**batch, head_mask=mask).logits.detach()
    assert (masked - model(**batch).logits.detach()).abs().max() > 1e-4  # the mask matters
    model.prune_heads(PRUNE)
    assert (model(**batch).logits.detach() - masked).abs().max() <= 1e-5


def test_pruning_again_counts_heads_of_the_unpruned_layer(config):
    model = BertForSequenceClassification(config)
    model.prune_heads({0: [1]})
    model.prune_heads({0: [1, 2]})
    assert model.config.pruned_heads[0] == [1, 2]
    assert model.bert.layers[0].attention.qkv.out_features == 3 * 2 * config.head_dim


def test_pruning_every_head_of_a_layer_is_refused(config):
    model = BertForSequenceClassification(config)
    with pytest.raises(ConfigError, match="at least one head"):
        model.prune_heads({1: [0, 1, 2, 3]})
    with pytest.raises(ConfigError, match="layer 1 would lose all 4"):
        BertConfig(**{**config.to_dict(), "pruned_heads": {"1": [0, 1, 2, 3]}}).validate()
    with pytest.raises(ConfigError, match=r"heads are 0\.\.3"):
        model.prune_heads({0: [7]})
