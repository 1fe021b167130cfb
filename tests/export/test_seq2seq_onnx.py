"""ONNX export of an encoder–decoder (issue 16): ``bertkit export onnx`` writes the encoder and
the decoder-step graphs, ``--verify`` compares them with PyTorch (logits and greedy tokens),
and the check fails for weights that are not the exported ones."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bertkit.cli import main
from bertkit.errors import UsageError
from bertkit.export.onnx import ParityError
from bertkit.export.seq2seq import (
    DECODER_FILE,
    ENCODER_FILE,
    OnnxSeq2Seq,
    export_seq2seq_onnx,
    verify_seq2seq,
)
from bertkit.model.encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel
from tiny import tiny_config, word_tokenizer

WORDS = ["eins", "zwei", "drei", "one", "two", "three", "the", "quick", "brown", "fox"]


def _model(tokenizer, seed: int) -> EncoderDecoderModel:
    torch.manual_seed(seed)
    config = tiny_config(tokenizer.vocab_size, initializer_range=0.3, max_position_embeddings=64)
    decoder = dataclasses.replace(config, is_decoder=True, add_cross_attention=True)
    return EncoderDecoderModel(EncoderDecoderConfig(
        config, decoder, decoder_start_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id)).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq2seq-onnx")
    tokenizer = word_tokenizer(root, WORDS, max_length=64)
    model = _model(tokenizer, seed=0)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    return root, model, tokenizer


def test_cli_exports_both_graphs_and_verify_passes(exported, capsys) -> None:
    root, model, tokenizer = exported
    out = root / "onnx"
    assert main(["export", "onnx", "--model", str(root / "model"), "--out", str(out),
                 "--verify"]) == 0
    printed = capsys.readouterr().out
    assert (out / ENCODER_FILE).is_file() and (out / DECODER_FILE).is_file()
    assert "greedy tokens identical" in printed and "next_token_logits" in printed
    # The graphs have dynamic axes: another batch, source and prefix length than traced.
    runner = OnnxSeq2Seq(out)
    batch = tokenizer(["eins zwei drei eins zwei", "drei"], padding=True, return_tensors="np")
    tokens = runner.greedy(batch["input_ids"], batch["attention_mask"], max_new_tokens=12)
    with torch.no_grad():
        want = model.generate(torch.from_numpy(batch["input_ids"]),
                              torch.from_numpy(batch["attention_mask"]), max_new_tokens=12)
    np.testing.assert_array_equal(tokens, want.numpy())


def test_verify_fails_for_other_weights(exported) -> None:
    root, _, tokenizer = exported
    if not (root / "onnx" / DECODER_FILE).is_file():
        export_seq2seq_onnx(_model(tokenizer, seed=0), root / "onnx")
    other = _model(tokenizer, seed=1)
    with pytest.raises(ParityError, match="differs from PyTorch"):
        verify_seq2seq(root / "onnx", other, tokenizer=tokenizer)
    report = verify_seq2seq(root / "onnx", other, tokenizer=tokenizer, raise_on_failure=False)
    assert not report.encoder.ok and not report.step.ok and not report.greedy_identical


def test_an_encoder_decoder_needs_a_directory_and_no_task(exported, tmp_path, capsys) -> None:
    root, model, _ = exported
    blocker = tmp_path / "file.onnx"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="must name a directory"):
        export_seq2seq_onnx(model, blocker)
    assert main(["export", "onnx", "--model", str(root / "model"), "--out",
                 str(tmp_path / "o"), "--task", "masked-lm"]) == 2
    assert "is an encoder–decoder; its export is the encoder and the decoder step" in (
        capsys.readouterr().err)
    assert not (tmp_path / "o").exists()
