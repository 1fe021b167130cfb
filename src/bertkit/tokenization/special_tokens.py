"""The five special tokens an encoder's tokenizer needs, as strings.

BERT calls them ``[PAD] [UNK] [CLS] [SEP] [MASK]``; RoBERTa calls them ``<pad> <unk> <s> </s>
<mask>``. The strings are all that is fixed here: their *ids* differ between vocabularies
(BERT's released vocab has ``[PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103``, a vocab
trained by bertkit has them at 0..4), so every id is looked up in the vocabulary, never assumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from bertkit.errors import TokenizerError

# tokenizer_config.json / special_tokens_map.json key for each field (the Hugging Face names).
CONFIG_KEYS = {"pad": "pad_token", "unk": "unk_token", "cls": "cls_token", "sep": "sep_token",
               "mask": "mask_token"}


@dataclass(frozen=True)
class SpecialTokens:
    """Special-token strings; the field order is the id order a freshly trained vocab gets."""

    pad: str = "[PAD]"
    unk: str = "[UNK]"
    cls: str = "[CLS]"
    sep: str = "[SEP]"
    mask: str = "[MASK]"

    def __post_init__(self) -> None:
        values = self.as_list()
        for name, value in zip(CONFIG_KEYS, values, strict=True):
            if not isinstance(value, str) or not value or value != value.strip():
                raise TokenizerError(
                    f"special token {name!r} is {value!r}; expected a non-empty string without "
                    "surrounding whitespace"
                )
        if len(set(values)) != len(values):
            raise TokenizerError(f"special tokens must be distinct, got {values}")

    def as_list(self) -> list[str]:
        """The tokens in training order: pad, unk, cls, sep, mask (ids 0..4 when trained)."""
        return [getattr(self, f.name) for f in fields(self)]

    def to_config(self) -> dict[str, str]:
        """The ``*_token`` entries of a Hugging Face ``tokenizer_config.json``."""
        return {key: getattr(self, name) for name, key in CONFIG_KEYS.items()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], default: SpecialTokens | None = None
                    ) -> SpecialTokens:
        """Read ``pad_token``, ``unk_token``, … from a tokenizer config, keeping ``default``'s
        value for any key that is absent.

        Hugging Face writes a token either as a plain string or as a serialised ``AddedToken``
        (``{"content": "[CLS]", ...}``); both are accepted because both occur in real files.
        """
        base = default or cls()
        values: dict[str, str] = {}
        for name, key in CONFIG_KEYS.items():
            raw = config.get(key)
            if isinstance(raw, Mapping):
                raw = raw.get("content")
            values[name] = raw if isinstance(raw, str) else getattr(base, name)
        return cls(**values)


BERT_SPECIAL_TOKENS = SpecialTokens()
"""BERT's names; the default everywhere a WordPiece tokenizer is built."""
