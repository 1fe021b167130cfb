"""Tests for bertkit.inference.alignment: word-level cross-attention of a translation, drawn
by the attention-map PNG and HTML views."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("bertkit.model.encoder_decoder",
                    reason="EncoderDecoderModel (branch h-decoder) is not merged yet")
from bertkit.inference.alignment import cross_attention_maps, mean_over_heads
from bertkit.inference.attention_maps import attention_html
from bertkit.runs.seq2seq import build_seq2seq_model
from bertkit.tokenization import Tokenizer


def test_alignment_rows_are_target_words_columns_source_words(workspace):
    tokenizer = Tokenizer.from_pretrained(workspace["bert"])
    torch.manual_seed(0)
    model, _ = build_seq2seq_model(workspace["bert"], tokenizer=tokenizer)
    maps = cross_attention_maps(model, tokenizer, "eins zwei drei", "one two three")
    assert maps.key_tokens == ["[CLS]", "eins", "zwei", "drei", "[SEP]"]
    assert maps.tokens == ["one", "two", "three", "[SEP]"]  # the predicted tokens
    for probs in maps.probabilities.values():
        assert probs.shape == (maps.num_heads, 4, 5)
        assert torch.allclose(probs.sum(-1), torch.ones(maps.num_heads, 4), atol=1e-5)
    mean = mean_over_heads(maps)
    assert torch.allclose(mean.head(-1, 0), maps.probabilities[maps.num_layers - 1].mean(0))
    page = attention_html(maps)
    assert '"keyTokens": ["[CLS]", "eins"' in page and "source word" in page


def test_alignment_png_and_html(workspace, tmp_path):
    pytest.importorskip("matplotlib")
    from bertkit.inference.alignment import write_alignment

    tokenizer = Tokenizer.from_pretrained(workspace["bert"])
    model, _ = build_seq2seq_model(workspace["bert"], tokenizer=tokenizer)
    drawn = write_alignment(model, tokenizer, "vier fünf", "four five", tmp_path / "a.html",
                            tmp_path / "align.png", title="t")
    assert drawn.text == "vier fünf → four five"
    assert drawn.files == [tmp_path / "a.html", tmp_path / "align.png"]
    assert (tmp_path / "align.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '"keyTokens": ["[CLS]", "vier", "fünf", "[SEP]"]' in (
        tmp_path / "a.html").read_text(encoding="utf-8")


def test_heads_averaged_map_is_titled_as_the_mean(workspace):
    pytest.importorskip("matplotlib")
    from bertkit.inference.attention_maps import plot_attention

    tokenizer = Tokenizer.from_pretrained(workspace["bert"])
    model, _ = build_seq2seq_model(workspace["bert"], tokenizer=tokenizer)
    maps = cross_attention_maps(model, tokenizer, "eins zwei", "one two")
    assert plot_attention(maps, -1, 1).axes[0].get_title().startswith("layer 1, head 1\n")
    mean = plot_attention(mean_over_heads(maps), -1, 0).axes[0].get_title()
    assert mean.startswith(f"layer 1, mean of {maps.num_heads} heads\n"), mean


def test_cli_align_draws_through_write_alignment(workspace, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from bertkit.cli import main

    tokenizer = Tokenizer.from_pretrained(workspace["bert"])
    model, _ = build_seq2seq_model(workspace["bert"], tokenizer=tokenizer)
    model.save_pretrained(tmp_path / "mt")
    tokenizer.save_pretrained(tmp_path / "mt")
    html = tmp_path / "only.html"
    assert main(["seq2seq", "align", "--model", str(tmp_path / "mt"), "vier fünf",
                 "--target", "four five", "--html", str(html), "--device", "cpu"]) == 0
    assert capsys.readouterr().out.splitlines() == ["vier fünf → four five", f"wrote {html}"]
    assert '"keyTokens": ["[CLS]", "vier", "fünf", "[SEP]"]' in html.read_text(encoding="utf-8")
    png = tmp_path / "only.png"
    assert main(["seq2seq", "align", "--model", str(tmp_path / "mt"), "vier fünf",
                 "--target", "four five", "--png", str(png), "--device", "cpu"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
