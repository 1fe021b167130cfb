"""What every corpus source shares: the document type, the build options, the source record."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

_WORD = re.compile(r"[(\"'“‘]*[A-Za-z][A-Za-z'’-]*[.,;:!?)\"'”’]*")

Document = list[str]
"""One document: its sentences (non-empty strings) in their real order."""


@dataclass(frozen=True)
class CorpusOptions:
    """Knobs of sources whose text has no usable sentence or document boundaries."""

    chunk_words: int = 24  # words per pseudo-sentence for punctuation-free text
    tweets_per_document: int = 20  # consecutive tweets of one author per document


@dataclass(frozen=True)
class Source:
    """One corpus source: the artifact its text comes from and how documents are read."""

    artifact: str  # a key of bertkit.resources.artifacts.ARTIFACTS
    read: Callable[[Path, CorpusOptions], Iterator[Document]]  # (artifact folder, options)
    test_split: bool = False  # a fine-tuning evaluation set: left out unless asked for


def looks_like_prose(text: str) -> bool:
    """At least half of the whitespace tokens are words: code, tables, ASCII art and word
    lists left over by markup cleaning are not (a shared last filter for marked-up sources)."""
    tokens = text.split()
    return sum(bool(_WORD.fullmatch(token)) for token in tokens) * 2 >= len(tokens)
