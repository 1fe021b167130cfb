"""Corpus source: the GNU Collaborative International Dictionary of English (Debian
``dict-gcide``): Webster's 1913 definitions with their literary quotations, plus later
additions.

``gcide.dict.dz`` is dictd's database: gzip-compatible text in which an entry starts with an
unindented line ``Headword \\Pro*nun"ci*a`tion\\, pos. [etymology]`` and continues with
indented lines; blank lines separate its senses, notes and quotations. A document is one entry,
its blocks in dictionary order (senses, each followed by the quotations that illustrate it).

Cleaning, per block: the headword with its pronunciation and part of speech, etymologies and
editorial brackets (``[1913 Webster]``, ``[Obs.]``, ``[L. ad + fatuus.]``), leading sense
numbers and subject labels (``2. (Bot.)``), quotation attributions (``--Milton.``) and the
cross-reference braces (``{Afeard}`` → ``Afeard``) are removed; synonym lists (``Syn: …``) and
blocks that are not prose (word lists, tables) are dropped. The database's own header (entries
``00-database-*`` and the licence text) comes before the first headword and is skipped.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from bertkit.data.corpus import split_sentences
from bertkit.errors import DataFormatError
from bertkit.resources.corpora.base import CorpusOptions, Document, Source, looks_like_prose

ARTIFACT = "gcide"
FILENAME = "gcide.dict.dz"

# Headword(s) with \pronunciation\ and (respelling): "Abassi \A*bas"si\ (..), Abassis \..\".
_HEAD = re.compile(r"^[^\\]*\\[^\\]*\\(?:[\s,]*(?:\([^()]*\))?[\s,]*[\w'\- ]+\s*\\[^\\]*\\)*")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")  # innermost [...]; applied until none is left
# Part of speech, inflections and labels after the headword: ", n.; pl. {Activities}. (Bot.)".
_GRAMMAR = re.compile(r"^[\s,;.]*(?:(?:[a-z]{1,6}\.|&|\([^()]*\)|\{[^{}]*\})[\s,;.]*)*")
# A sense number (also WordNet's doubled "1. 1") and a subject label: "2. (Bot.)".
_SENSE = re.compile(r"^(?:\d+\.|\([a-z]\))\s*(?:\d+:?\s+)?(?:\((?:[A-Z][\w.]*\s*)+\)\s*)?")
# A quotation's source: "--Milton.", "--Bp. Hall.", "--Sir W. Scott.", anywhere in a block.
_ATTRIBUTION = re.compile(r"\s*--\s?(?:[A-Z][\w'&]*\s)*?[A-Z][\w'&]*\s?\.(?:\s[A-Z0-9][\w'&]*\.)*"
                          r"(?=\s|$)")
_BRACES = re.compile(r"[{}]")
_PRONUNCIATION = re.compile(r"\\[^\\]{0,80}\\|\\")  # "\Ad*just"ing\" in sub-entries; strays


def clean_block(text: str, head: bool = False) -> str:
    """One block of an entry reduced to prose ('' when nothing is left; see module doc)."""
    text = " ".join(text.split())
    if head:
        text = _HEAD.sub("", text, count=1)
    while True:
        text, removed = _BRACKETS.subn("", text)
        if not removed:
            break
    if head:
        text = _GRAMMAR.sub("", text, count=1)
    text = _SENSE.sub("", text.strip(), count=1)
    text = _ATTRIBUTION.sub("", text)
    text = _BRACES.sub("", _PRONUNCIATION.sub("", text))
    text = " ".join(text.split())
    if text.startswith("Syn:") or not looks_like_prose(text):
        return ""
    return text


def entries(lines: Iterable[str]) -> Iterator[list[list[str]]]:
    """The entries of a dictd text, each as its blocks, each block as its raw lines."""
    blocks: list[list[str]] | None = None
    for line in lines:
        if line[:1].strip():  # an unindented line
            if "\\" not in line:
                continue  # header text, list leftovers, stray "[1913 Webster]" markers
            if blocks:
                yield blocks
            blocks = [[line]]
        elif blocks is None:
            continue
        elif not line.strip():
            if blocks[-1]:
                blocks.append([])
        else:
            blocks[-1].append(line)
    if blocks:
        yield blocks


def entry_document(blocks: list[list[str]]) -> Document:
    """One entry's sentences: cleaned blocks, sentence-split, in order."""
    sentences: Document = []
    for index, block in enumerate(blocks):
        text = clean_block(" ".join(block), head=index == 0)
        if text:
            # One-token leftovers ("1.", "(Zool.)", a bare headword) are markup, not text.
            sentences.extend(s for s in split_sentences(text) if " " in s)
    return sentences


def read(folder: Path, options: CorpusOptions) -> Iterator[Document]:
    """Every entry of the dictionary with some prose left after cleaning, in file order."""
    path = folder / FILENAME
    try:
        with gzip.open(path, "rb") as handle:
            for blocks in entries(_decode(line) for line in handle):
                document = entry_document(blocks)
                if document:
                    yield document
    except (OSError, EOFError) as err:
        raise DataFormatError(f"cannot read the dictionary: {err}", path) from None


def _decode(line: bytes) -> str:
    """UTF-8, except for the few lines (3 in 0.48.5) pasted in as Windows-1252."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("cp1252", errors="replace")


SOURCE = Source(ARTIFACT, read)
