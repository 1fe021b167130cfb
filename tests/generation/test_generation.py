"""Generation on bertkit's own small models: the cache changes nothing, sampling is seeded,
the bans hold, and bad settings or inputs get clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from bertkit import (
    BertConfig,
    BertLMHeadModel,
    BertModel,
    CheckpointError,
    ConfigError,
    EncoderDecoderModel,
    GenerationConfig,
    InputError,
    UsageError,
)
from bertkit.model.encoder_decoder import EncoderDecoderConfig, shift_tokens_right

SMALL = dict(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=24, max_position_embeddings=24, hidden_dropout_prob=0.0,
             attention_probs_dropout_prob=0.0, initializer_range=0.3)


def seq2seq(tie: bool = False) -> EncoderDecoderModel:
    torch.manual_seed(0)
    config = EncoderDecoderConfig(
        BertConfig(**SMALL), BertConfig(**SMALL, is_decoder=True, add_cross_attention=True),
        decoder_start_token_id=2, eos_token_id=3, pad_token_id=0, tie_encoder_decoder=tie)
    return EncoderDecoderModel(config).eval()


def sources() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(4, 30, (2, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    return ids.masked_fill(mask == 0, 0), mask


@pytest.mark.parametrize("beams", [1, 3])
def test_cached_equals_uncached(beams: int):
    model, (ids, mask) = seq2seq(), sources()
    cached = model.generate(ids, mask, max_new_tokens=12, num_beams=beams)
    uncached = model.generate(ids, mask, max_new_tokens=12, num_beams=beams, use_cache=False)
    assert torch.equal(cached, uncached)


def test_incremental_logits_equal_full_forward():
    model, (ids, mask) = seq2seq(), sources()
    targets = torch.randint(4, 30, (2, 6))
    with torch.no_grad():
        full = model(ids, mask, targets).logits
        first = model(ids, mask, targets[:, :4], use_cache=True)
        rest = model(ids, mask, targets[:, 4:], past_key_values=first.past_key_values)
    torch.testing.assert_close(rest.logits, full[:, 4:], atol=1e-5, rtol=0)


def test_sampling_is_seeded_and_top_k_one_is_greedy():
    model, (ids, mask) = seq2seq(), sources()
    draws = [model.generate(ids, mask, do_sample=True, top_k=0, max_new_tokens=10,
                            generator=torch.Generator().manual_seed(s)) for s in (7, 7, 8)]
    assert torch.equal(draws[0], draws[1])
    greedy = model.generate(ids, mask, max_new_tokens=10)
    picked = model.generate(ids, mask, do_sample=True, top_k=1, temperature=0.7,
                            max_new_tokens=10, generator=torch.Generator().manual_seed(9))
    assert torch.equal(greedy, picked)
    nucleus = model.generate(ids, mask, do_sample=True, top_p=1e-6, max_new_tokens=10,
                             generator=torch.Generator().manual_seed(9))
    assert torch.equal(greedy, nucleus)


def test_no_repeat_ngram_and_min_new_tokens():
    model, (ids, mask) = seq2seq(), sources()
    out = model.generate(ids, mask, max_new_tokens=15, no_repeat_ngram_size=2, num_beams=2)
    for row in out.tolist():
        pairs = [tuple(row[i:i + 2]) for i in range(len(row) - 1) if 0 not in row[i:i + 2]]
        assert len(pairs) == len(set(pairs))
    with torch.no_grad():
        model.decoder.mlm.bias[3] += 50.0               # the end token wins every step
    assert model.generate(ids, mask, max_new_tokens=8).shape[1] == 2
    late = model.generate(ids, mask, max_new_tokens=8, min_new_tokens=4)
    assert late.shape[1] == 6 and not (late[:, 1:5] == 3).any()


@pytest.mark.parametrize("options, error", [
    (dict(num_beams=31), "exceeds the vocabulary"),
    (dict(num_beams=2, do_sample=True), "beam sampling"),
    (dict(top_p=0.0), "top_p"),
    (dict(max_new_tokens=30), "decoder positions"),
    (dict(beam_width=3), "unknown generation option"),
])
def test_bad_settings(options: dict, error: str):
    model, (ids, mask) = seq2seq(), sources()
    with pytest.raises((UsageError, InputError), match=error):
        model.generate(ids, mask, **options)


def test_bad_sources():
    model = seq2seq()
    with pytest.raises(InputError, match="source is empty"):
        model.generate(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(InputError, match="exceeds max_position_embeddings"):
        model.generate(torch.randint(4, 30, (1, 25)))
    with pytest.raises(InputError, match=r"row\(s\) \[1\]"):
        model.generate(torch.ones(2, 3, dtype=torch.long), torch.tensor([[1, 1, 1], [0, 0, 0]]))


def test_labels_shift_right_and_loss():
    model, (ids, mask) = seq2seq(), sources()
    labels = torch.tensor([[5, 6, 7, 3], [8, 3, -100, -100]])
    assert shift_tokens_right(labels, 0, 2).tolist() == [[2, 5, 6, 7], [2, 8, 3, 0]]
    out = model(ids, mask, labels=labels)
    manual = torch.nn.functional.cross_entropy(out.logits.reshape(-1, 30), labels.view(-1))
    torch.testing.assert_close(out.loss, manual)
    out.loss.backward()
    assert model.decoder.bert.layers[0].cross_attention.qkv.weight.grad is not None


def test_save_load_round_trip_and_bertshare(tmp_path: Path):
    model, (ids, mask) = seq2seq(tie=True), sources()
    assert model.decoder.bert.layers[1].attention.qkv.weight is \
        model.encoder.bert.layers[1].attention.qkv.weight
    model.save_pretrained(tmp_path)
    loaded = EncoderDecoderModel.from_pretrained(tmp_path)
    assert loaded.config.tie_encoder_decoder
    assert loaded.decoder.bert.embeddings.word.weight is loaded.encoder.bert.embeddings.word.weight
    assert torch.equal(loaded.generate(ids, mask, num_beams=2), model.generate(ids, mask,
                                                                                num_beams=2))


def test_decoder_checkpoints_never_load_as_encoders(tmp_path: Path):
    torch.manual_seed(0)
    BertLMHeadModel(BertConfig(**SMALL, is_decoder=True, add_cross_attention=True)
                    ).save_pretrained(tmp_path / "dec")
    with pytest.raises(CheckpointError, match="BertModel is an encoder"):
        BertModel.from_pretrained(tmp_path / "dec")
    with pytest.raises(CheckpointError, match="cross-attention weights"):  # config edited
        BertModel.from_pretrained(tmp_path / "dec", is_decoder=False, add_cross_attention=False)
    with pytest.raises(ConfigError, match="is_decoder"):
        BertModel(BertConfig(**SMALL, is_decoder=True))


def test_missing_cross_attention_is_named(tmp_path: Path, caplog):
    BertModel(BertConfig(**SMALL)).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="needs is_decoder=True"):
        BertLMHeadModel.from_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        _, report = BertLMHeadModel.from_pretrained(tmp_path, is_decoder=True,
                                                    add_cross_attention=True,
                                                    output_loading_info=True)
    assert "bert.layers.0.cross_attention.qkv.weight" in caplog.text
    assert "no cross-attention weights" in caplog.text
    assert sum(".cross_attention" in name for name in report.new) == 2 * 6


def test_config_switches_persist(tmp_path: Path):
    config = BertConfig(**SMALL, sinusoidal_pos_embds=True, is_decoder=True,
                        add_cross_attention=True)
    config.save_pretrained(tmp_path)
    loaded = BertConfig.from_pretrained(tmp_path)
    assert (loaded.sinusoidal_pos_embds, loaded.is_decoder, loaded.add_cross_attention) == (
        True, True, True)
    assert "is_decoder" not in BertConfig(**SMALL).to_dict()


def test_prepare_for_inference_keeps_outputs():
    model, (ids, mask) = seq2seq(), sources()
    want = model.generate(ids, mask, num_beams=2)
    assert torch.equal(model.prepare_for_inference().generate(ids, mask, num_beams=2), want)
    lm = BertLMHeadModel(BertConfig(**SMALL, is_decoder=True))
    assert lm.prepare_for_inference() is lm and not lm.training


def test_generation_config_defaults_come_from_the_model():
    model, (ids, mask) = seq2seq(), sources()
    config = GenerationConfig(max_new_tokens=5)
    assert torch.equal(model.generate(ids, mask, config), model.generate(ids, mask,
                                                                         max_new_tokens=5))
    assert model.generate(ids, mask, config)[:, 0].tolist() == [2, 2]
