"""Corpus source: Jane Austen's six novels (Debian ``r-cran-janeaustenr``, public domain).

The package stores each novel as an R character vector of its Project Gutenberg text lines
(hard-wrapped at ~70 characters, a blank line between paragraphs), read with
:mod:`bertkit.resources.rformat`. A document is one chapter: the text between two ``CHAPTER …``
headings,
its paragraphs unwrapped and sentence-split. Title pages and prefaces before the first chapter,
``VOLUME …`` headings, and everything from ``THE END`` / ``FINIS`` on (an editor's note in one
novel) are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from bertkit.data.corpus import split_sentences
from bertkit.resources.corpora.base import CorpusOptions, Document, Source
from bertkit.resources.rformat import lazy_load

ARTIFACT = "janeaustenr"
NOVELS = ("sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey",
          "persuasion")
"""Object names in the package's data, in publication order."""

_CHAPTER = re.compile(r"chapter\s+([ivxlc]+|\d+)\.?", re.IGNORECASE)
_VOLUME = re.compile(r"volume\s+([ivxlc]+|\d+)\.?", re.IGNORECASE)
_END = re.compile(r"the end|finis", re.IGNORECASE)


def chapters(lines: Sequence[str | None]) -> Iterator[Document]:
    """The chapters of one novel's text lines, each as its sentences in order."""
    paragraphs: list[str] = []
    current: list[str] = []
    started = False
    for raw in [*lines, None]:
        line = (raw or "").strip()
        heading = _CHAPTER.fullmatch(line) or _END.fullmatch(line) or raw is None
        if heading or not line or _VOLUME.fullmatch(line):
            if current:
                paragraphs.append(" ".join(current))
                current = []
            if heading:
                if started and paragraphs:
                    yield [s for p in paragraphs for s in split_sentences(p)]
                paragraphs = []
                started = bool(_CHAPTER.fullmatch(line))
                if not started and raw is not None:
                    return  # THE END / FINIS: what follows is not the novel
            continue
        if started:
            current.append(line)


def read(folder: Path, options: CorpusOptions) -> Iterator[Document]:
    """Every chapter of the six novels, novel by novel."""
    for novel in NOVELS:
        yield from chapters(lazy_load(folder, novel))


SOURCE = Source(ARTIFACT, read)
