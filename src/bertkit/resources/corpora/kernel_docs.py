"""Corpus source: the Linux kernel's documentation (Debian ``linux-doc-6.1``), reST to prose.

A document is one ``Documentation/**/*.rst.gz`` file (``translations/`` is left out: it holds
the same texts in other languages), so sentence order inside a document is the author's.

reStructuredText is cleaned with a small line-based pass, not a full reST parser — the goal is
English sentences for masked-LM and next-sentence training, and what the rules miss is caught
by a last filter that drops code-like paragraphs:

- **Dropped blocks**: directives other than admonitions (``.. code-block::``, ``.. toctree::``,
  ``.. kernel-doc::``, ``.. flat-table::`` …) with their indented body; comments and link
  targets (``.. _label:``, ``.. SPDX-…``) with theirs; literal blocks (the indented block after
  a paragraph ending in ``::``, whose ``::`` becomes ``:``); grid and simple tables; field lists
  (``:Author: …``); section-title under- and overlines (the title stays, as its own line).
- **Kept, unwrapped**: paragraphs, list items (markers removed), admonition bodies
  (``.. note::``) and indented prose, each joined across its hard-wrapped lines.
- **Inline markup**: roles (``:c:func:`kmalloc``` → ``kmalloc``, ``:ref:`Title <label>``` →
  ``Title``), ``literals``, ``*emphasis*``, hyperlinks (```text <url>`_`` → ``text``) and
  substitutions (``|name|`` → ``name``) are reduced to their text.
- **Code-like paragraphs** (fewer than half of the tokens are words) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from bertkit.data.corpus import iter_lines, split_sentences
from bertkit.resources.corpora.base import CorpusOptions, Document, Source, looks_like_prose

ARTIFACT = "linux-doc"

ADMONITIONS = frozenset(("note", "warning", "attention", "important", "tip", "hint",
                         "caution", "danger", "error", "admonition", "seealso"))
_EXPLICIT = re.compile(r"\.\.(?:\s+([\w:-]+)::|\s|$)")  # directive (group 1) or comment
_SECTION_RULE = re.compile(r"([=\-~^\"'`*+#.:_])\1{2,}\s*")
_SIMPLE_TABLE_RULE = re.compile(r"=+(?: +=+)+\s*")
_GRID_LINE = re.compile(r"[+|]")
_FIELD = re.compile(r":[\w -]+:(?:\s|$)")
_BULLET = re.compile(r"(?:[-*+•]|\(?#\)?[.)]?|\(?\d+[.)]|\(?[a-zA-Z][.)])\s+")

_ROLE = re.compile(r":[\w:.+-]+:`([^`]*)`")
_LINK = re.compile(r"`([^`<]*?)\s*<[^`>]*>`_{1,2}")
_LITERAL = re.compile(r"``(.+?)``")
_INTERPRETED = re.compile(r"`([^`]+)`_{0,2}")
_EMPHASIS = re.compile(r"\*{1,2}(\S(?:.*?\S)?)\*{1,2}")
_SUBSTITUTION = re.compile(r"\|([\w -]+)\|")
_REFERENCE = re.compile(r"\b(\w+)__?(?=[\s.,;:)]|$)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def rest_paragraphs(lines: Iterable[str]) -> list[str]:
    """The prose paragraphs of a reST text (one string each, markup removed; see module doc)."""
    paragraphs: list[str] = []
    current: list[str] = []
    skip_deeper_than: int | None = None  # dropping an indented block opened at this indent
    in_table = False  # inside a simple table (rows between "=== ===" rules)
    after_rule = False  # the last non-blank line was such a rule
    previous_blank = True
    paragraph_indent = 0  # where the current paragraph's text lines start

    def flush() -> None:
        if current:
            paragraphs.append(" ".join(current))
            current.clear()

    for raw in lines:
        line = raw.rstrip("\n").replace("\t", "        ").rstrip()
        stripped = line.strip()
        if skip_deeper_than is not None:
            if not stripped or _indent(line) > skip_deeper_than:
                continue
            skip_deeper_than = None
        if not stripped:
            flush()
            in_table = in_table and not after_rule  # a simple table ends after a rule
            previous_blank = True
            continue
        first_in_block = previous_blank
        previous_blank = False
        after_rule = bool(_SIMPLE_TABLE_RULE.fullmatch(stripped))
        if after_rule:
            flush()
            in_table = True
            continue
        if in_table or _GRID_LINE.match(stripped) or _SECTION_RULE.fullmatch(stripped):
            flush()  # a title under/overline ends the title paragraph; tables are dropped
            continue
        explicit = _EXPLICIT.match(stripped)
        if explicit:
            flush()
            if explicit.group(1) and explicit.group(1).lower() in ADMONITIONS:
                rest = stripped[explicit.end():].strip()  # ".. note:: text on the same line"
                if rest:
                    current.append(rest)
            else:
                skip_deeper_than = _indent(line)
            continue
        if _FIELD.match(stripped):
            flush()
            continue
        indent = _indent(line)
        bullet = _BULLET.match(stripped)
        if bullet and (first_in_block or stripped[0] in "-*+•"):
            flush()
            stripped = stripped[bullet.end():]
            indent += bullet.end()  # a list item's text is aligned after its marker
        elif current and indent != paragraph_indent:
            flush()  # a definition under its term, or a block quote after a paragraph
        if not current:
            paragraph_indent = indent
        current.append(stripped)
        if stripped.endswith("::"):
            # A literal block follows: keep "text:" and drop the indented code after it.
            current[-1] = stripped[:-2].rstrip() + (":" if stripped[:-2].strip() else "")
            flush()
            skip_deeper_than = _indent(line)
    flush()
    return [p for p in (clean_inline(p) for p in paragraphs) if p and looks_like_prose(p)]


def clean_inline(text: str) -> str:
    """Reduce reST inline markup to its text and collapse whitespace."""
    text = _ROLE.sub(lambda m: _role_text(m.group(1)), text)
    text = _LINK.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    text = _INTERPRETED.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\1", text)
    text = _SUBSTITUTION.sub(r"\1", text)
    text = _REFERENCE.sub(r"\1", text)
    return " ".join(text.split())


def _role_text(content: str) -> str:
    """``Title <target>`` → ``Title``; ``~a.b.c`` → ``c``; else the content itself."""
    titled = re.fullmatch(r"(.*?)\s*<[^>]*>", content, re.DOTALL)
    if titled and titled.group(1):
        return titled.group(1)
    return content.rsplit(".", 1)[-1] if content.startswith("~") else content


def document(path: Path) -> Document:
    """The sentences of one ``.rst`` / ``.rst.gz`` file, in order."""
    paragraphs = rest_paragraphs(text for _, text in iter_lines(path))
    return [sentence for paragraph in paragraphs for sentence in split_sentences(paragraph)]


def read(folder: Path, options: CorpusOptions) -> Iterator[Document]:
    """Every English ``*.rst.gz`` under ``folder`` (the artifact's Documentation/), by path."""
    for path in sorted(folder.rglob("*.rst.gz")):
        if path.relative_to(folder).parts[0] == "translations":
            continue
        sentences = document(path)
        if sentences:
            yield sentences


SOURCE = Source(ARTIFACT, read)
