"""Learning a WordPiece vocabulary, then saving and loading it (and transformers reading it)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from bertkit.errors import TokenizerError
from bertkit.tokenization import SpecialTokens, Tokenizer, train_wordpiece

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture
def corpus(real_lines: list[str], tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(real_lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.needs_artifacts
def test_trained_vocab_has_requested_size_and_specials_first(corpus, real_lines, tmp_path):
    tok = train_wordpiece(corpus, vocab_size=2000, min_frequency=2)
    assert tok.vocab_size == len(tok) == 2000
    assert [tok.convert_ids_to_tokens(i) for i in range(5)] == SPECIALS
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id,
            tok.mask_token_id) == (0, 1, 2, 3, 4)
    vocab = tok.get_vocab()
    assert sum(t.startswith("##") for t in vocab) > 300  # it learned continuation pieces
    assert all(t == t.lower() for t in vocab if t not in SPECIALS)  # lowercase=True
    # A trained tokenizer must cover its own corpus with few [UNK]s.
    ids = tok(real_lines).input_ids
    n_unk = sum(row.count(tok.unk_token_id) for row in ids)
    assert n_unk < 0.01 * sum(map(len, ids))

    saved = tmp_path / "trained"
    tok.save_pretrained(saved)
    again = Tokenizer.from_pretrained(saved)
    kwargs = dict(padding=True, truncation=True, max_length=32, return_offsets_mapping=True)
    assert again(real_lines[:300], real_lines[300:600], **kwargs) == tok(
        real_lines[:300], real_lines[300:600], **kwargs)
    assert (saved / "vocab.txt").read_text(encoding="utf-8").splitlines()[:5] == SPECIALS


@pytest.mark.needs_artifacts
def test_transformers_loads_what_we_save(corpus, real_lines, tmp_path):
    transformers = pytest.importorskip("transformers")
    tok = train_wordpiece([corpus], vocab_size=1500, lowercase=False)
    assert any(t != t.lower() for t in tok.get_vocab())  # cased training keeps capitals
    tok.save_pretrained(tmp_path / "t")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "t"))
    texts = real_lines[:400]
    assert theirs(texts)["input_ids"] == tok(texts).input_ids
    assert theirs(texts[:50], texts[50:100])["token_type_ids"] == tok(
        texts[:50], texts[50:100]).token_type_ids


def test_custom_special_tokens_and_small_corpus_warning(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("hello world\nhello there\nworld peace\n" * 5, encoding="utf-8")
    special = SpecialTokens("<pad>", "<unk>", "<s>", "</s>", "<mask>")
    with pytest.warns(UserWarning, match=r"yielded only \d+ tokens of the 500 requested"):
        tok = train_wordpiece(path, vocab_size=500, special_tokens=special, min_frequency=1)
    assert [tok.convert_ids_to_tokens(i) for i in range(5)] == special.as_list()
    assert tok("hello world").input_ids == [2, tok.convert_tokens_to_ids("hello"),
                                            tok.convert_tokens_to_ids("world"), 3]


def test_training_errors_name_the_problem(tmp_path):
    with pytest.raises(TokenizerError, match=r"missing\.txt: training file does not exist"):
        train_wordpiece(tmp_path / "missing.txt")
    with pytest.raises(TokenizerError, match="training file is a directory"):
        train_wordpiece([tmp_path])
    with pytest.raises(TokenizerError, match="no training files"):
        train_wordpiece([])
    (tmp_path / "a.txt").write_text("a b c\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match="vocab_size=5"):
        train_wordpiece(tmp_path / "a.txt", vocab_size=5)
    with pytest.raises(TokenizerError, match="min_frequency=-1"):
        train_wordpiece(tmp_path / "a.txt", vocab_size=50, min_frequency=-1)
