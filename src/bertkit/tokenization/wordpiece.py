"""BERT's WordPiece pipeline, assembled from the ``tokenizers`` library's parts.

The stages, in the order text flows through them (each one is a ``tokenizers`` component, so the
hot path is Rust):

1. ``BertNormalizer`` — drop NUL/U+FFFD/control characters and map whitespace to spaces
   (``clean_text``), put spaces around CJK ideographs (``handle_chinese_chars``; kana and Hangul
   are deliberately not included, as in Google's code), lower-case, and strip accents. Lower-casing
   and accent stripping are coupled in BERT: ``strip_accents=None`` means "whatever lowercase is",
   which is why uncased BERT turns "café" into "cafe".
2. ``BertPreTokenizer`` — split on whitespace and on every punctuation character.
3. ``WordPiece`` — greedy longest-match-first with the ``##`` continuation prefix; a word longer
   than ``max_input_chars_per_word`` (100, as Hugging Face uses; Google's code said 200) or with
   any unmatchable piece becomes one ``[UNK]``.
4. ``TemplateProcessing`` — ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]``, type ids 0 for the
   first segment (with its [CLS] and [SEP]) and 1 for the second (with its [SEP]).
5. ``WordPiece`` decoder — glue ``##`` pieces back together for ``decode``.

Where this differs from Google's original ``tokenization.py``: only where ``transformers``
differs too, because bertkit matches ``transformers`` by default (its checkpoints were
tokenized that way, and a model must see the ids it was trained on). The three cases, each
pinned against ``transformers`` by ``tests/tokenization/test_parity.py``:

* a literal ``[MASK]`` (or ``[CLS]``, ``[SEP]``, … as written in the vocabulary) in the text
  stays one special token; Google's splits it into ``[``, ``mask``, ``]``. Text that must not
  hold special tokens needs them escaped before tokenizing;
* a word of 101 to 200 characters becomes one ``[UNK]`` (``max_input_chars_per_word`` is
  100); Google's limit is 200, so it would split such a word into pieces;
* a word-final capital sigma lower-cases to ``σ`` (Rust lower-cases per character), where
  Google's ``str.lower()`` gives the final form ``ς``; the uncased vocabulary holds both.

A second family (byte-level BPE for RoBERTa) gets its own module with the same three entry
points: options read from/written to ``tokenizer_config.json``, a pipeline builder, and
``describe`` for a loaded backend.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as Backend

from bertkit.errors import DataFormatError, TokenizerError
from bertkit.tokenization.special_tokens import SpecialTokens

CONTINUING_SUBWORD_PREFIX = "##"
MAX_INPUT_CHARS_PER_WORD = 100
TOKENIZER_CLASS = "BertTokenizer"  # what tokenizer_config.json says, so transformers can load it


@dataclass(frozen=True)
class WordPieceOptions:
    """The switches that distinguish one BERT tokenizer from another (besides the vocab)."""

    lowercase: bool = True
    strip_accents: bool | None = None  # None: strip exactly when lowercasing (BERT's coupling)
    handle_chinese_chars: bool = True
    max_input_chars_per_word: int = MAX_INPUT_CHARS_PER_WORD

    def __post_init__(self) -> None:
        if self.max_input_chars_per_word < 1:
            raise TokenizerError(
                f"max_input_chars_per_word is {self.max_input_chars_per_word}; expected >= 1"
            )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WordPieceOptions:
        """Read the Hugging Face ``tokenizer_config.json`` keys (defaults are BERT-uncased's)."""
        strip = config.get("strip_accents")
        return cls(
            lowercase=bool(config.get("do_lower_case", True)),
            strip_accents=None if strip is None else bool(strip),
            handle_chinese_chars=bool(config.get("tokenize_chinese_chars", True)),
        )

    def to_config(self) -> dict[str, Any]:
        """The ``tokenizer_config.json`` keys Hugging Face's ``BertTokenizer`` reads."""
        return {
            "tokenizer_class": TOKENIZER_CLASS,
            "do_lower_case": self.lowercase,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.handle_chinese_chars,
        }


def describe(backend: Backend) -> WordPieceOptions | None:
    """The options a loaded WordPiece backend was built with, or ``None`` if it is not one.

    Read from the pipeline itself (not from tokenizer_config.json) so that what bertkit reports
    and saves can never drift from what actually runs.
    """
    model = backend.model
    if not isinstance(model, models.WordPiece):
        return None
    norm = backend.normalizer
    if isinstance(norm, normalizers.BertNormalizer):
        lowercase, strip, chinese = norm.lowercase, norm.strip_accents, norm.handle_chinese_chars
    else:  # a hand-built pipeline: report what we can, assume the BERT defaults otherwise
        lowercase, strip, chinese = False, None, True
    return WordPieceOptions(lowercase, strip, chinese, model.max_input_chars_per_word)


def build_pipeline(vocab: Mapping[str, int] | None, special: SpecialTokens,
                   options: WordPieceOptions) -> Backend:
    """Assemble the WordPiece pipeline around ``vocab`` (``None``: an empty model to train).

    Special tokens are registered as *added* tokens so that a literal "[MASK]" in the input is
    one token (what fill-mask needs, and what both reference tokenizers do); the post-processor
    is attached separately by :func:`attach_template`, because its ids exist only once the vocab
    does.
    """
    kwargs = {"unk_token": special.unk, "continuing_subword_prefix": CONTINUING_SUBWORD_PREFIX,
              "max_input_chars_per_word": options.max_input_chars_per_word}
    if vocab is None:
        model = models.WordPiece(**kwargs)
    else:
        if special.unk not in vocab:
            raise TokenizerError(f"the vocabulary has no unknown token {special.unk!r}")
        model = models.WordPiece(dict(vocab), **kwargs)
    backend = Backend(model)
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=options.handle_chinese_chars,
        strip_accents=options.strip_accents,
        lowercase=options.lowercase,
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix=CONTINUING_SUBWORD_PREFIX, cleanup=True)
    if vocab is not None:
        present = [tok for tok in special.as_list() if tok in vocab]
        backend.add_special_tokens(
            [AddedToken(tok, special=True, normalized=False) for tok in present]
        )
        attach_template(backend, special)
    return backend


def attach_template(backend: Backend, special: SpecialTokens) -> None:
    """Add ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]`` with the ids this vocab gives them."""
    ids = {tok: backend.token_to_id(tok) for tok in (special.cls, special.sep)}
    missing = [tok for tok, idx in ids.items() if idx is None]
    if missing:
        raise TokenizerError(f"the vocabulary lacks the special token(s) {missing}; "
                             "[CLS]/[SEP] are needed to build model inputs")
    cls, sep = special.cls, special.sep
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, ids[cls]), (sep, ids[sep])],
    )


def read_vocab_file(path: str | Path) -> dict[str, int]:
    """Read a ``vocab.txt``: one token per line, the line number (from 0) is its id.

    A token listed twice keeps its *last* id, as Hugging Face's loader does (so ids agree with
    the reference), with a warning naming both lines — such files exist in the wild.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TokenizerError(f"{path}: vocabulary file not found") from None
    except UnicodeDecodeError as err:
        raise DataFormatError(f"not UTF-8 text ({err.reason} at byte {err.start})", path) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline after the last token
    if not lines:
        raise TokenizerError(f"{path}: the vocabulary file is empty; expected one token per line")
    vocab: dict[str, int] = {}
    for index, line in enumerate(lines):
        token = line.rstrip("\r")
        if token in vocab:
            warnings.warn(f"{path}:{index + 1}: token {token!r} repeats line {vocab[token] + 1}; "
                          "the later id wins", UserWarning, stacklevel=2)
        vocab[token] = index
    return vocab


def vocab_file_text(vocab: Mapping[str, int], source: str = "tokenizer") -> str:
    """Render ``vocab`` as ``vocab.txt`` text; the ids must be exactly 0..n-1 to be writable."""
    by_id = sorted(vocab.items(), key=lambda item: item[1])
    for expected, (token, index) in enumerate(by_id):
        if index != expected:
            raise TokenizerError(
                f"{source}: cannot write vocab.txt, ids are not contiguous: expected id "
                f"{expected}, found {index} (token {token!r})"
            )
        if "\n" in token or "\r" in token:
            raise TokenizerError(f"{source}: cannot write vocab.txt, token {token!r} (id {index}) "
                                 "contains a line break")
    return "".join(token + "\n" for token, _ in by_id)
