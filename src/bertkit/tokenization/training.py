"""Learning a WordPiece (BERT) or byte-level BPE (RoBERTa) vocabulary from plain-text files.

Google's BERT release had no code for this; ``tokenizers``' ``WordPieceTrainer`` does it in Rust
(~5 MB/s on two cores), so bertkit only checks the inputs, builds the same pipeline as for a
loaded vocab, and fixes the special tokens at ids 0..4 in the order [PAD], [UNK], [CLS], [SEP],
[MASK] — which is *not* BERT's released layout (0, 100..103), one more reason ids are always
looked up by name.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, pre_tokenizers, trainers
from tokenizers import Tokenizer as Backend

from bertkit.errors import TokenizerError
from bertkit.tokenization import bytelevel, wordpiece
from bertkit.tokenization.files import DEFAULT_MODEL_MAX_LENGTH
from bertkit.tokenization.special_tokens import BERT_SPECIAL_TOKENS, SpecialTokens
from bertkit.tokenization.tokenizer import Tokenizer

LIMIT_ALPHABET = 1000  # at most this many single characters seed the vocab (HF's BERT default)


def train_wordpiece(
    files: str | Path | Iterable[str | Path],
    vocab_size: int = 30522,
    lowercase: bool = True,
    special_tokens: SpecialTokens = BERT_SPECIAL_TOKENS,
    min_frequency: int = 2,
    *,
    strip_accents: bool | None = None,
    handle_chinese_chars: bool = True,
    max_input_chars_per_word: int = wordpiece.MAX_INPUT_CHARS_PER_WORD,
    limit_alphabet: int = LIMIT_ALPHABET,
    model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
    show_progress: bool = False,
) -> Tokenizer:
    """Train a WordPiece tokenizer on UTF-8 text files and return it, ready to use or save.

    ``vocab_size`` counts the special tokens. A corpus too small to yield that many distinct
    pieces gives a smaller vocabulary, with a warning (the model's ``vocab_size`` must then
    follow the tokenizer's, or embeddings are left untrained — or, as the BERT README warns,
    training ends in NaNs when ids exceed the table).
    """
    paths = _check_files(files)
    specials = special_tokens.as_list()
    _check_sizes(vocab_size, min_frequency, len(specials))
    options = wordpiece.WordPieceOptions(lowercase, strip_accents, handle_chinese_chars,
                                         max_input_chars_per_word)
    backend = wordpiece.build_pipeline(None, special_tokens, options)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[AddedToken(tok, special=True, normalized=False) for tok in specials],
        limit_alphabet=limit_alphabet,
        continuing_subword_prefix=wordpiece.CONTINUING_SUBWORD_PREFIX,
        show_progress=show_progress,
    )
    backend.train([str(p) for p in paths], trainer)
    # The trainer builds a fresh WordPiece model; carry over the one setting it does not know.
    backend.model.max_input_chars_per_word = max_input_chars_per_word
    _check_special_ids(backend, specials)
    wordpiece.attach_template(backend, special_tokens)
    _warn_if_small(backend, vocab_size, paths)
    return Tokenizer(backend, special_tokens, model_max_length=model_max_length)


def train_bpe(
    files: str | Path | Iterable[str | Path],
    vocab_size: int = 50265,
    min_frequency: int = 2,
    *,
    add_prefix_space: bool = False,
    model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
    show_progress: bool = False,
) -> Tokenizer:
    """Train a RoBERTa-style byte-level BPE tokenizer on UTF-8 text files and return it.

    The 256 byte symbols are always in the vocabulary (any text is encodable without
    ``<unk>``); ``<s> <pad> </s> <unk> <mask>`` take ids 0..4, RoBERTa's layout, so a model
    config's ``pad_token_id`` is 1. ``vocab_size`` counts the special tokens and the bytes.
    """
    paths = _check_files(files)
    specials = list(bytelevel.TRAINING_ORDER)
    _check_sizes(vocab_size, min_frequency, len(specials) + 256)
    options = bytelevel.ByteLevelOptions(add_prefix_space=add_prefix_space)
    special_tokens = bytelevel.ROBERTA_SPECIAL_TOKENS
    backend = bytelevel.build_pipeline(None, None, special_tokens, options)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[AddedToken(tok, special=True, normalized=False) for tok in specials],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    backend.train([str(p) for p in paths], trainer)
    _check_special_ids(backend, specials)
    bytelevel.add_special_tokens(backend, special_tokens)
    bytelevel.attach_template(backend, special_tokens, options)
    _warn_if_small(backend, vocab_size, paths)
    return Tokenizer(backend, special_tokens, model_max_length=model_max_length)


def _check_sizes(vocab_size: object, min_frequency: object, reserved: int) -> None:
    if not isinstance(vocab_size, int) or vocab_size <= reserved:
        raise TokenizerError(f"vocab_size={vocab_size!r}; expected an int larger than the "
                             f"{reserved} special tokens (and bytes) it must hold")
    if not isinstance(min_frequency, int) or min_frequency < 0:
        raise TokenizerError(f"min_frequency={min_frequency!r}; expected an int >= 0")


def _check_special_ids(backend: Backend, specials: list[str]) -> None:
    for expected, token in enumerate(specials):
        if backend.token_to_id(token) != expected:  # a guarantee the rest of bertkit documents
            raise TokenizerError(f"training placed {token!r} at id {backend.token_to_id(token)}, "
                                 f"expected {expected}")


def _warn_if_small(backend: Backend, vocab_size: int, paths: list[Path]) -> None:
    size = backend.get_vocab_size(with_added_tokens=True)
    if size < vocab_size:
        warnings.warn(f"the corpus ({', '.join(str(p) for p in paths)}) yielded only {size} "
                      f"tokens of the {vocab_size} requested", UserWarning, stacklevel=3)


def _check_files(files: str | Path | Iterable[str | Path]) -> list[Path]:
    """Every path must be a readable file; say which one is not before training starts."""
    paths = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    if not paths:
        raise TokenizerError("no training files given; expected one or more text files")
    for path in paths:
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise TokenizerError(f"{path}: training file {what}; expected a UTF-8 text file")
    return paths
