"""The casing guard: a vocabulary's content, not its folder name, decides cased vs uncased."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from bertkit.tokenization import Tokenizer
from bertkit.tokenization.casing import count_casing, warn_on_casing_mismatch

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [f"word{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{i}" for i in range(700)]


def write_vocab(directory: Path, tokens: list[str], config: dict | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    if config is not None:
        (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return directory


def test_counts_ignore_brackets_and_prefix():
    counts = count_casing(["[CLS]", "[unused3]", "##Ab", "ab", "12", "!", "Éte", "中"])
    assert (counts.with_cased_letters, counts.with_upper_case) == (3, 2)


def test_cased_vocab_loaded_lowercase_warns_naming_file_and_counts(tmp_path):
    # Like bert-base-cased: capitalised and lower-case forms side by side.
    tokens = SPECIALS + WORDS + [w.capitalize() for w in WORDS[:300]]
    directory = write_vocab(tmp_path / "bert-base-uncased", tokens)  # a misleading name
    with pytest.warns(UserWarning) as record:
        Tokenizer.from_pretrained(directory)
    message = str(record[0].message)
    assert str(directory / "vocab.txt") in message
    assert "do_lower_case=True" in message and "looks cased" in message
    assert "300 of 1000" in message
    assert record[0].filename == __file__  # points at the caller's line


def test_uncased_vocab_loaded_cased_warns(tmp_path):
    directory = write_vocab(tmp_path / "cased-model", SPECIALS + WORDS, {"do_lower_case": False})
    with pytest.warns(UserWarning, match=r"do_lower_case=False .* looks uncased: 0 of 700"):
        Tokenizer.from_pretrained(directory)


@pytest.mark.parametrize("lowercase,extra", [(True, []), (False, [w.upper() for w in WORDS])])
def test_matching_casing_is_silent(tmp_path, lowercase, extra):
    directory = write_vocab(tmp_path / "m", SPECIALS + WORDS + extra,
                            {"do_lower_case": lowercase})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Tokenizer.from_pretrained(directory)


def test_small_vocabularies_are_not_judged():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        counts = warn_on_casing_mismatch(["Hello", "World"], lowercase=True, source="x")
    assert counts.with_upper_case == 2


@pytest.mark.needs_artifacts
def test_real_uncased_vocab(minilm_dir, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Tokenizer.from_pretrained(minilm_dir)  # uncased vocab, do_lower_case=True: silent
    with pytest.warns(UserWarning, match=r"tokenizer\.json: .*looks uncased: 0 of 26930"):
        Tokenizer.from_pretrained(minilm_dir, do_lower_case=False)
    # vocab.txt + a config that wrongly says cased (the classic mistake)
    shutil.copy(minilm_dir / "vocab.txt", tmp_path / "vocab.txt")
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    with pytest.warns(UserWarning, match=r"vocab\.txt: do_lower_case=False"):
        tok = Tokenizer.from_pretrained(tmp_path)
    assert tok.tokenize("Hello") != ["hello"]  # the damage the warning is about


@pytest.mark.needs_artifacts
def test_tokenizer_json_and_config_disagreeing_warns(minilm_dir, tmp_path):
    shutil.copy(minilm_dir / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    with pytest.warns(UserWarning, match=r"normalizer has lowercase=True but tokenizer_config"):
        tok = Tokenizer.from_pretrained(tmp_path)
    assert tok.do_lower_case is True
