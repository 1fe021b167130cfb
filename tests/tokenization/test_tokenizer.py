"""Unit tests on a small hand-written vocabulary (no downloads).

The special tokens deliberately sit at unusual ids (not 0..4, not BERT's 0/100..103) so that any
code assuming positions fails here.
"""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from bertkit.errors import BertkitError, TokenizerError
from bertkit.tokenization import Encoding, SpecialTokens, Tokenizer

VOCAB = [
    "[unused0]", "the", "[PAD]", "quick", "brown", "fox", "jump", "##s", "##ed", "over", "lazy",
    "dog", ",", ".", "!", "'", "a", "b", "c", "##a", "##b", "##c", "cafe", "un", "##able",
    "[UNK]", "want", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "?", "中", "文",
]


@pytest.fixture
def vocab_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "tok"
    directory.mkdir()
    (directory / "vocab.txt").write_text("".join(t + "\n" for t in VOCAB), encoding="utf-8")
    return directory


@pytest.fixture
def tok(vocab_dir: Path) -> Tokenizer:
    return Tokenizer.from_pretrained(vocab_dir)


def test_special_ids_are_looked_up_not_assumed(tok):
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id,
            tok.mask_token_id) == (2, 25, 27, 28, 29)
    assert tok.vocab_size == len(tok) == len(VOCAB)
    assert tok.get_vocab()["fox"] == 5


def test_pieces_and_ids(tok):
    # "foxes" has no "##es"/"##e" piece, so the whole word is [UNK] (never a partial match)
    assert tok.tokenize("The Foxes jumped, unable!") == [
        "the", "[UNK]", "jump", "##ed", ",", "un", "##able", "!"
    ]
    assert tok.tokenize("jumps over") == ["jump", "##s", "over"]
    assert tok.tokenize("Café") == ["cafe"]  # lower-cased and accent-stripped
    assert tok.tokenize("中文") == ["中", "文"]  # CJK split per character
    assert tok.tokenize("xyz") == ["[UNK]"]
    assert tok.encode("hello world") == [27, 30, 31, 28]
    assert tok.encode("hello", "world") == [27, 30, 28, 31, 28]
    assert tok.encode("hello", add_special_tokens=False) == [30]


def test_single_text_gives_flat_lists_and_batches_give_lists(tok):
    one = tok("hello world")
    assert isinstance(one, Encoding)
    assert one.input_ids == one["input_ids"] == [27, 30, 31, 28]
    assert one.token_type_ids == [0, 0, 0, 0] and one.attention_mask == [1, 1, 1, 1]
    pair = tok("hello", "the world")
    assert pair.token_type_ids == [0, 0, 0, 1, 1, 1]
    batch = tok(["hello", "the quick fox"])
    assert batch.input_ids == [[27, 30, 28], [27, 1, 3, 5, 28]]
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask"}
    with pytest.raises(AttributeError, match="offset_mapping"):
        _ = batch.offset_mapping


def test_padding_and_tensors(tok):
    out = tok(["hello", "the quick fox"], padding=True, return_tensors="pt")
    assert out.input_ids.dtype == torch.int64
    assert out.input_ids.tolist() == [[27, 30, 28, 2, 2], [27, 1, 3, 5, 28]]
    assert out.attention_mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert out.token_type_ids.tolist() == [[0] * 5] * 2
    arr = tok("hello", return_tensors="np", padding="max_length", max_length=6)
    assert isinstance(arr.input_ids, np.ndarray) and arr.input_ids.shape == (1, 6)
    multiple = tok(["hello"], padding=True, pad_to_multiple_of=8)
    assert len(multiple.input_ids[0]) == 8
    pairs = tok(["a", "a b c"], ["b", "c"], padding=True, return_tensors="np")
    assert pairs.token_type_ids.tolist() == [[0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1, 1]]
    empty = tok([], return_tensors="pt")
    assert empty.input_ids.shape == (0, 0)
    # max_length padding without truncation leaves long rows long (as transformers does) ...
    ragged = tok(["the quick brown fox", "a"], padding="max_length", max_length=4)
    assert [len(row) for row in ragged.input_ids] == [6, 4]
    # ... which tensors cannot hold
    with pytest.raises(TokenizerError, match=r"max_length=4: the longest sequence has 6 tokens"):
        tok(["the quick brown fox", "a"], padding="max_length", max_length=4,
            return_tensors="pt")
    special = tok(["a", "a b c"], padding=True, return_special_tokens_mask=True,
                  return_tensors="pt")
    assert special.special_tokens_mask.tolist() == [[1, 0, 1, 1, 1], [1, 0, 0, 0, 1]]
    assert list(special) == ["input_ids", "token_type_ids", "attention_mask",
                             "special_tokens_mask"]


def test_offsets_word_ids_and_special_mask(tok):
    text = "The Café, jumps"
    out = tok(text, return_offsets_mapping=True, return_word_ids=True,
              return_special_tokens_mask=True)
    pieces = tok.convert_ids_to_tokens(out.input_ids)
    assert pieces == ["[CLS]", "the", "cafe", ",", "jump", "##s", "[SEP]"]
    assert [text[s:e] for s, e in out.offset_mapping] == ["", "The", "Café", ",", "jump", "s", ""]
    assert out.word_ids == [None, 0, 1, 2, 3, 3, None]
    assert out.special_tokens_mask == [1, 0, 0, 0, 0, 0, 1]
    tensors = tok([text], return_word_ids=True, return_offsets_mapping=True, return_tensors="pt")
    assert tensors.word_ids.tolist() == [[-1, 0, 1, 2, 3, 3, -1]]
    assert tensors.offset_mapping.shape == (1, 7, 2)


def test_truncation(tok):
    out = tok("the quick brown fox jumps", truncation=True, max_length=4)
    assert out.input_ids == [27, 1, 3, 28]
    tok.model_max_length = 5
    assert len(tok("the quick brown fox jumps", truncation=True).input_ids) == 5
    pair = tok("the quick brown fox", "lazy dog", truncation="only_first", max_length=7)
    assert pair.input_ids == [27, 1, 3, 28, 10, 11, 28]
    pair = tok("a", "the quick brown fox", truncation="only_second", max_length=6)
    assert pair.input_ids == [27, 16, 28, 1, 3, 28]
    # truncation off (the default) leaves long texts whole, as transformers does
    assert len(tok("the quick brown fox jumps over the lazy dog").input_ids) == 12


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(truncation=True, max_length=2), r"max_length=2 is smaller than the 3 special"),
    (dict(truncation="only_second", max_length=3), r"max_length=3 leaves no room beyond"),
    (dict(truncation="only_second", max_length=6),
     r"pair 0: .*first sequence.*4 tokens plus 3 special.*second sequence \(2 tokens\)"),
    (dict(truncation="only_first", max_length=5),  # would leave the first one empty
     r"pair 0: .*second sequence.*2 tokens plus 3 special.*first sequence \(4 tokens\)"),
    (dict(truncation="middle"), r"truncation='middle'"),
    (dict(padding="left"), r"padding='left'"),
    (dict(return_tensors="tf"), r"return_tensors='tf'"),
    (dict(padding=True, pad_to_multiple_of=0), r"pad_to_multiple_of=0"),
])
def test_bad_pair_arguments_raise_clear_errors(tok, kwargs, pattern):
    with pytest.raises(TokenizerError, match=pattern):
        tok(["the quick brown fox"], ["lazy dog"], **kwargs)


def test_only_second_error_names_the_failing_pair(tok):
    firsts = ["a", "a", "the quick brown fox jumps"]
    with pytest.raises(TokenizerError, match=r"pair 2: .*6 tokens"):
        tok(firsts, ["b c", "b", "lazy dog"], truncation="only_second", max_length=7)
    # the tokenizer still works (and uses the right settings) after the failure
    assert tok("a b c").input_ids == [27, 16, 17, 18, 28]


def test_bad_inputs_raise_clear_errors(tok):
    with pytest.raises(TokenizerError, match="text 1 is int"):
        tok(["fine", 3])
    with pytest.raises(TokenizerError, match="text_pair 0 is NoneType"):
        tok(["fine"], [None])
    with pytest.raises(TokenizerError, match="2 texts but 1 text_pairs"):
        tok(["a", "b"], ["c"])
    with pytest.raises(TokenizerError, match="got NoneType"):
        tok(None)
    with pytest.raises(TokenizerError, match=r"only_second.*needs text pairs"):
        tok("a b", truncation="only_second", max_length=3)
    with pytest.raises(TokenizerError, match=r"different lengths \(3\.\.5 tokens\).*padding"):
        tok(["a", "a b c"], return_tensors="pt")
    with pytest.raises(TokenizerError, match="outside the vocabulary"):
        tok.decode([1, 2, 999])
    with pytest.raises(TokenizerError, match="id 999"):
        tok.convert_ids_to_tokens(999)
    assert issubclass(TokenizerError, BertkitError)


def test_decode_and_conversions(tok):
    ids = tok("The quick fox jumps!").input_ids
    assert tok.decode(ids) == "the quick fox jumps!"
    assert tok.decode(ids, skip_special_tokens=False) == "[CLS] the quick fox jumps! [SEP]"
    padded = tok(["hello", "the quick fox"], padding=True, return_tensors="pt")
    assert tok.batch_decode(padded.input_ids) == ["hello", "the quick fox"]
    assert tok.decode(torch.tensor(ids)) == tok.decode(np.array(ids)) == tok.decode(ids)
    assert tok.convert_tokens_to_ids(["fox", "nope"]) == [5, 25]
    assert tok.convert_tokens_to_ids("[MASK]") == 29
    assert tok.convert_ids_to_tokens([27, 5, 28], skip_special_tokens=True) == ["fox"]
    assert tok("hello [MASK] world").input_ids == [27, 30, 29, 31, 28]  # literal mask token


def test_pre_split_words(tok):
    out = tok(["The", "foxes", "jumped"], is_split_into_words=True, return_word_ids=True)
    assert out.word_ids == [None, 0, 1, 2, 2, None]  # foxes -> [UNK], jumped -> jump ##ed
    batch = tok([["a", "b"], ["c"]], is_split_into_words=True)
    assert batch.input_ids == [[27, 16, 17, 28], [27, 18, 28]]


def test_save_and_load_round_trip(tok, tmp_path):
    texts = ["The quick brown fox!", "Café 中文", "", "jumps over the lazy dog"]
    kwargs = dict(padding=True, return_offsets_mapping=True, return_word_ids=True)
    before = tok(texts, texts[::-1], **kwargs)
    target = tmp_path / "saved"
    written = tok.save_pretrained(target)
    assert sorted(p.name for p in written) == ["tokenizer.json", "tokenizer_config.json",
                                               "vocab.txt"]
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in written)
    assert (target / "vocab.txt").read_text(encoding="utf-8").splitlines() == VOCAB
    config = json.loads((target / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["do_lower_case"] is True and config["cls_token"] == "[CLS]"
    assert config["tokenizer_class"] == "BertTokenizer" and config["model_max_length"] == 512
    saved = json.loads((target / "tokenizer.json").read_text(encoding="utf-8"))
    assert saved["truncation"] is None and saved["padding"] is None  # per-call state not saved
    for source in (target, target / "tokenizer.json", target / "vocab.txt"):
        again = Tokenizer.from_pretrained(source)
        assert again(texts, texts[::-1], **kwargs) == before, source
        assert again.cls_token_id == tok.cls_token_id


def test_casing_switches_from_the_config(vocab_dir):
    (vocab_dir / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    cased = Tokenizer.from_pretrained(vocab_dir)
    assert cased.do_lower_case is False
    assert cased.tokenize("The the") == ["[UNK]", "the"]
    assert Tokenizer.from_pretrained(vocab_dir, do_lower_case=True).tokenize("The") == ["the"]


def test_custom_special_tokens_from_config(tmp_path):
    vocab = ["<pad>", "<unk>", "<s>", "</s>", "<mask>", "hello"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = {"pad_token": "<pad>", "unk_token": {"content": "<unk>"}, "cls_token": "<s>",
              "sep_token": "</s>", "mask_token": "<mask>"}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    tok = Tokenizer.from_pretrained(tmp_path)
    assert tok.special_tokens == SpecialTokens("<pad>", "<unk>", "<s>", "</s>", "<mask>")
    assert tok("hello").input_ids == [2, 5, 3]


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(TokenizerError, match=r"nowhere: no such file or directory.*vocab\.txt"):
        Tokenizer.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(TokenizerError, match=r"looked for tokenizer\.json or vocab\.txt"):
        Tokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match="no unknown token"):
        Tokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("[UNK]\nhello\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match=r"lacks the special token\(s\) \['\[CLS\]'"):
        Tokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(TokenizerError, match=r"tokenizer\.json: not a valid tokenizers file"):
        Tokenizer.from_pretrained(tmp_path)


def test_special_tokens_are_validated():
    with pytest.raises(TokenizerError, match="distinct"):
        SpecialTokens(pad="[X]", unk="[X]")
    with pytest.raises(TokenizerError, match="'cls'"):
        SpecialTokens(cls=" [CLS]")


def test_concurrent_calls_keep_their_own_settings(tok):
    texts = ["the quick brown fox jumps over the lazy dog", "a"] * 50  # long enough to overlap
    settings = [dict(), dict(padding=True), dict(truncation=True, max_length=4),
                dict(padding="max_length", max_length=16)]
    expected = [tok(texts, **kw) for kw in settings]
    failures: list[int] = []

    def worker(which: int) -> None:
        for _ in range(50):
            if tok(texts, **settings[which]) != expected[which]:
                failures.append(which)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(settings))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_duplicate_vocab_entries_warn_with_the_line(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhi\nhi\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"vocab\.txt:6: token 'hi' repeats line 5"):
        tok = Tokenizer.from_pretrained(tmp_path)
    assert tok.convert_tokens_to_ids("hi") == 5  # the later id wins, as in transformers
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tok("hi").input_ids == [2, 5, 3]
