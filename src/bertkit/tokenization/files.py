"""Reading and writing tokenizer files in the Hugging Face layout.

A model directory holds ``tokenizer.json`` (the whole ``tokenizers`` pipeline, preferred) and/or
the older layout plus ``tokenizer_config.json``: ``vocab.txt`` (WordPiece, with casing switches)
or ``vocab.json`` + ``merges.txt`` (byte-level BPE). All are read; ``save`` writes the pipeline's
files of both layouts so that bertkit *and* ``transformers`` can load the result. Every write
is atomic, and nothing is written until every file's text has been built, so a save that fails
leaves the directory as it was.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer as Backend
from tokenizers import normalizers

from bertkit._fileio import read_json, write_json, write_text
from bertkit.errors import TokenizerError
from bertkit.tokenization import bytelevel, wordpiece
from bertkit.tokenization.casing import warn_on_casing_mismatch
from bertkit.tokenization.special_tokens import SpecialTokens

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
VOCAB_FILE = "vocab.txt"
DEFAULT_MODEL_MAX_LENGTH = 512  # BERT's position table; HF writes ~1e30 for "unknown"
_UNSET_MAX_LENGTH = 10**29


@dataclass
class LoadedParts:
    """Everything a :class:`~bertkit.tokenization.Tokenizer` is made of, as read from disk."""

    backend: Backend
    special: SpecialTokens
    model_max_length: int


def load(path: str | Path, *, do_lower_case: bool | None = None,
         model_max_length: int | None = None) -> LoadedParts:
    """Load a directory, a ``tokenizer.json`` or a ``vocab.txt``.

    ``do_lower_case`` overrides what the files say (the fix when the casing guard warns).
    """
    path = Path(path)
    if path.is_dir() and not (path / TOKENIZER_FILE).is_file() \
            and (path / bytelevel.VOCAB_JSON).is_file():
        return _load_vocab_and_merges(path, model_max_length)
    if path.is_dir():
        directory, tokenizer_file, vocab_file = path, path / TOKENIZER_FILE, path / VOCAB_FILE
        if not tokenizer_file.is_file() and not vocab_file.is_file():
            raise TokenizerError(
                f"{path}: no tokenizer found; looked for {TOKENIZER_FILE} or {VOCAB_FILE} "
                f"(+ {CONFIG_FILE}), or {bytelevel.VOCAB_JSON} + {bytelevel.MERGES_FILE}, in "
                "this directory"
            )
        if not tokenizer_file.is_file():
            tokenizer_file = None
    elif path.is_file():
        directory = path.parent
        is_json = path.suffix == ".json"
        tokenizer_file, vocab_file = (path, None) if is_json else (None, path)
    else:
        raise TokenizerError(
            f"{path}: no such file or directory; expected a directory holding {TOKENIZER_FILE} "
            f"or {VOCAB_FILE}, or the path of one of those files"
        )
    config = _read_config(directory)
    special = SpecialTokens.from_config(config)
    if tokenizer_file is not None:
        backend = _load_tokenizer_json(tokenizer_file, config, do_lower_case)
        if bytelevel.describe(backend) is not None:  # RoBERTa's names unless the config says
            special = SpecialTokens.from_config(config, bytelevel.ROBERTA_SPECIAL_TOKENS)
    else:
        assert vocab_file is not None
        backend = _load_vocab_txt(vocab_file, config, special, do_lower_case)
    return LoadedParts(backend, special, _max_length(config, model_max_length))


def save(directory: str | Path, backend: Backend, special: SpecialTokens,
         model_max_length: int) -> list[Path]:
    """Write tokenizer.json + tokenizer_config.json (+ vocab.txt for WordPiece); return paths."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise TokenizerError(f"{directory}: exists and is not a directory; cannot save into it")
    clean = Backend.from_str(backend.to_str())  # a copy, so the live one keeps its settings
    clean.no_truncation()
    clean.no_padding()
    texts: dict[str, str] = {TOKENIZER_FILE: clean.to_str(pretty=True)}
    config: dict[str, Any] = {}
    options = wordpiece.describe(clean)
    if options is not None:
        config.update(options.to_config())
        texts[VOCAB_FILE] = wordpiece.vocab_file_text(
            clean.get_vocab(with_added_tokens=True), source=str(directory)
        )
    bpe_options = bytelevel.describe(clean)
    if bpe_options is not None:
        config.update(bpe_options.to_config())
        texts[bytelevel.VOCAB_JSON], texts[bytelevel.MERGES_FILE] = \
            bytelevel.vocab_and_merges_text(clean)
        # RoBERTa's tokenizer also names <s> and </s> as the sequence's bos and eos tokens;
        # the added tokens' flags travel too (``<mask>`` takes the space before it).
        config.update(bos_token=special.cls, eos_token=special.sep,
                      added_tokens_decoder=bytelevel.added_tokens_config(clean))
    config.update(special.to_config())
    config["model_max_length"] = model_max_length
    written = []
    for name, text in texts.items():
        write_text(directory / name, text)
        written.append(directory / name)
    write_json(directory / CONFIG_FILE, config)
    written.append(directory / CONFIG_FILE)
    return written


def _read_config(directory: Path) -> dict[str, Any]:
    """tokenizer_config.json, with special_tokens_map.json filling in absent token names."""
    config: dict[str, Any] = {}
    for name in (SPECIAL_TOKENS_MAP_FILE, CONFIG_FILE):  # the later file wins
        file = directory / name
        if file.is_file():
            data = read_json(file)
            if not isinstance(data, Mapping):
                raise TokenizerError(f"{file}: expected a JSON object, got {type(data).__name__}")
            config.update(data)
    return config


def _max_length(config: Mapping[str, Any], override: int | None) -> int:
    value = override if override is not None else config.get("model_max_length")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value >= _UNSET_MAX_LENGTH:
        return DEFAULT_MODEL_MAX_LENGTH
    if value < 1:
        raise TokenizerError(f"model_max_length is {value}; expected a positive number of tokens")
    return value


def _load_tokenizer_json(file: Path, config: Mapping[str, Any],
                         do_lower_case: bool | None) -> Backend:
    """Load a serialised pipeline; its own settings are the truth, the config only cross-checks."""
    try:
        backend = Backend.from_file(str(file))
    except Exception as err:  # tokenizers raises bare Exception for malformed files
        raise TokenizerError(f"{file}: not a valid tokenizers file: {err}") from None
    options = wordpiece.describe(backend)
    if options is None:
        return backend
    norm = backend.normalizer
    if do_lower_case is not None and isinstance(norm, normalizers.BertNormalizer):
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=norm.clean_text, handle_chinese_chars=norm.handle_chinese_chars,
            strip_accents=norm.strip_accents, lowercase=do_lower_case,
        )
        lowercase = do_lower_case
    else:
        lowercase = options.lowercase
        said = config.get("do_lower_case")
        if isinstance(said, bool) and said != lowercase:
            warnings.warn(
                f"{file}: its normalizer has lowercase={lowercase} but {CONFIG_FILE} says "
                f"do_lower_case={said}; {TOKENIZER_FILE} wins (pass do_lower_case= to choose)",
                UserWarning, stacklevel=4,
            )
    warn_on_casing_mismatch(backend.get_vocab(with_added_tokens=False), lowercase, str(file),
                            stacklevel=4)
    if backend.post_processor is None:
        wordpiece.attach_template(backend, SpecialTokens.from_config(config))
    return backend


def _load_vocab_and_merges(directory: Path, model_max_length: int | None) -> LoadedParts:
    """Build the byte-level BPE pipeline around vocab.json + merges.txt."""
    config = _read_config(directory)
    special = SpecialTokens.from_config(config, bytelevel.ROBERTA_SPECIAL_TOKENS)
    vocab, merges = bytelevel.read_vocab_and_merges(directory / bytelevel.VOCAB_JSON,
                                                    directory / bytelevel.MERGES_FILE)
    backend = bytelevel.build_pipeline(vocab, merges, special,
                                       bytelevel.ByteLevelOptions.from_config(config))
    return LoadedParts(backend, special, _max_length(config, model_max_length))


def _load_vocab_txt(file: Path, config: Mapping[str, Any], special: SpecialTokens,
                    do_lower_case: bool | None) -> Backend:
    """Build the WordPiece pipeline around a vocab.txt, switches from tokenizer_config.json."""
    options = wordpiece.WordPieceOptions.from_config(config)
    if do_lower_case is not None:
        options = wordpiece.WordPieceOptions(do_lower_case, options.strip_accents,
                                             options.handle_chinese_chars,
                                             options.max_input_chars_per_word)
    vocab = wordpiece.read_vocab_file(file)
    warn_on_casing_mismatch(vocab, options.lowercase, str(file), stacklevel=4)
    try:
        return wordpiece.build_pipeline(vocab, special, options)
    except TokenizerError as err:  # a special token missing: say which file lacks it
        raise TokenizerError(f"{file}: {err}") from None

