"""The families as switches on the one encoder: presets of the published sizes, config keys of
each family, layer sharing, and the padding invariances on every family's path."""

from __future__ import annotations

import pytest
import torch

from bertkit.errors import ConfigError, InputError, UsageError
from bertkit.inference.fastpath import to_fast_form
from bertkit.model import Bert, BertConfig
from bertkit.model.pretrained import (
    AlbertModel,
    BertForMaskedLM,
    BertForNextSentencePrediction,
    BertModel,
    DistilBertModel,
    ElectraForMaskedLM,
    ElectraForPreTraining,
    RobertaForMaskedLM,
    RobertaModel,
)
from bertkit.variants import PRESETS
from tiny import family_configs

# Published sizes (millions): RoBERTa (Liu et al. 2019), DistilBERT (Sanh et al. 2019), ALBERT
# (Lan et al. 2020, table 1), ELECTRA (Clark et al. 2020, table 1; the discriminator with its
# head). Counted on the meta device: shapes only, no memory, no initialisation cost.
PUBLISHED = {
    "roberta_base": (BertModel, 125), "roberta_large": (BertModel, 355),
    "distilbert_base": (BertModel, 66),
    "albert_base": (BertModel, 12), "albert_large": (BertModel, 18),
    "albert_xlarge": (BertModel, 60),
    "electra_small_discriminator": (ElectraForPreTraining, 14),
    "electra_base_discriminator": (ElectraForPreTraining, 110),
    "electra_large_discriminator": (ElectraForPreTraining, 335),
}
TOLERANCE = 0.05  # published sizes are rounded to two or three significant digits


@pytest.mark.parametrize("preset", PUBLISHED)
def test_preset_parameter_counts_are_the_published_sizes(preset: str):
    role, millions = PUBLISHED[preset]
    config = PRESETS[preset]()
    with torch.device("meta"):
        model = role.for_family(config.model_type)(config)
    count = model.num_parameters()
    assert abs(count / 1e6 - millions) <= TOLERANCE * millions, f"{preset}: {count:,}"


def test_albert_shares_one_layer_across_depth():
    config = PRESETS["albert_base"]()
    with torch.device("meta"):
        model = AlbertModel(config)
    layers = model.bert.layers
    assert len(layers) == 12 and all(layer is layers[0] for layer in layers)
    one_layer = sum(p.numel() for p in layers[0].parameters())
    # Twelve steps, one set of weights: the count holds the layer once.
    embeddings = sum(p.numel() for p in model.bert.embeddings.parameters())
    pooler = sum(p.numel() for p in model.bert.pooler.parameters())
    assert model.num_parameters() == embeddings + one_layer + pooler


def test_albert_groups_serve_consecutive_blocks():
    config = BertConfig(model_type="albert", num_hidden_layers=6, num_hidden_groups=3,
                        inner_group_num=2)
    # depth 0-1 → group 0, 2-3 → group 1, 4-5 → group 2; each runs its two inner layers
    assert config.layer_order() == [0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5]


def test_albert_groups_that_do_not_divide_the_layers_are_refused():
    with pytest.raises(ConfigError, match=r"num_hidden_groups \(5\) must divide "
                                          r"num_hidden_layers \(12\)"):
        BertConfig(model_type="albert", num_hidden_groups=5).validate()


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(embedding_size=128), r"embedding_size \(128\) must equal hidden_size \(768\) for bert"),
    (dict(num_hidden_groups=2, num_hidden_layers=4), "only albert shares layers"),
    (dict(model_type="distilbert"), "type_vocab_size must be 0 for distilbert"),
    (dict(model_type="gpt2"), r"model_type must be one of .* got 'gpt2'"),
    (dict(model_type="roberta", pad_token_id=1, max_position_embeddings=2),
     r"max_position_embeddings \(2\) must exceed pad_token_id \+ 1"),
])
def test_family_switches_that_cannot_work_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        BertConfig(**overrides).validate()


def test_distilbert_config_json_uses_its_own_keys_and_round_trips():
    config = PRESETS["distilbert_base"](hidden_act="relu")
    data = config.to_dict()
    assert {"dim", "n_layers", "n_heads", "hidden_dim", "activation", "dropout",
            "attention_dropout", "seq_classif_dropout", "qa_dropout",
            "sinusoidal_pos_embds"} <= set(data)
    assert not {"hidden_size", "num_hidden_layers", "type_vocab_size", "layer_norm_eps",
                "embedding_size", "num_hidden_groups"} & set(data)
    assert data["activation"] == "relu" and data["n_layers"] == 6
    assert BertConfig.from_dict(data) == config


@pytest.mark.parametrize("preset", ["bert_base", "roberta_base", "albert_base",
                                    "electra_small_discriminator"])
def test_every_family_config_round_trips(preset: str):
    config = PRESETS[preset]()
    data = config.to_dict()
    assert ("embedding_size" in data) == (config.model_type in ("albert", "electra"))
    assert ("classifier_dropout_prob" in data) == (config.model_type == "albert")
    assert BertConfig.from_dict(data) == config


FAMILY_CONFIGS = family_configs()


@pytest.mark.parametrize("family", FAMILY_CONFIGS)
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_padding_never_changes_real_positions_in_any_family(family: str, packed: bool):
    config = FAMILY_CONFIGS[family]
    torch.manual_seed(0)
    model = Bert(config).eval()
    if packed:  # the fast form, on real tokens only whatever the model size
        model = to_fast_form(model, prepack=False)
        model.unpad_min_saved_flops = 0.0
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(config.pad_token_id + 1, config.vocab_size, (3, 9), generator=gen)
    plain = model(ids)
    lengths = torch.tensor([9, 6, 3])
    mask = (torch.arange(9)[None] < lengths[:, None]).long()
    padded_ids = ids.masked_fill(mask == 0, config.pad_token_id)
    padded = model(padded_ids, mask)
    for row, length in enumerate(lengths.tolist()):
        alone = model(ids[row:row + 1, :length]).last_hidden_state[0]
        torch.testing.assert_close(padded.last_hidden_state[row, :length], alone,
                                   atol=1e-5, rtol=0)
    torch.testing.assert_close(padded.last_hidden_state[0], plain.last_hidden_state[0],
                               atol=1e-5, rtol=0)


def test_roberta_positions_start_after_the_padding_index():
    config = FAMILY_CONFIGS["roberta"]
    model = Bert(config).eval()
    ids = torch.tensor([[5, 6, 7]])
    # Shifting the position table by one row past the pad index must change the output;
    # zeroing the rows a RoBERTa input never uses (0 and the pad row 1) must not.
    with torch.no_grad():
        before = model(ids).last_hidden_state
        model.embeddings.position.weight[:2] = 0.0
        assert torch.equal(model(ids).last_hidden_state, before)
        model.embeddings.position.weight[2] += 1.0
        assert not torch.allclose(model(ids).last_hidden_state, before)
    with pytest.raises(InputError, match=r"exceeds max_position_embeddings=40 less the 2 rows"):
        RobertaModel(config).eval()(torch.full((1, 39), 5))


def test_distilbert_ignores_the_segment_ids_a_bert_tokenizer_makes():
    config = FAMILY_CONFIGS["distilbert"]
    model = Bert(config).eval()
    ids = torch.randint(1, config.vocab_size, (2, 7))
    types = torch.ones_like(ids)
    torch.testing.assert_close(model(ids, None, types).last_hidden_state,
                               model(ids).last_hidden_state)
    assert model.pooler is None
    assert not model.embeddings.position.weight.requires_grad  # sinusoidal: fixed, not trained


def test_mlm_heads_work_at_the_embedding_width():
    config = FAMILY_CONFIGS["electra"]
    model = ElectraForMaskedLM(config).eval()
    assert model.mlm.dense.out_features == 8
    ids = torch.randint(1, config.vocab_size, (2, 5))
    assert model(ids).logits.shape == (2, 5, config.vocab_size)


def test_a_class_refuses_another_family_config_naming_both():
    with pytest.raises(ConfigError, match=r"model_type is 'roberta' but BertForMaskedLM is a "
                                          r"'bert' model; use RobertaForMaskedLM"):
        BertForMaskedLM(FAMILY_CONFIGS["roberta"])
    with pytest.raises(ConfigError, match="use DistilBertModel"):
        AlbertModel(FAMILY_CONFIGS["distilbert"])


def test_for_family_finds_the_counterpart_or_says_there_is_none():
    assert BertForMaskedLM.for_family("roberta") is RobertaForMaskedLM
    assert RobertaForMaskedLM.for_family("distilbert").__name__ == "DistilBertForMaskedLM"
    assert BertModel.for_family("distilbert") is DistilBertModel
    with pytest.raises(UsageError, match="'roberta' models have no RobertaForNextSentence"):
        BertForNextSentencePrediction.for_family("roberta")
