"""The encoder's invariances: padding, attention paths, determinism, output selection."""

from __future__ import annotations

import pytest
import torch

from bertkit.errors import ConfigError, InputError
from bertkit.model import Bert, BertConfig
from bertkit.model.pretrained import BertModel


def make_model(config: BertConfig, seed: int = 0) -> Bert:
    torch.manual_seed(seed)
    return Bert(config).eval()


def public_model(config: BertConfig) -> BertModel:
    """Inputs are checked at the API boundary (the public classes), not inside the encoder."""
    torch.manual_seed(0)
    return BertModel(config).eval()


def random_batch(config: BertConfig, batch: int, length: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, config.vocab_size, (batch, length), generator=gen)
    types = torch.randint(0, config.type_vocab_size, (batch, length), generator=gen)
    return ids, types


def test_padding_never_changes_real_positions(tiny_config):
    model = make_model(tiny_config)
    ids, types = random_batch(tiny_config, 3, 9)
    plain = model(ids, torch.ones_like(ids), types)
    # Append 7 padding positions holding arbitrary ids: the real positions must not move.
    junk = torch.randint(1, tiny_config.vocab_size, (3, 7))
    padded_ids = torch.cat([ids, junk], dim=1)
    padded_types = torch.cat([types, torch.ones_like(junk)], dim=1)
    mask = torch.cat([torch.ones_like(ids), torch.zeros_like(junk)], dim=1)
    padded = model(padded_ids, mask, padded_types, output_hidden_states=True)
    torch.testing.assert_close(padded.last_hidden_state[:, :9], plain.last_hidden_state,
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(padded.pooler_output, plain.pooler_output, atol=1e-5, rtol=0)


def test_rows_of_different_lengths_match_their_unpadded_selves(tiny_config):
    model = make_model(tiny_config)
    ids, types = random_batch(tiny_config, 2, 12)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    batched = model(ids, mask, types).last_hidden_state
    alone = model(ids[1:, :5], None, types[1:, :5]).last_hidden_state
    torch.testing.assert_close(batched[1, :5], alone[0], atol=1e-5, rtol=0)


def test_explicit_attention_path_equals_fast_path(tiny_config):
    model = make_model(tiny_config)
    ids, types = random_batch(tiny_config, 2, 10)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    fast = model(ids, mask, types, output_hidden_states=True)
    explicit = model(ids, mask, types, output_hidden_states=True, output_attentions=True)
    for a, b in zip(fast.hidden_states, explicit.hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_attention_probabilities_ignore_padding_and_sum_to_one(tiny_config):
    model = make_model(tiny_config)
    ids, types = random_batch(tiny_config, 2, 8)
    mask = torch.ones_like(ids)
    mask[1, 3:] = 0
    attentions = model(ids, mask, types, output_attentions=True).attentions
    assert len(attentions) == tiny_config.num_hidden_layers
    for probs in attentions:
        assert probs.shape == (2, tiny_config.num_attention_heads, 8, 8)
        torch.testing.assert_close(probs.sum(-1), torch.ones(2, 4, 8), atol=1e-5, rtol=0)
        assert probs[1, :, :, 3:].abs().max() == 0.0


def test_selected_attention_layers_only(tiny_config):
    model = make_model(tiny_config)
    ids, types = random_batch(tiny_config, 1, 6)
    every = model(ids, None, types, output_attentions=True).attentions
    some = model(ids, None, types, output_attentions=[-1]).attentions
    assert some[0] is None and some[1] is None
    torch.testing.assert_close(some[2], every[2])
    with pytest.raises(InputError, match="attention layer index 3 is out of range"):
        model(ids, None, types, output_attentions=[3])


def test_hidden_states_are_embeddings_then_every_layer(tiny_config):
    model = make_model(tiny_config)
    ids, types = random_batch(tiny_config, 2, 5)
    out = model(ids, None, types, output_hidden_states=True)
    assert len(out.hidden_states) == tiny_config.num_hidden_layers + 1
    torch.testing.assert_close(out.hidden_states[0], model.embeddings(ids, types))
    assert out.hidden_states[-1] is out.last_hidden_state
    assert out[0] is out.last_hidden_state and out["pooler_output"] is out.pooler_output


def test_eval_is_deterministic_and_train_applies_dropout(tiny_config):
    model = make_model(tiny_config)
    ids, types = random_batch(tiny_config, 2, 7)
    first = model(ids, None, types).last_hidden_state
    torch.testing.assert_close(model(ids, None, types).last_hidden_state, first, atol=0, rtol=0)
    model.train()
    assert not torch.allclose(model(ids, None, types).last_hidden_state, first)


def test_inputs_embeds_equals_input_ids(tiny_config):
    model = make_model(tiny_config)
    ids, types = random_batch(tiny_config, 2, 7)
    from_ids = model(ids, None, types).last_hidden_state
    from_embeds = model(None, None, types, inputs_embeds=model.embeddings.word(ids))
    torch.testing.assert_close(from_embeds.last_hidden_state, from_ids)


def test_missing_token_types_mean_segment_zero(tiny_config):
    model = make_model(tiny_config)
    ids, _ = random_batch(tiny_config, 2, 7)
    torch.testing.assert_close(model(ids).last_hidden_state,
                               model(ids, None, torch.zeros_like(ids)).last_hidden_state)


def test_config_rejects_heads_that_do_not_divide_hidden():
    with pytest.raises(ConfigError, match=r"hidden_size \(100\).*num_attention_heads \(12\)"):
        Bert(BertConfig(hidden_size=100, num_attention_heads=12))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("num_hidden_layers", 0, "num_hidden_layers must be a positive integer"),
    ("hidden_act", "tanh", "hidden_act must be one of"),
    ("hidden_dropout_prob", 1.5, r"hidden_dropout_prob must be in \[0, 1\)"),
    ("pad_token_id", 500, r"pad_token_id \(500\)"),
    ("problem_type", "ranking", "problem_type must be one of"),
])
def test_config_errors_name_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        BertConfig(vocab_size=100, **{field: value}).validate()


def test_too_long_sequence_is_a_clear_error(tiny_config):
    model = public_model(tiny_config)
    ids = torch.ones(1, 41, dtype=torch.long)
    with pytest.raises(InputError, match=r"sequence length 41 exceeds max_position_embeddings=40"):
        model(ids)


def test_out_of_vocabulary_id_is_located(tiny_config):
    model = public_model(tiny_config)
    ids = torch.ones(2, 5, dtype=torch.long)
    ids[1, 3] = 101
    with pytest.raises(InputError, match=r"input_ids holds 101 at \(batch 1, position 3\) but "
                                         r"vocab_size is 101"):
        model(ids)
    ids[1, 3] = -4
    with pytest.raises(InputError, match="input_ids holds -4"):
        model(ids)


def test_bad_token_type_and_mask_shape(tiny_config):
    model = public_model(tiny_config)
    ids = torch.ones(2, 5, dtype=torch.long)
    types = torch.zeros_like(ids)
    types[0, 2] = 2
    with pytest.raises(InputError, match=r"token_type_ids holds 2 .* type_vocab_size is 2"):
        model(ids, None, types)
    with pytest.raises(InputError, match=r"attention_mask has shape \(2, 4\)"):
        model(ids, torch.ones(2, 4))
    with pytest.raises(InputError, match="integer tensor"):
        model(ids.float())


def test_parameter_count_of_bert_base_is_the_published_one():
    from bertkit.variants.bert import bert_base, bert_tiny

    # 110 M (Devlin et al.); computed here: embeddings + 12 layers + pooler.
    h, i, v, p, s, layers = 768, 3072, 30522, 512, 2, 12
    embeddings = (v + p + s) * h + 2 * h
    layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * 2 * h
    expected = embeddings + layers * layer + (h * h + h)
    model = Bert(bert_base())
    assert sum(p.numel() for p in model.parameters()) == expected
    assert 109_000_000 < expected < 110_000_000
    assert 4_300_000 < sum(p.numel() for p in Bert(bert_tiny()).parameters()) < 4_500_000
