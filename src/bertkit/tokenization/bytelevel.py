"""RoBERTa's byte-level BPE pipeline, assembled from the ``tokenizers`` library's parts.

The stages, in the order text flows through them:

1. No normalizer: text is kept exactly (case, accents, Unicode form), unlike BERT's.
2. ``ByteLevel`` pre-tokenizer — GPT-2's split (contractions, letter runs, digit runs, other
   runs, whitespace), each piece's UTF-8 bytes mapped to printable characters (a space becomes
   ``Ġ``), so every string is covered and ``<unk>`` never occurs for ordinary text.
3. ``BPE`` — the learned merges, lowest rank first.
4. ``RobertaProcessing`` — ``<s> A </s>`` and ``<s> A </s></s> B </s>``, one segment (type ids
   all 0); offsets trimmed of the leading space a ``Ġ`` piece carries.
5. ``ByteLevel`` decoder — bytes back to text for ``decode``.

The same entry points as :mod:`~bertkit.tokenization.wordpiece`: options to and from
``tokenizer_config.json``, a pipeline builder, ``describe`` for a loaded backend, and the
``vocab.json`` + ``merges.txt`` files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, decoders, models, pre_tokenizers, processors
from tokenizers import Tokenizer as Backend

from bertkit.errors import DataFormatError, TokenizerError
from bertkit.tokenization.special_tokens import SpecialTokens

VOCAB_JSON = "vocab.json"
MERGES_FILE = "merges.txt"
TOKENIZER_CLASS = "RobertaTokenizer"  # what tokenizer_config.json says, so transformers loads it

ROBERTA_SPECIAL_TOKENS = SpecialTokens(pad="<pad>", unk="<unk>", cls="<s>", sep="</s>",
                                       mask="<mask>")
"""RoBERTa's names: ``<s>`` opens a sequence ([CLS]), ``</s>`` ends one ([SEP])."""

TRAINING_ORDER = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
"""Ids 0..4 of a trained vocabulary, RoBERTa's released layout (so ``<pad>`` is 1, the
``pad_token_id`` RoBERTa configs carry)."""


@dataclass(frozen=True)
class ByteLevelOptions:
    """The switches of a byte-level BPE tokenizer besides its vocabulary and merges."""

    add_prefix_space: bool = False  # treat the first word like one after a space
    trim_offsets: bool = True       # offsets exclude the space a ``Ġ`` piece starts with

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ByteLevelOptions:
        """Read the Hugging Face ``tokenizer_config.json`` keys (defaults are RoBERTa's)."""
        values = {}
        for name in ("add_prefix_space", "trim_offsets"):
            value = config.get(name, getattr(cls, name))
            if not isinstance(value, bool):
                raise TokenizerError(f"tokenizer config: {name} is {value!r}; expected true/false")
            values[name] = value
        return cls(**values)

    def to_config(self) -> dict[str, Any]:
        return {"tokenizer_class": TOKENIZER_CLASS, "add_prefix_space": self.add_prefix_space,
                "trim_offsets": self.trim_offsets}


def describe(backend: Backend) -> ByteLevelOptions | None:
    """The options a loaded byte-level BPE backend runs with, or ``None`` if it is not one."""
    if not isinstance(backend.model, models.BPE) or not isinstance(
            backend.pre_tokenizer, pre_tokenizers.ByteLevel):
        return None
    post = backend.post_processor
    trim = post.trim_offsets if isinstance(post, processors.RobertaProcessing) else True
    return ByteLevelOptions(backend.pre_tokenizer.add_prefix_space, trim)


def build_pipeline(vocab: Mapping[str, int] | None, merges: list[tuple[str, str]] | None,
                   special: SpecialTokens, options: ByteLevelOptions) -> Backend:
    """Assemble the pipeline around ``vocab`` and ``merges`` (``None``: an empty model to
    train). Special tokens are added tokens, so a literal ``<mask>`` in text is one token; the
    mask token also takes the space before it, as RoBERTa's does (fill-mask writes "a <mask>").
    """
    model = models.BPE() if vocab is None else models.BPE(dict(vocab), list(merges or []))
    backend = Backend(model)
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=options.add_prefix_space)
    backend.decoder = decoders.ByteLevel()
    if vocab is not None:
        add_special_tokens(backend, special)
        attach_template(backend, special, options)
    return backend


def add_special_tokens(backend: Backend, special: SpecialTokens) -> None:
    present = [tok for tok in special.as_list() if backend.token_to_id(tok) is not None]
    backend.add_special_tokens([AddedToken(tok, special=True, normalized=False,
                                           lstrip=tok == special.mask) for tok in present])


def added_tokens_config(backend: Backend) -> dict[str, dict[str, Any]]:
    """The ``added_tokens_decoder`` entry of ``tokenizer_config.json``: transformers builds its
    added tokens (and their whitespace stripping) from it when it reads vocab.json +
    merges.txt."""
    return {str(index): {"content": token.content, "lstrip": token.lstrip,
                         "normalized": token.normalized, "rstrip": token.rstrip,
                         "single_word": token.single_word, "special": token.special}
            for index, token in sorted(backend.get_added_tokens_decoder().items())}


def attach_template(backend: Backend, special: SpecialTokens,
                    options: ByteLevelOptions) -> None:
    """Add ``<s> A </s>`` / ``<s> A </s></s> B </s>`` with the ids this vocabulary gives them."""
    ids = {tok: backend.token_to_id(tok) for tok in (special.cls, special.sep)}
    missing = [tok for tok, idx in ids.items() if idx is None]
    if missing:
        raise TokenizerError(f"the vocabulary lacks the special token(s) {missing}; "
                             f"{special.cls}/{special.sep} are needed to build model inputs")
    backend.post_processor = processors.RobertaProcessing(  # (sep, cls), positionally only
        (special.sep, ids[special.sep]), (special.cls, ids[special.cls]),
        trim_offsets=options.trim_offsets, add_prefix_space=options.add_prefix_space)


def read_vocab_and_merges(vocab_file: Path, merges_file: Path
                          ) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Read ``vocab.json`` (token → id) and ``merges.txt`` (one "a b" merge per line, an
    optional ``#version`` header first)."""
    try:
        vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
        lines = merges_file.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError as err:
        raise TokenizerError(f"{err.filename}: file not found") from None
    except UnicodeDecodeError as err:
        raise DataFormatError(f"not UTF-8 text ({err.reason})", vocab_file) from None
    except json.JSONDecodeError as err:
        raise DataFormatError(f"invalid JSON ({err.msg})", vocab_file, err.lineno) from None
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise DataFormatError("expected a JSON object of token → integer id", vocab_file)
    merges = []
    for number, line in enumerate(lines, start=1):
        if not line or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise DataFormatError(f"expected two space-separated pieces, got {line!r}",
                                  merges_file, number)
        merges.append((parts[0], parts[1]))
    return vocab, merges


def vocab_and_merges_text(backend: Backend) -> tuple[str, str]:
    """``vocab.json`` and ``merges.txt`` text of a byte-level BPE backend (for the older
    loaders that read them instead of ``tokenizer.json``)."""
    model = json.loads(backend.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    vocab = json.dumps(model["vocab"], ensure_ascii=False)
    return vocab, "#version: 0.2\n" + "".join(m + "\n" for m in merges)
