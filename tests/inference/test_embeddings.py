"""Embeddings: mask-aware pooling, layer selection, order restoration, file round trips,
errors, the CLI, and equality with the reference for all-MiniLM-L6-v2."""

from __future__ import annotations

import io
import json
import logging
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from bertkit import (
    BertModel,
    DataFormatError,
    InputError,
    RobertaModel,
    Tokenizer,
    UsageError,
)
from bertkit.cli import main
from bertkit.data.windows import make_windows
from bertkit.inference.embedding_files import (
    load_embeddings,
    read_texts,
    save_sentence_embeddings,
    save_token_embeddings,
)
from bertkit.inference.embeddings import (
    TokenVectors,
    cosine_similarity,
    max_pool,
    mean_pool,
    pool,
    semantic_search,
    sentence_embeddings,
    similar,
    token_embeddings,
)
from bertkit.inference.engine import Engine
from bertkit.inference.fastpath.prepacked import PrepackedLinear, prepacking_available
from tiny import tiny_config

SHORT = "the cat sat ."
LONG = "the dog ran far because it was tired and the cat sat on the mat and the sun is yellow ."
TEXTS = ["the sky is blue .", LONG, "a cat", SHORT, "i like playing", "the snow is white",
         "the grass is green and the sun is yellow", "."]


# ---------------------------------------------------------------------------- pooling


def test_pool_functions_ignore_padding() -> None:
    generator = torch.Generator().manual_seed(0)
    real = -torch.rand(2, 3, 5, generator=generator) - 0.5      # all negative: a 0 would win max
    for filler in (0.0, 1e4, -1e4, float("nan")):
        padded = torch.cat([real, torch.full((2, 4, 5), filler)], dim=1)   # (B, T=7, H)
        mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0]] * 2)
        torch.testing.assert_close(mean_pool(padded, mask), real.mean(dim=1))
        torch.testing.assert_close(max_pool(padded, mask), real.amax(dim=1))
        torch.testing.assert_close(pool(padded, mask, "cls"), real[:, 0])


def test_rows_of_different_lengths_pool_their_own_tokens() -> None:
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).view(2, 4, 1)    # (B, T, H=1)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    assert mean_pool(hidden, mask).flatten().tolist() == [0.5, 5.5]
    assert max_pool(hidden, mask).flatten().tolist() == [1.0, 7.0]


@pytest.mark.parametrize("pooling", ["mean", "max", "cls"])
def test_vector_does_not_depend_on_padding(tiny_encoder: BertModel, tiny_tokenizer: Tokenizer,
                                           pooling: str) -> None:
    alone = sentence_embeddings(tiny_encoder, tiny_tokenizer, [SHORT], pooling=pooling)
    # Batched with a much longer text, SHORT is padded by 20+ positions.
    batched = sentence_embeddings(tiny_encoder, tiny_tokenizer, [LONG, SHORT], pooling=pooling,
                                  batch_size=2)
    torch.testing.assert_close(batched[1], alone[0], atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------- layers


def test_layer_selection_picks_the_hidden_state(tiny_encoder: BertModel,
                                                tiny_tokenizer: Tokenizer) -> None:
    ids = torch.tensor([tiny_tokenizer.encode(SHORT)])
    with torch.inference_mode():
        states = tiny_encoder(ids, output_hidden_states=True).hidden_states    # 4 × (1, T, H)
    layers = [-1, 0, 2, -4]
    vectors = sentence_embeddings(tiny_encoder, tiny_tokenizer, [SHORT], pooling="cls",
                                  layers=layers)                                # (1, L, H)
    assert vectors.shape == (1, 4, 32)
    for j, layer in enumerate(layers):
        torch.testing.assert_close(vectors[0, j], states[layer][0, 0])
    (tokens,) = token_embeddings(tiny_encoder, tiny_tokenizer, [SHORT], layers=[-2, 1])
    assert tokens.tokens == ["[CLS]", "the", "cat", "sat", ".", "[SEP]"]
    torch.testing.assert_close(tokens.vectors[:, 0], states[-2][0])
    torch.testing.assert_close(tokens.vectors[:, 1], states[1][0])
    # one layer: (N, H); the default is the last layer
    torch.testing.assert_close(
        sentence_embeddings(tiny_encoder, tiny_tokenizer, [SHORT], pooling="cls")[0],
        states[-1][0, 0])


@pytest.mark.parametrize("layer", [4, -5, 100])
def test_layer_out_of_range_is_a_clear_error(tiny_encoder: BertModel, tiny_tokenizer: Tokenizer,
                                             layer: int) -> None:
    with pytest.raises(UsageError, match=rf"layer {layer} is out of range for a model with 3 "
                                         r"layers: use 0\.\.3"):
        sentence_embeddings(tiny_encoder, tiny_tokenizer, [SHORT], layers=[-1, layer])


# ---------------------------------------------------------------------------- batching


def test_length_sorting_restores_the_callers_order(tiny_encoder: BertModel,
                                                   tiny_tokenizer: Tokenizer) -> None:
    texts = TEXTS * 3
    random.Random(0).shuffle(texts)
    engine = Engine(tiny_encoder, tiny_tokenizer, batch_size=4)
    rows = engine.encode(texts)
    batches = list(engine.batches(rows))
    lengths = [length for batch in batches for length in batch.lengths]
    assert lengths == sorted(lengths, reverse=True), "batches are cut from length-sorted texts"
    assert sorted(i for batch in batches for i in batch.indices) == list(range(len(texts)))
    assert engine.map(rows, lambda batch: batch.indices) == list(range(len(texts)))
    batched = sentence_embeddings(engine, None, texts, normalize=True)
    one_by_one = torch.cat([sentence_embeddings(tiny_encoder, tiny_tokenizer, [t],
                                                normalize=True) for t in texts])
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=1e-5)
    tokens = token_embeddings(engine, None, texts)
    assert [t.tokens for t in tokens] == [
        tiny_tokenizer.convert_ids_to_tokens(tiny_tokenizer.encode(x)) for x in texts]


def test_long_texts_are_embedded_whole_through_windows(tiny_encoder: BertModel,
                                                      tiny_tokenizer: Tokenizer) -> None:
    long_text = " ".join([LONG] * 3)                     # 65 tokens, the model takes 40
    engine = Engine(tiny_encoder, tiny_tokenizer, batch_size=3)
    full = tiny_tokenizer.encode(long_text)
    assert len(full) > engine.max_length
    texts = [SHORT, long_text, "a cat"]
    short_alone = sentence_embeddings(engine, None, [SHORT, "a cat"])
    vectors = sentence_embeddings(engine, None, texts)
    torch.testing.assert_close(vectors[[0, 2]], short_alone, atol=1e-5, rtol=1e-5)

    (tokens,) = token_embeddings(engine, None, [long_text], layers=[-1, 1])
    assert tokens.token_ids == full, "every token once, none dropped, in order"
    assert tokens.vectors.shape == (len(full), 2, 32)
    # Each token's vector is its max-context window's: check one window's share directly.
    windows = make_windows(tiny_tokenizer, [long_text], max_length=engine.max_length)
    assert len(windows) > 1
    for index, window in enumerate(windows.windows):
        with torch.inference_mode():
            states = tiny_encoder(torch.tensor([window.input_ids]),
                                  output_hidden_states=True).hidden_states
        for t in window.span.start, window.span.end - 1:
            if windows.best_window[0][t] == index:
                position = window.position_of(t)
                torch.testing.assert_close(tokens.vectors[1 + t, 0], states[-1][0, position])
                torch.testing.assert_close(tokens.vectors[1 + t, 1], states[1][0, position])
    # The sentence vector pools exactly those token vectors, each once.
    torch.testing.assert_close(vectors[1], tokens.vectors[:, 0].mean(dim=0), atol=1e-5,
                               rtol=1e-5)
    maxed = sentence_embeddings(engine, None, [long_text], pooling="max", layers=[1])
    torch.testing.assert_close(maxed[0], tokens.vectors[:, 1].amax(dim=0))


def test_truncation_only_on_request(tiny_encoder: BertModel, tiny_tokenizer: Tokenizer) -> None:
    long_text = " ".join([LONG] * 3)
    cut = token_embeddings(tiny_encoder, tiny_tokenizer, [long_text], truncate=True)[0]
    assert len(cut.tokens) == 40 and cut.tokens[-1] == "[SEP]"
    engine = Engine(tiny_encoder, tiny_tokenizer)
    with pytest.raises(InputError, match=r"text 0 has 65 tokens, which exceeds the model's 40"):
        engine.encode([long_text])


def test_bad_arguments(tiny_encoder: BertModel, tiny_tokenizer: Tokenizer) -> None:
    with pytest.raises(UsageError, match="pooling='sum'"):
        sentence_embeddings(tiny_encoder, tiny_tokenizer, [SHORT], pooling="sum")
    with pytest.raises(UsageError, match="batch_size=0"):
        sentence_embeddings(tiny_encoder, tiny_tokenizer, [SHORT], batch_size=0)
    with pytest.raises(UsageError, match="text 1 is int"):
        sentence_embeddings(tiny_encoder, tiny_tokenizer, [SHORT, 3])
    assert sentence_embeddings(tiny_encoder, tiny_tokenizer, []).shape == (0, 32)


def test_bfloat16_vectors_stay_close(tiny_encoder: BertModel, tiny_tokenizer: Tokenizer) -> None:
    fp32 = sentence_embeddings(tiny_encoder, tiny_tokenizer, TEXTS)
    cast = Engine(BertModel(tiny_encoder.config), tiny_tokenizer)
    cast.model.load_state_dict(tiny_encoder.state_dict())
    cast.model.to(torch.bfloat16).eval()
    bf16 = sentence_embeddings(cast, None, TEXTS)
    assert bf16.dtype == torch.float32
    assert torch.cosine_similarity(bf16, fp32).min() > 0.99
    autocast = sentence_embeddings(Engine(tiny_encoder, tiny_tokenizer, autocast=True), None,
                                   TEXTS)
    assert torch.cosine_similarity(autocast, fp32).min() > 0.99


# ---------------------------------------------------------------------------- search


def test_semantic_search_ranks_by_cosine() -> None:
    corpus = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    queries = torch.tensor([[2.0, 0.1], [0.0, -3.0]])
    hits = semantic_search(queries, corpus, top_k=2)
    assert [i for i, _ in hits[0]] == [0, 2]
    assert hits[0][0][1] == pytest.approx(cosine_similarity(queries, corpus)[0, 0].item())
    assert hits[1][0][0] in (0, 3)
    assert len(semantic_search(queries, corpus, top_k=10)[0]) == 4
    with pytest.raises(UsageError, match="top_k=0"):
        semantic_search(queries, corpus, top_k=0)


# ---------------------------------------------------------------------------- files


def test_read_texts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "in.txt"
    file.write_text("first\n\n  \nsecond line\r\nthird", encoding="utf-8")
    source = read_texts(file)
    assert source.texts == ["first", "second line", "third"]
    assert source.lines == [1, 4, 5] and source.skipped_blank == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("a\nb\n"))
    assert read_texts("-").texts == ["a", "b"]


@pytest.mark.parametrize("content", ["", "\n\n   \n"])
def test_empty_input_file_is_an_error_naming_it(tmp_path: Path, content: str) -> None:
    file = tmp_path / "empty.txt"
    file.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError, match=re.escape(f"{file}: no texts to embed")):
        read_texts(file)
    with pytest.raises(DataFormatError, match="does not exist"):
        read_texts(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin1\.txt: not UTF-8"):
        read_texts(tmp_path / "latin1.txt")


@pytest.mark.parametrize("shape", [(3, 8), (3, 2, 8)])
@pytest.mark.parametrize("suffix", [".npy", ".jsonl", ".safetensors"])
def test_sentence_vectors_round_trip(tmp_path: Path, suffix: str, shape: tuple[int, ...]) -> None:
    vectors = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    texts = ["a", 'quote " and\nnewline', "ü"]
    path = tmp_path / f"out{suffix}"
    save_sentence_embeddings(path, vectors, texts=texts, lines=[1, 3, 4],
                             metadata={"pooling": "mean", "layers": [-1]})
    loaded = load_embeddings(path)
    if suffix == ".jsonl":
        records = loaded["records"]
        assert [r["text"] for r in records] == texts and [r["line"] for r in records] == [1, 3, 4]
        array = np.array([r["embedding"] for r in records], dtype=np.float32)
    else:
        array = loaded["embeddings"]
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, vectors.numpy())  # exact, JSON included
    if suffix == ".safetensors":
        assert loaded["lines"].tolist() == [1, 3, 4]
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file is left behind"


@pytest.mark.parametrize("suffix", [".jsonl", ".safetensors"])
def test_token_vectors_round_trip(tmp_path: Path, suffix: str) -> None:
    generator = torch.Generator().manual_seed(1)
    items = [TokenVectors(["[CLS]", "a", "[SEP]"], [2, 16, 3], torch.randn(3, 2, 4,
                                                                           generator=generator),
                          [-1, -2]),
             TokenVectors(["[CLS]", "[SEP]"], [2, 3], torch.randn(2, 2, 4, generator=generator),
                          [-1, -2])]
    path = tmp_path / f"tokens{suffix}"
    save_token_embeddings(path, items, texts=["a", ""])
    loaded = load_embeddings(path)
    if suffix == ".jsonl":
        for item, record in zip(items, loaded["records"], strict=True):
            assert [f["token"] for f in record["features"]] == item.tokens
            assert [[layer["index"] for layer in f["layers"]] for f in record["features"]] == \
                [[-1, -2]] * len(item.tokens)
            values = np.array([[layer["values"] for layer in f["layers"]]
                               for f in record["features"]], dtype=np.float32)
            np.testing.assert_array_equal(values, item.vectors.numpy())
    else:
        offsets = loaded["offsets"].tolist()
        assert offsets == [0, 3, 5]
        for n, item in enumerate(items):
            np.testing.assert_array_equal(loaded["vectors"][offsets[n]:offsets[n + 1]],
                                          item.vectors.numpy())
            assert loaded["token_ids"][offsets[n]:offsets[n + 1]].tolist() == item.token_ids
    with pytest.raises(UsageError, match=r"do not fit one \.npy array"):
        save_token_embeddings(tmp_path / "tokens.npy", items)


def test_unknown_output_format(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown format '\.csv'"):
        save_sentence_embeddings(tmp_path / "x.csv", torch.zeros(1, 2))


# ---------------------------------------------------------------------------- CLI


def test_cli_embed_and_similar(encoder_dir: Path, tiny_encoder: BertModel,
                               tiny_tokenizer: Tokenizer, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS[:4]) + "\n\n" + "\n".join(TEXTS[4:]) + "\n",
                      encoding="utf-8")
    out = tmp_path / "vectors.npy"
    assert main(["embed", "--model", str(encoder_dir), "--input", str(corpus), "--output",
                 str(out), "--pooling", "max", "--normalize", "--batch-size", "3"]) == 0
    assert "1 blank line skipped" in capsys.readouterr().err
    expected = sentence_embeddings(tiny_encoder, tiny_tokenizer, TEXTS, pooling="max",
                                   normalize=True)
    np.testing.assert_allclose(np.load(out), expected.numpy(), atol=1e-5)

    tokens = tmp_path / "tokens.jsonl"
    assert main(["embed", "--model", str(encoder_dir), "--input", str(corpus), "--output",
                 str(tokens), "--pooling", "none", "--layers", "-1,-2,-3,-4"]) == 0
    records = [json.loads(line) for line in tokens.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4, 6, 7, 8, 9]
    assert [layer["index"] for layer in records[0]["features"][0]["layers"]] == [-1, -2, -3, -4]

    assert main(["embed", "--model", str(encoder_dir), "--input", str(corpus), "--output",
                 str(out), "--layers", "-5"]) == 2
    assert "layer -5 is out of range" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    assert main(["embed", "--model", str(encoder_dir), "--input", str(empty), "--output",
                 str(out)]) == 2
    assert f"{empty}: no texts to embed" in capsys.readouterr().err

    assert main(["similar", "--model", str(encoder_dir), "--corpus", str(corpus),
                 "--json", "--top-k", "2", TEXTS[2]]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["matches"][0]["text"] == TEXTS[2]
    assert result["matches"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert result["matches"][0]["line"] == 3
    matches = similar(tiny_encoder, tiny_tokenizer, [TEXTS[2]], TEXTS, top_k=2)[0]
    assert [m.text for m in matches] == [r["text"] for r in result["matches"]]


# ---------------------------------------------------------------------------- reference


@pytest.mark.needs_artifacts
def test_minilm_sentence_vectors_equal_the_reference(minilm_dir: Path) -> None:
    transformers = pytest.importorskip("transformers")
    texts = ["A man is playing a guitar.", "Hi!",
             "The stock market fell sharply today as investors weighed the latest inflation "
             "figures and what they mean for interest rates.",
             "Someone plays an instrument.", "Shares dropped steeply on Wall Street.",
             "The cat sat on the mat because it was tired."]
    engine = Engine.from_pretrained(minilm_dir, device="cpu", batch_size=2)
    if prepacking_available():  # what is compared below is the prepared (prepacked) model
        assert any(isinstance(m, PrepackedLinear) for m in engine.model.modules())
    ours = sentence_embeddings(engine, None, texts, pooling="mean", normalize=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    model = transformers.AutoModel.from_pretrained(minilm_dir).eval()
    inputs = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**inputs).last_hidden_state
    reference = torch.nn.functional.normalize(mean_pool(hidden, inputs["attention_mask"]), dim=-1)
    cosine = torch.cosine_similarity(ours, reference)
    assert cosine.min().item() >= 0.99999, cosine
    # and the search built on them finds the paraphrases
    (hits,) = similar(engine, None, ["a person making music"], texts, top_k=2)
    assert {h.index for h in hits} == {0, 3}


def test_loading_for_inference_warns_only_about_what_matters(
        mlm_dir: Path, encoder_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    from bertkit import BertForSequenceClassification

    with caplog.at_level(logging.INFO, logger="bertkit"):
        Engine.from_pretrained(mlm_dir, device="cpu")      # no pooler, an unused MLM head
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "not used for inference" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        Engine.from_pretrained(encoder_dir, device="cpu",
                               model_class=BertForSequenceClassification)
    assert "classifier" in caplog.text and "initialised fresh" in caplog.text


def test_engine_loads_the_checkpoints_family_and_its_position_limit(
        tmp_path: Path, tiny_tokenizer: Tokenizer) -> None:
    """A RoBERTa folder loads as RoBERTa (not refused as a BERT mismatch), and the longest
    input is the position table minus RoBERTa's padding offset, not the table's size."""
    config = tiny_config(len(tiny_tokenizer), model_type="roberta", pad_token_id=0,
                         type_vocab_size=1)
    RobertaModel(config).save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    engine = Engine.from_pretrained(tmp_path, device="cpu")
    assert isinstance(engine.model, RobertaModel)
    assert engine.max_length == config.max_tokens == config.max_position_embeddings - 1
    vectors = sentence_embeddings(engine, None, ["the cat sat on the mat .", "the sky is blue ."])
    assert vectors.shape == (2, config.hidden_size)
    assert torch.isfinite(vectors).all()
