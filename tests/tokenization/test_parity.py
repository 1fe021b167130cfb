"""Parity with the two reference BERT tokenizers on the real 30,522-entry uncased vocabulary.

References (test-only; bertkit never imports transformers):
- ``transformers.BertTokenizer`` — in transformers 5.x this *is* the fast, tokenizers-backed one;
  compared on ids, type ids, attention masks, offsets, word ids and special-token masks.
- ``BertTokenizerLegacy`` — Google's algorithm re-implemented in pure Python; an independent
  oracle for ids, type ids and masks (it has no offsets). Its ``max_input_chars_per_word`` is 100,
  the value bertkit uses too (Google's code said 200), and a test pins that.

The oracle is the references' *output*, compared element by element; each failure message names
the first differing text so a regression points at the input that exposes it.
"""

from __future__ import annotations

import functools
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

from bertkit.errors import TokenizerError
from bertkit.tokenization import Tokenizer

transformers = pytest.importorskip("transformers")
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy  # noqa: E402

pytestmark = pytest.mark.needs_artifacts

# Inputs chosen to hit each normalizer / pre-tokenizer / WordPiece branch.
EDGE_CASES = [
    "café naïve Ångström résumé",  # accents: stripped because uncased BERT lower-cases
    "e\u0301 combining and \u0300 a lone combining mark",
    "中文字符 日本語のかな カタカナ",  # CJK ideographs split per char, kana not
    "한국어 텍스트 مرحبا بالعالم สวัสดี",  # Hangul, Arabic, Thai
    "emoji 😀👍🏽 ok 🇫🇷",  # astral plane, modifiers, flags
    "\x00 null \u200b zero width \t tab \r cr \n nl \x7f del \ufffd repl \ufeffbom",
    "line\u2028sep\u00a0nbsp",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ１２３ ﬁ ligature ǅ titlecase İstanbul Straße",
    "a" * 250,  # one word > 200 chars -> [UNK]
    "supercalifragilistic" * 12,
    "a" * 100,  # exactly max_input_chars_per_word: still split into pieces
    "a" * 101,  # one over: [UNK]
    "",
    "   ",
    "\n\n\t",
    "   leading and trailing   ",
    "don't U.S.A. 3.14 $5 #tag @user http://t.co/abc?x=1&y=2",
    "Hello [MASK] world, [CLS] inside [SEP] text [mask] lower",  # literal special tokens
    "[UNK] [PAD] [MASK][MASK] un[MASK]able",
]
# Python's str.lower() maps a word-final capital sigma to "ς"; Rust lower-cases per character
# ("σ"). The legacy reference therefore differs from the fast one here; bertkit (on tokenizers)
# matches the fast one.
LEGACY_DIFFERS = ["ΣΊΣΥΦΟΣ ΚΑΙ ΟΔΥΣΣΕΥΣ"]

BASIC_KEYS = ("input_ids", "token_type_ids", "attention_mask")


@functools.cache
def load_references(directory: Path) -> tuple[Any, Any]:
    """Both reference tokenizers, loaded once per run (loading dominates these tests' time)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = transformers.BertTokenizer.from_pretrained(str(directory))
        legacy = BertTokenizerLegacy.from_pretrained(str(directory))
    # The legacy class leaves token_type_ids out of its default outputs in transformers 5.x.
    return fast, functools.partial(legacy, return_token_type_ids=True)


@pytest.fixture
def references(minilm_dir: Path) -> tuple[Any, Any]:
    return load_references(minilm_dir)


@pytest.fixture
def ours(minilm_dir: Path) -> Tokenizer:
    return Tokenizer.from_pretrained(minilm_dir)


def first_mismatch(texts: list[Any], got: dict, want: dict, keys: tuple[str, ...]) -> str | None:
    """Describe the first (key, text) where the outputs differ, or None when all agree."""
    for key in keys:
        assert len(got[key]) == len(want[key]) == len(texts), key
        for index, (a, b) in enumerate(zip(got[key], want[key], strict=True)):
            if list(map(_plain, a)) != list(map(_plain, b)):
                return f"{key} differs for item {index} {texts[index]!r:.80}: {a} vs {b}"
    return None


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def test_legacy_reference_uses_100_chars_per_word(references):
    _, legacy = references
    assert legacy.func.wordpiece_tokenizer.max_input_chars_per_word == 100


def test_real_lines_match_both_references(ours, references, real_lines):
    fast, legacy = references
    assert len(real_lines) >= 2000
    got = ours(real_lines, return_offsets_mapping=True)
    want_fast = fast(real_lines, return_offsets_mapping=True)
    want_legacy = legacy(real_lines)
    assert first_mismatch(real_lines, got, want_fast, (*BASIC_KEYS, "offset_mapping")) is None
    assert first_mismatch(real_lines, got, want_legacy, BASIC_KEYS) is None
    # The corpus must really exercise the pipeline: many pieces, some [UNK], non-ASCII text.
    n_tokens = sum(len(ids) for ids in got["input_ids"])
    assert n_tokens > 50_000
    assert any(ours.unk_token_id in ids for ids in got["input_ids"])
    assert sum(any(ord(ch) > 127 for ch in line) for line in real_lines) > 100


def test_the_fast_path_without_offsets_gives_the_same_ids(ours, real_lines):
    # Without offsets bertkit uses encode_batch_fast; it must not change any id.
    assert ours(real_lines)["input_ids"] == ours(real_lines, return_offsets_mapping=True)[
        "input_ids"]


def test_edge_cases_match_both_references(ours, references):
    fast, legacy = references
    got = ours(EDGE_CASES, return_offsets_mapping=True)
    assert first_mismatch(EDGE_CASES, got, fast(EDGE_CASES, return_offsets_mapping=True),
                          (*BASIC_KEYS, "offset_mapping")) is None
    assert first_mismatch(EDGE_CASES, got, legacy(EDGE_CASES), BASIC_KEYS) is None
    for text in EDGE_CASES:  # single-string calls too (un-batched lists)
        assert ours(text)["input_ids"] == fast(text)["input_ids"] == legacy(text)["input_ids"]
    assert ours("a" * 101)["input_ids"] == [ours.cls_token_id, ours.unk_token_id,
                                            ours.sep_token_id]
    assert ours("a" * 100)["input_ids"].count(ours.unk_token_id) == 0


def test_where_the_references_disagree_we_follow_the_fast_one(ours, references):
    fast, legacy = references
    for text in LEGACY_DIFFERS:
        assert ours(text)["input_ids"] == fast(text)["input_ids"]
        assert ours(text)["input_ids"] != legacy(text)["input_ids"]  # still a known difference


def dialogue_pairs(real_lines: list[str], n: int = 400) -> tuple[list[str], list[str]]:
    """Consecutive real lines as (A, B) pairs, like next-sentence data."""
    lines = [line for line in real_lines if line.strip()][: n + 1]
    return lines[:-1], lines[1:]


def segments(ids: list[int], sep: int) -> tuple[list[int], list[int]]:
    """Split ``[CLS] A [SEP] B [SEP]`` into (A, B)."""
    cut = ids.index(sep)
    return ids[1:cut], ids[cut + 1:-1]


@pytest.mark.parametrize("max_length", [8, 16, 17, 48])
def test_pairs_longest_first_truncation(ours, references, real_lines, max_length):
    fast, legacy = references
    first, second = dialogue_pairs(real_lines)
    kwargs = dict(truncation="longest_first", max_length=max_length)
    got = ours(first, second, **kwargs, return_offsets_mapping=True)
    want = fast(first, second, **kwargs, return_offsets_mapping=True)
    assert first_mismatch(first, got, want, (*BASIC_KEYS, "offset_mapping")) is None
    assert max(len(ids) for ids in got["input_ids"]) == max_length
    assert all(1 in types for types in got["token_type_ids"])  # segment B is present

    # The two references break one tie differently: when both segments must be cut and the
    # budget is odd, the fast one gives the spare token to B, the legacy one to A. bertkit
    # follows the fast one; every other pair must agree with the legacy one exactly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old = legacy(first, second, **kwargs)["input_ids"]
    budget = max_length - 3
    ties = 0
    for index, (a_ids, b_ids) in enumerate(zip(got["input_ids"], old, strict=True)):
        if a_ids == b_ids:
            continue
        (a1, b1), (a2, b2) = segments(a_ids, ours.sep_token_id), segments(b_ids, ours.sep_token_id)
        assert budget % 2 == 1 and len(a1) + 1 == len(a2) and len(b1) == len(b2) + 1, index
        assert a2[: len(a1)] == a1 and b1[: len(b2)] == b2, index  # same tokens, one moved
        ties += 1
    assert ties < len(first) // 2
    if budget % 2 == 0:
        assert ties == 0


def test_pairs_only_second_truncation(ours, references, real_lines):
    fast, legacy = references
    first, second = dialogue_pairs(real_lines)
    max_length = 32
    # only_second needs the first segment to fit whole: keep the pairs where it does.
    lengths = [len(ids) for ids in ours(first, add_special_tokens=False)["input_ids"]]
    keep = [i for i, n in enumerate(lengths) if n + 3 < max_length]
    first, second = [first[i] for i in keep], [second[i] for i in keep]
    assert len(first) > 300
    kwargs = dict(truncation="only_second", max_length=max_length)
    got = ours(first, second, **kwargs)
    assert first_mismatch(first, got, fast(first, second, **kwargs), BASIC_KEYS) is None
    assert first_mismatch(first, got, legacy(first, second, **kwargs), BASIC_KEYS) is None


def test_only_second_too_short_raises_naming_lengths(ours, references):
    fast, _ = references
    question = "what did the fox jump over in the old story about the lazy dog"
    context = "the dog"
    with pytest.raises(Exception, match="runcat"):  # the fast reference refuses too
        fast(question, context, truncation="only_second", max_length=10)
    with pytest.raises(TokenizerError, match=r"first sequence.*14 tokens.*second.*2 tokens"):
        ours([question], [context], truncation="only_second", max_length=10)


@pytest.mark.parametrize("padding,max_length,multiple", [
    (True, None, None), ("longest", None, 8), ("max_length", 40, None), ("max_length", 12, None),
])
def test_padded_batches(ours, references, real_lines, padding, max_length, multiple):
    fast, legacy = references
    texts = real_lines[:200]
    kwargs: dict[str, Any] = dict(padding=padding, pad_to_multiple_of=multiple)
    if max_length is not None:
        kwargs.update(max_length=max_length, truncation=True)
    got = ours(texts, **kwargs, return_offsets_mapping=True, return_special_tokens_mask=True)
    want = fast(texts, **kwargs, return_offsets_mapping=True, return_special_tokens_mask=True)
    keys = (*BASIC_KEYS, "offset_mapping", "special_tokens_mask")
    assert first_mismatch(texts, got, want, keys) is None
    assert first_mismatch(texts, got, legacy(texts, **kwargs), BASIC_KEYS) is None
    assert len({len(ids) for ids in got["input_ids"]}) == 1  # rectangular
    assert any(0 in mask for mask in got["attention_mask"])  # and some padding happened
    # Tensors are padded by bertkit itself (vectorised), not by the backend: same values.
    tensors = ours(texts, **kwargs, return_offsets_mapping=True, return_special_tokens_mask=True,
                   return_word_ids=True, return_tensors="np")
    for key in keys:
        rows = [[list(pair) for pair in row] for row in want[key]] if key == "offset_mapping" \
            else want[key]
        assert tensors[key].tolist() == rows, key
    word_ids = [[-1 if w is None else w for w in want.word_ids(i)] for i in range(len(texts))]
    assert tensors["word_ids"].tolist() == word_ids


def test_padded_pair_batch_as_tensors(ours, references, real_lines):
    fast, _ = references
    first, second = dialogue_pairs(real_lines, 64)
    kwargs = dict(padding=True, truncation=True, max_length=24, return_tensors="pt")
    got, want = ours(first, second, **kwargs), fast(first, second, **kwargs)
    for key in BASIC_KEYS:
        assert got[key].dtype == want[key].dtype
        assert got[key].tolist() == want[key].tolist(), key


def test_word_ids_and_special_tokens_mask(ours, references, real_lines):
    fast, _ = references
    texts = real_lines[:300] + EDGE_CASES
    got = ours(texts, return_word_ids=True, return_special_tokens_mask=True)
    want = fast(texts, return_special_tokens_mask=True)
    assert got["word_ids"] == [want.word_ids(i) for i in range(len(texts))]
    assert got["special_tokens_mask"] == want["special_tokens_mask"]


def test_pre_split_words(ours, references, real_lines):
    fast, _ = references
    words = [line.split() for line in real_lines[:300]]
    got = ours(words, is_split_into_words=True, return_word_ids=True)
    want = fast(words, is_split_into_words=True)
    assert got["input_ids"] == want["input_ids"]
    assert got["word_ids"] == [want.word_ids(i) for i in range(len(words))]


def test_vocab_txt_alone_gives_the_same_pipeline(minilm_dir, references, real_lines, tmp_path):
    # The older layout: vocab.txt + tokenizer_config.json, no tokenizer.json.
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, tmp_path / name)
    from_vocab = Tokenizer.from_pretrained(tmp_path)
    fast, _ = references
    texts = real_lines[:500] + EDGE_CASES
    got = from_vocab(texts, return_offsets_mapping=True)
    assert first_mismatch(texts, got, fast(texts, return_offsets_mapping=True),
                          (*BASIC_KEYS, "offset_mapping")) is None
    assert Tokenizer.from_pretrained(minilm_dir / "vocab.txt")(texts)["input_ids"] == got[
        "input_ids"]


def test_decode_matches_the_fast_reference(ours, references, real_lines):
    fast, _ = references
    ids = ours(real_lines[:300])["input_ids"]
    assert ours.batch_decode(ids) == fast.batch_decode(ids, skip_special_tokens=True)
    assert ours.decode(ids[0], skip_special_tokens=False) == fast.decode(ids[0])


def test_tokenizer_json_only_checkpoint(artifact):
    # splade-tiny ships its vocab only inside tokenizer.json.
    directory = artifact("splade-tiny")
    assert not (directory / "vocab.txt").exists()
    ours = Tokenizer.from_pretrained(directory)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = transformers.AutoTokenizer.from_pretrained(str(directory))
    texts = [*EDGE_CASES, "The capital of France is [MASK]."]
    assert first_mismatch(texts, ours(texts), fast(texts), BASIC_KEYS) is None
    assert ours.mask_token_id == fast.mask_token_id


def test_documented_differences_from_googles_tokenizer(ours, references):
    """The three cases the wordpiece module's docstring lists, pinned exactly: equal to
    ``transformers``, and each shown to be the behaviour described (not Google's)."""
    fast, legacy = references
    text = "the [MASK] sat"
    ids = ours(text)["input_ids"]
    assert ids == fast(text)["input_ids"]
    assert ids.count(ours.mask_token_id) == 1 and len(ids) == 5  # [CLS] the [MASK] sat [SEP]
    assert ours.unk_token_id not in ours("ab" * 50)["input_ids"]  # 100 chars: pieces
    for length in (101, 150, 200):  # Google's 200-char limit would split these into pieces
        word = "ab" * (length // 2) + "a" * (length % 2)
        assert ours(word)["input_ids"] == fast(word)["input_ids"] == [
            ours.cls_token_id, ours.unk_token_id, ours.sep_token_id], length
    word = "ΟΔΥΣΣΕΥΣ"
    assert ours(word)["input_ids"] == fast(word)["input_ids"]
    assert ours.decode(ours(word)["input_ids"]).endswith("σ")  # not "ς" (str.lower's)
    assert word.lower().endswith("ς")
    assert ours(word)["input_ids"] != legacy(word)["input_ids"]
