"""Encoder-decoder models against ``transformers`` itself: checkpoints load both ways with the
same teacher-forced logits, and generate() picks the same tokens (greedy and beam search)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from bertkit import BertLMHeadModel, EncoderDecoderModel

START, EOS, PAD = 2, 3, 0
SMALL = dict(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=48, max_position_embeddings=40, hidden_dropout_prob=0.0,
             attention_probs_dropout_prob=0.0, initializer_range=0.2)


def hf_seq2seq(seed: int, eos_bias: float = 0.0) -> transformers.EncoderDecoderModel:
    """A random small BERT2BERT; ``eos_bias`` makes the end token likelier, so that beams
    finish at different lengths."""
    torch.manual_seed(seed)
    config = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
        transformers.BertConfig(**SMALL),
        transformers.BertConfig(**SMALL, is_decoder=True, add_cross_attention=True))
    config.decoder_start_token_id, config.eos_token_id, config.pad_token_id = START, EOS, PAD
    model = transformers.EncoderDecoderModel(config=config).eval()
    with torch.no_grad():
        model.decoder.cls.predictions.bias[EOS] += eos_bias
    return model


def sources(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three right-padded sources of lengths 9, 6 and 3."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, SMALL["vocab_size"], (3, 9), generator=gen)
    mask = (torch.arange(9) < torch.tensor([9, 6, 3])[:, None]).long()
    return ids.masked_fill(mask == 0, PAD), mask


def until_eos(rows: torch.Tensor) -> list[list[int]]:
    """Each row up to its first end token: what follows is fill, which the two libraries
    choose differently (``transformers`` fills beams with the end token when pad is 0)."""
    out = []
    for row in rows.tolist():
        end = row.index(EOS, 1) + 1 if EOS in row[1:] else len(row)
        out.append(row[:end])
    return out


def test_transformers_checkpoint_loads_with_same_logits(tmp_path: Path):
    reference = hf_seq2seq(0)
    reference.save_pretrained(tmp_path)
    model = EncoderDecoderModel.from_pretrained(tmp_path)
    ids, mask = sources(1)
    labels = torch.randint(4, SMALL["vocab_size"], (3, 7))
    labels[0, 5:] = -100
    with torch.no_grad():
        want = reference(input_ids=ids, attention_mask=mask, labels=labels)
        got = model(ids, mask, labels=labels)
    assert (got.logits - want.logits).abs().max() <= 1e-5
    assert (got.encoder_last_hidden_state - want.encoder_last_hidden_state).abs().max() <= 1e-5
    torch.testing.assert_close(got.loss, want.loss, atol=1e-5, rtol=0)


def test_bertkit_checkpoint_loads_in_transformers(tmp_path: Path):
    reference = hf_seq2seq(2)
    reference.save_pretrained(tmp_path / "hf")
    EncoderDecoderModel.from_pretrained(tmp_path / "hf").save_pretrained(tmp_path / "bk")
    reloaded = transformers.EncoderDecoderModel.from_pretrained(tmp_path / "bk").eval()
    model = EncoderDecoderModel.from_pretrained(tmp_path / "bk")
    ids, mask = sources(3)
    targets = torch.randint(4, SMALL["vocab_size"], (3, 6))
    with torch.no_grad():
        want = reloaded(input_ids=ids, attention_mask=mask, decoder_input_ids=targets).logits
        got = model(ids, mask, targets).logits
        before = reference(input_ids=ids, attention_mask=mask, decoder_input_ids=targets).logits
    assert (got - want).abs().max() <= 1e-5
    assert (want - before).abs().max() == 0  # the round trip lost nothing


@pytest.mark.parametrize("cross", [False, True], ids=["causal-lm", "with-cross-attention"])
def test_lm_head_model_both_ways(tmp_path: Path, cross: bool):
    torch.manual_seed(4)
    config = transformers.BertConfig(**SMALL, is_decoder=True, add_cross_attention=cross)
    reference = transformers.BertLMHeadModel(config).eval()
    reference.save_pretrained(tmp_path / "hf")
    model = BertLMHeadModel.from_pretrained(tmp_path / "hf")
    model.save_pretrained(tmp_path / "bk")
    reloaded = transformers.BertLMHeadModel.from_pretrained(tmp_path / "bk").eval()
    ids = torch.randint(4, SMALL["vocab_size"], (2, 8))
    source = torch.randn(2, 5, SMALL["hidden_size"]) if cross else None
    with torch.no_grad():
        want = reference(ids, encoder_hidden_states=source, labels=ids)
        got = model(ids, encoder_hidden_states=source, labels=ids)
        again = reloaded(ids, encoder_hidden_states=source).logits
    assert (got.logits - want.logits).abs().max() <= 1e-5
    assert (again - want.logits).abs().max() <= 1e-5
    torch.testing.assert_close(got.loss, want.loss, atol=1e-5, rtol=0)


SEARCHES = [dict(num_beams=1), dict(num_beams=1, no_repeat_ngram_size=2, min_new_tokens=3),
            dict(num_beams=4, length_penalty=0.6, no_repeat_ngram_size=3),
            dict(num_beams=3, early_stopping=True), dict(num_beams=2, early_stopping="never",
                                                         length_penalty=2.0)]


@pytest.fixture(scope="module")
def model_pairs(tmp_path_factory) -> list[tuple[int, transformers.EncoderDecoderModel,
                                                EncoderDecoderModel]]:
    """Three random BERT2BERTs (end-token bias 0, 3.5, 8) and bertkit's load of each, built
    once for all the search settings (generation does not change the weights)."""
    root = tmp_path_factory.mktemp("seq2seq-parity")
    pairs = []
    for seed, eos_bias in ((5, 0.0), (6, 3.5), (7, 8.0)):
        reference = hf_seq2seq(seed, eos_bias)
        reference.save_pretrained(root / str(seed))
        pairs.append((seed, reference, EncoderDecoderModel.from_pretrained(root / str(seed))))
    return pairs


@pytest.mark.parametrize("options", SEARCHES, ids=lambda o: "-".join(f"{k}={v}" for k, v in
                                                                      o.items()))
def test_generate_matches_transformers(model_pairs, options: dict):
    finished_early = 0
    for seed, reference, model in model_pairs:
        ids, mask = sources(seed)
        want = reference.generate(ids, attention_mask=mask, max_new_tokens=10, do_sample=False,
                                  decoder_start_token_id=START, eos_token_id=EOS,
                                  pad_token_id=PAD, **options)
        got = model.generate(ids, mask, max_new_tokens=10, **options)
        assert until_eos(got) == until_eos(want), f"seed {seed}"
        finished_early += sum(len(row) < 11 for row in until_eos(got))
    assert finished_early, "no hypothesis ended before the limit: the end token went untested"


@pytest.mark.needs_artifacts
def test_warm_start_from_real_checkpoint_matches_transformers(tmp_path: Path, artifact):
    """bert-tiny (the SPLADE-tuned MLM checkpoint) warm-started as BERT2BERT, Rothe et al.:
    bertkit's model, saved and loaded by ``transformers``, generates the same tokens."""
    directory = artifact("splade-tiny")
    checkpoint = next(p.parent for p in directory.rglob("config.json"))
    torch.manual_seed(0)
    model, report = EncoderDecoderModel.from_encoder_decoder_pretrained(
        checkpoint, checkpoint, decoder_start_token_id=101, eos_token_id=102,
        output_loading_info=True)
    assert any(".cross_attention." in name for name in report.new)
    # only what an MLM checkpoint lacks starts fresh in the encoder: the pooler
    assert all(n.startswith("encoder.bert.pooler.") for n in report.new if n.startswith("enc"))
    model.save_pretrained(tmp_path)
    reference = transformers.EncoderDecoderModel.from_pretrained(tmp_path).eval()
    ids = torch.tensor([[101, 7592, 2088, 2003, 1037, 3231, 102],
                        [101, 2054, 2003, 2023, 102, 0, 0]])
    mask = ids.ne(0).long()
    for beams in (1, 3):
        want = reference.generate(ids, attention_mask=mask, max_new_tokens=8, num_beams=beams,
                                  do_sample=False, decoder_start_token_id=101,
                                  eos_token_id=102, pad_token_id=0)
        got = model.generate(ids, mask, max_new_tokens=8, num_beams=beams)
        assert [r[: r.index(102, 1) + 1] if 102 in r[1:] else r for r in got.tolist()] == [
            r[: r.index(102, 1) + 1] if 102 in r[1:] else r for r in want.tolist()]
