"""Tests for bertkit.runs.seq2seq and `bertkit seq2seq`: a tiny warm-started BERT2BERT learns
a word-for-word toy translation; resume is exact; bad inputs fail clearly."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from bertkit.errors import BertkitError, CheckpointError

# The model half of issue 16 (h-decoder); until it is merged there is nothing to train.
pytest.importorskip("bertkit.model.encoder_decoder",
                    reason="EncoderDecoderModel (branch h-decoder) is not merged yet")
from bertkit.runs.seq2seq import (
    Seq2SeqSettings,
    evaluate_seq2seq,
    train_seq2seq,
)


def _settings(workspace, out, **overrides):
    base = dict(train=workspace["train"], dev=workspace["dev"], output_dir=out,
                encoder=workspace["bert"], batch_size=8, learning_rate=3e-3, warmup_steps=0,
                max_steps=12, log_every=1, progress=False, max_source_length=8,
                max_target_length=6, max_new_tokens=6, device="cpu")
    return Seq2SeqSettings(**{**base, **overrides})


def test_warm_start_loss_falls_and_run_directory_is_complete(workspace, tmp_path):
    result = train_seq2seq(_settings(workspace, tmp_path / "run", max_steps=60))
    assert result.step == 60 and result.stop_reason == "max_steps"
    first, last = sum(result.train_losses[:5]) / 5, sum(result.train_losses[-5:]) / 5
    assert last < 0.7 * first
    assert any("crossattention" in name or "cross" in name for name in result.new_weights)
    out = tmp_path / "run"
    for name in ("config.json", "model.safetensors", "seq2seq.json", "final_metrics.json",
                 "predictions.jsonl", "provenance.json", "metrics.jsonl"):
        assert (out / name).is_file(), name
    final = json.loads((out / "final_metrics.json").read_text())
    assert final["copy_baseline"]["bleu"] <= 100 and "tok:13a" in final["bleu_signature"]
    scores = evaluate_seq2seq(out, workspace["dev"], device="cpu", max_new_tokens=6)
    assert scores["bleu"] == final["bleu"] and scores["chrf"] == final["chrf"]


def test_resume_reproduces_the_uninterrupted_losses(workspace, tmp_path):
    full_dir = tmp_path / "full"
    settings = _settings(workspace, full_dir, max_steps=8, dev=None, checkpoint_every=4,
                         keep_checkpoints=None)
    full = train_seq2seq(settings)
    # an interrupted copy: the run as it was after step 4
    part = tmp_path / "part"
    shutil.copytree(full_dir, part)
    shutil.rmtree(part / "checkpoints" / "step-00000008")
    resumed = train_seq2seq(dataclasses.replace(settings, output_dir=part), resume=True)
    assert resumed.step == 8
    assert resumed.train_losses == pytest.approx(full.train_losses[4:], abs=1e-6)
    with pytest.raises(CheckpointError, match="label_smoothing"):
        train_seq2seq(dataclasses.replace(settings, output_dir=part, label_smoothing=0.0),
                      resume=True)


def test_random_init_same_size_and_bf16_accumulation(workspace, tmp_path):
    result = train_seq2seq(_settings(workspace, tmp_path / "rand", random=True, dev=None,
                                     max_steps=3, grad_accum_steps=2, precision="bf16"))
    assert result.step == 3 and all(torch.isfinite(torch.tensor(result.train_losses)))
    config = json.loads((tmp_path / "rand" / "config.json").read_text())
    assert config["encoder"]["hidden_size"] == config["decoder"]["hidden_size"] == 32
    assert config["decoder"]["add_cross_attention"] is True


def test_cli_train_generate_and_bad_pairs(workspace, tmp_path, capsys):
    from bertkit.cli import main

    out = tmp_path / "cli"
    assert main(["seq2seq", "train", "--train", str(workspace["train"]), "--dev",
                 str(workspace["dev"]), "--out", str(out), "--encoder", str(workspace["bert"]),
                 "--share", "--max-steps", "2", "--max-new-tokens", "6", "--batch-size", "8",
                 "--no-progress", "--device", "cpu", "--max-source-length", "8",
                 "--max-target-length", "6"]) == 0
    assert "step=2" in capsys.readouterr().out
    assert main(["seq2seq", "generate", "--model", str(out), "eins zwei", "--device",
                 "cpu", "--max-new-tokens", "4"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    bad = tmp_path / "bad.tsv"
    bad.write_text("eins\tone\nzwei\n", encoding="utf-8")
    assert main(["seq2seq", "train", "--train", str(bad), "--out", str(tmp_path / "x"),
                 "--encoder", str(workspace["bert"])]) == 2
    assert "bad.tsv:2: has 1 tab-separated field(s)" in capsys.readouterr().err
    with pytest.raises(BertkitError, match="random=True"):
        train_seq2seq(_settings(workspace, tmp_path / "y", random=True, share=True))


def test_decoder_with_another_vocabulary_is_refused(workspace, tmp_path):
    """Targets are tokenised with the encoder's tokenizer; a decoder checkpoint whose own
    vocabulary differs would read them as other words, so the run refuses to start."""
    from bertkit import BertForMaskedLM
    from tiny import tiny_config, word_tokenizer

    other = tmp_path / "other"
    other.mkdir()
    tokenizer = word_tokenizer(other, ["un", "deux", "trois"], max_length=16)
    BertForMaskedLM(tiny_config(tokenizer.vocab_size, max_position_embeddings=16)
                    ).save_pretrained(other)
    tokenizer.save_pretrained(other)
    with pytest.raises(BertkitError, match=r"another vocabulary \(8 tokens\)"):
        train_seq2seq(_settings(workspace, tmp_path / "run", decoder=other, dev=None))


def test_lengths_beyond_the_positions_fail_before_training(workspace, tmp_path):
    """The tiny model has 16 positions: a dev translation cap of 20 tokens (21 positions with
    the start token) is refused up front, not after the training it would waste."""
    from bertkit.errors import UsageError

    with pytest.raises(UsageError, match=r"max_new_tokens=20 needs 21 decoder positions.*"
                                         r"16 positions.*at most 15"):
        train_seq2seq(_settings(workspace, tmp_path / "long", max_new_tokens=20))
    with pytest.raises(UsageError, match=r"max_source_length=17 needs 17 source tokens"):
        train_seq2seq(_settings(workspace, tmp_path / "long", max_source_length=17))
    assert not (tmp_path / "long").exists()  # nothing trained, nothing written


def test_one_translation_length_default():
    """``translate()``, a run's dev translations and the server share one token cap."""
    import inspect

    from bertkit.server.app import GenerateRequest
    from bertkit.tasks.translation import MAX_NEW_TOKENS, translate

    assert inspect.signature(translate).parameters["max_new_tokens"].default == MAX_NEW_TOKENS
    assert Seq2SeqSettings(train="t", output_dir="o", encoder="e").max_new_tokens \
        == MAX_NEW_TOKENS == GenerateRequest(texts=["x"]).max_new_tokens
