"""Byte-level BPE (RoBERTa) trained by bertkit on real text, loaded back by bertkit and by two
references from the same ``vocab.json`` + ``merges.txt``, gives identical model inputs.

References (test-only):
- ``transformers.RobertaTokenizerFast`` — in transformers 5.x the same class as
  ``RobertaTokenizer``, tokenizers-backed; it builds its own RoBERTa pipeline from the files;
  compared on ids, attention masks, offsets and special-token masks.
- A pure-Python byte-level BPE: transformers 5.x no longer ships a Python ``RobertaTokenizer``,
  so the oracle is its remaining copy of GPT-2's Python BPE (``ClvpTokenizer``) with Clvp's
  English normaliser switched off and RoBERTa's special tokens and ``<s> A </s></s> B </s>``
  template; compared on ids and attention masks (it has no offsets).
"""

from __future__ import annotations

import functools
import itertools
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

from bertkit.tokenization import Tokenizer, train_bpe

transformers = pytest.importorskip("transformers")
from transformers import AddedToken  # noqa: E402
from transformers.models.clvp.tokenization_clvp import ClvpTokenizer  # noqa: E402

pytestmark = pytest.mark.needs_artifacts

EDGE_CASES = [
    "café naïve Ångström résumé Straße İstanbul",     # accents kept: no normaliser
    "e\u0301 combining and \u0300 a lone combining mark",
    "中文字符 日本語のかな カタカナ 한국어 텍스트",         # CJK: bytes the corpus rarely merged
    "emoji 😀👍🏽 ok 🇫🇷 family 👨‍👩‍👧",                     # astral plane, modifiers, ZWJ
    "don't you'll it's 3.14 $5 #tag @user http://t.co/abc?x=1&y=2",
    "  leading, double  spaces and trailing  ",
    "tabs\tand\nnewlines\r\nmixed",
    "",
]
# Literal special tokens: one token each, and <mask> takes the space before it (RoBERTa's
# lstrip). transformers' Python backend ignores lstrip, so these go to the fast reference only.
SPECIAL_CASES = ["Hello <mask> world and <s> inside </s> text <pad> <unk>", "a<mask>b <mask>"]
KEYS = ("input_ids", "attention_mask")


class PythonRobertaTokenizer(ClvpTokenizer):
    """transformers' pure-Python GPT-2 BPE, as RoBERTa: no normaliser, RoBERTa's template."""

    @property
    def normalizer(self):
        return lambda text: text


@pytest.fixture
def trained(tmp_path_factory: pytest.TempPathFactory, real_lines: list[str]) -> dict[str, Any]:
    return _train(tmp_path_factory.getbasetemp(), tuple(real_lines))


@functools.cache
def _train(basetemp: Path, real_lines: tuple[str, ...]) -> dict[str, Any]:
    """A 4,000-entry BPE vocabulary trained on the real lines, saved twice: the full directory
    and one holding only vocab.json + merges.txt + tokenizer_config.json (built once a run)."""
    lines = list(real_lines)
    base = basetemp / "bpe-trained"
    base.mkdir(exist_ok=True)
    corpus = base / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tokenizer = train_bpe(corpus, vocab_size=4000)
    tokenizer.save_pretrained(base / "full")
    files = base / "files"
    files.mkdir(exist_ok=True)
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(base / "full" / name, files / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = transformers.RobertaTokenizerFast.from_pretrained(str(files))
        python = PythonRobertaTokenizer(
            str(files / "vocab.json"), str(files / "merges.txt"), unk_token="<unk>",
            bos_token="<s>", eos_token="</s>", pad_token="<pad>", cls_token="<s>",
            sep_token="</s>", mask_token=AddedToken("<mask>", lstrip=True, special=True))
    python.special_tokens_pattern = "cls_double_sep"
    return {"lines": lines, "trained": tokenizer, "files": files, "full": base / "full",
            "fast": fast, "python": python}


def mismatches(got: dict, want: dict, keys: tuple[str, ...]) -> tuple[int, str | None]:
    """How many items differ in any of ``keys``, and the first difference."""
    count, first = 0, None
    for index in range(len(got["input_ids"])):
        bad = [k for k in keys if list(map(_plain, got[k][index]))
               != list(map(_plain, want[k][index]))]
        if bad:
            count += 1
            key = bad[0]
            first = first or f"item {index}, {key}: {got[key][index]} vs {want[key][index]}"
    return count, first


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def test_trained_vocab_has_roberta_layout(trained):
    tok = trained["trained"]
    assert [tok.convert_ids_to_tokens(i) for i in range(5)] == [
        "<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    assert (tok.cls_token_id, tok.pad_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 1, 2, 4)
    assert tok.vocab_size == 4000
    # byte-level: nothing in real text is unknown
    assert all(tok.unk_token_id not in ids for ids in tok(trained["lines"])["input_ids"])


@pytest.mark.parametrize("source", ["trained", "files", "full"])
def test_real_lines_match_both_references(trained, source):
    ours = (trained["trained"] if source == "trained"
            else Tokenizer.from_pretrained(trained[source]))
    texts = trained["lines"] + EDGE_CASES
    assert len(texts) >= 2000
    got = ours(texts + SPECIAL_CASES, return_offsets_mapping=True,
               return_special_tokens_mask=True)
    fast = trained["fast"](texts + SPECIAL_CASES, return_offsets_mapping=True,
                           return_special_tokens_mask=True)
    python = trained["python"](texts)
    assert mismatches(got, fast, (*KEYS, "offset_mapping", "special_tokens_mask")) == (0, None)
    assert mismatches({k: v[:len(texts)] for k, v in got.items()}, python, KEYS) == (0, None)
    assert got["input_ids"][-1][1:] == [ours.convert_tokens_to_ids("a"), ours.mask_token_id,
                                         ours.convert_tokens_to_ids("b"), ours.mask_token_id,
                                         ours.sep_token_id]
    assert sum(len(ids) for ids in got["input_ids"]) > 50_000
    assert sum(any(ord(ch) > 127 for ch in text) for text in texts) > 100


@pytest.mark.parametrize(("truncation", "max_length"), [
    (True, 24), ("only_second", 40), ("only_first", 48)])
def test_pairs_with_truncation_and_padding_match_both_references(trained, truncation,
                                                                  max_length):
    ours = Tokenizer.from_pretrained(trained["files"])
    lines = trained["lines"] + EDGE_CASES
    firsts, seconds = lines[0::2], lines[1::2]
    firsts = firsts[:len(seconds)]
    if truncation != "longest_first" and truncation is not True:
        # the side that stays whole must leave room, or both libraries refuse
        kept = seconds if truncation == "only_first" else firsts
        keep = [len(ours.tokenize(t)) + 4 < max_length - 2 for t in kept]
        firsts = [t for t, k in zip(firsts, keep, strict=True) if k]
        seconds = [t for t, k in zip(seconds, keep, strict=True) if k]
    assert len(firsts) >= 1000
    options = dict(truncation=truncation, max_length=max_length, padding=True)
    got = ours(firsts, seconds, return_offsets_mapping=True, **options)
    fast = trained["fast"](firsts, seconds, return_offsets_mapping=True, **options)
    python = trained["python"](firsts, seconds, **options)
    assert mismatches(got, fast, (*KEYS, "offset_mapping")) == (0, None)
    assert mismatches(got, python, KEYS) == (0, None)
    # the pairs really were cut and padded, with RoBERTa's double separator
    assert any(len(ids) == max_length for ids in got["input_ids"])
    assert any(0 in mask for mask in got["attention_mask"])
    sep = ours.sep_token_id
    assert all(any(a == b == sep for a, b in itertools.pairwise(ids))
               for ids in got["input_ids"])


def test_decode_round_trips_real_text(trained):
    ours = trained["trained"]
    for text in trained["lines"][:500] + EDGE_CASES:
        assert ours.decode(ours.encode(text)) == text
