"""Stream documents out of plain-text corpora, and count what is wrong with them.

A *document* is a list of sentences (strings). Two input layouts are understood:

- ``"lines"``: the original BERT layout — one sentence per line, a blank line between
  documents. The end of a file also ends a document (Google's reader lets a document run on
  into the next file; that joins unrelated texts, which is never what a user means).
- ``"free"``: ordinary prose. A block of non-blank lines is a paragraph; its lines are joined
  with spaces (hard-wrapped text is common) and cut into sentences by :func:`split_sentences`.
  Each paragraph is a document by default, or each file is one (``document_break="file"``),
  which keeps the sentence order of a book intact across paragraphs for next-sentence pairs.

Everything streams: files are read line by line and documents are yielded one at a time, so a
corpus larger than memory can be read. The one thing kept per line is a 64-bit hash for the
exact-duplicate count (about 70 bytes a unique line in a Python set); pass
``count_duplicates=False`` to turn that off on very large corpora.

Duplicates matter because a corpus full of repeated lines (boiler-plate, scraped menus) lets the
model memorise instead of learn; a masked-LM loss that stays near 7 is the known symptom. When
the duplicate ratio passes a threshold the reader emits a :class:`DuplicateLinesWarning`.
"""

from __future__ import annotations

import glob
import gzip
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from bertkit.errors import DataFormatError, UsageError

CorpusFormat = Literal["lines", "free"]
DocumentBreak = Literal["paragraph", "file"]

#: Duplicate-line ratio above which the reader warns. Clean encyclopaedic text is well under 1 %;
#: 10 % means a tenth of the training signal is repetition.
DEFAULT_DUPLICATE_WARNING = 0.10


class DuplicateLinesWarning(UserWarning):
    """A corpus repeats too many lines exactly; masked-LM training on it tends to stall."""


@dataclass
class CorpusStats:
    """Counts gathered while a corpus streams past; filled in place by :func:`read_documents`.

    ``lines`` counts non-blank lines, ``duplicate_lines`` those whose exact text (after stripping
    surrounding whitespace) was already seen earlier in the corpus — so ten copies of a line
    count as nine duplicates.
    """

    files: int = 0
    documents: int = 0
    lines: int = 0
    sentences: int = 0
    duplicate_lines: int = 0

    @property
    def duplicate_ratio(self) -> float:
        """Fraction of non-blank lines that repeat an earlier line (0.0 for an empty corpus)."""
        return self.duplicate_lines / self.lines if self.lines else 0.0

    def duplicate_warning(self, threshold: float = DEFAULT_DUPLICATE_WARNING) -> str | None:
        """The warning text when the duplicate ratio exceeds ``threshold``, else ``None``."""
        if self.duplicate_ratio <= threshold:
            return None
        return (
            f"{self.duplicate_lines} of {self.lines} lines ({self.duplicate_ratio:.1%}) repeat an "
            f"earlier line exactly (threshold {threshold:.0%}); masked-LM loss often stalls near 7 "
            "on such data — deduplicate the corpus"
        )


def expand_sources(sources: str | Path | Iterable[str | Path]) -> list[Path]:
    """Turn files, directories and glob patterns into a sorted, de-duplicated list of files.

    Directories are searched recursively; hidden files and folders (names starting with ``.``)
    are skipped, as editors and version control leave them there. A source that names nothing
    is an error rather than an empty corpus, because a typo in a path should not train a model
    on nothing.
    """
    if isinstance(sources, str | Path):
        sources = [sources]
    sources = list(sources)
    if not sources:
        raise UsageError("no corpus sources given: name files, directories or glob patterns")
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            files = [p for p in sorted(path.rglob("*"))
                     if p.is_file() and not _hidden(p.relative_to(path))]
            if not files:
                raise DataFormatError("directory holds no (non-hidden) files", path)
            found.extend(files)
        elif glob.has_magic(str(source)):
            matches = sorted(Path(p) for p in glob.glob(str(source), recursive=True))
            files = [p for p in matches if p.is_file()]
            if not files:
                raise DataFormatError("glob pattern matches no files", source)
            found.extend(files)
        else:
            raise DataFormatError("no such file or directory", source)
    return list(dict.fromkeys(found))


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line of a UTF-8 file (``.gz`` is decompressed).

    Lines are decoded one at a time so that a bad byte is reported with its line number, and a
    byte-order mark at the start of the file is dropped (Windows editors write one).

    Raises:
        DataFormatError: the file is not UTF-8, or a ``.gz`` file is corrupt.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        handle: BinaryIO
        with opener(path, "rb") as handle:  # type: ignore[operator]
            for number, raw in enumerate(handle, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataFormatError(
                        f"not UTF-8 text ({err.reason} at byte {err.start} of the line); "
                        "re-encode the file as UTF-8",
                        path,
                        number,
                    ) from None
                if number == 1 and text.startswith("\ufeff"):
                    text = text[1:]
                yield number, text
    except (OSError, EOFError) as err:  # unreadable file, or a truncated / corrupt .gz stream
        raise DataFormatError(f"cannot read file: {err}", path) from None


_ABBREVIATIONS = frozenset((
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf",
    "fig", "figs", "no", "nos", "vol", "vols", "ed", "eds", "inc", "ltd", "co", "corp", "dept",
    "est", "approx", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec",
))
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*\s+")
_OPENERS = "\"'“‘([¿¡"


def split_sentences(text: str) -> list[str]:
    """Cut a paragraph into sentences with a small, predictable rule.

    A sentence ends at ``.``, ``!`` or ``?`` (repeats allowed, closing quotes or brackets may
    follow) when whitespace comes next and the next word starts with an upper-case letter, a
    digit, or an opening quote/bracket. A full stop does not end a sentence after a common
    abbreviation (``Mr.``, ``e.g.``, ``Fig.``, month names …) or after a single capital letter
    (initials such as ``J. R. R. Tolkien``). The rule errs towards too-long sentences rather
    than cutting mid-sentence: a long A/B segment only costs truncation, a cut one makes bad
    next-sentence pairs. Whitespace inside sentences is collapsed to single spaces.
    """
    text = " ".join(text.split())
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        after = text[match.end() : match.end() + 2]
        if not after:
            continue
        first = after[1] if after[0] in _OPENERS and len(after) > 1 else after[0]
        if not (first.isupper() or first.isdigit() or after[0] in _OPENERS):
            continue
        if text[match.start()] == ".":
            word = text[start : match.start()].rsplit(" ", 1)[-1].lstrip(_OPENERS)
            if word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper()):
                continue
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def read_documents(
    sources: str | Path | Iterable[str | Path],
    *,
    fmt: CorpusFormat = "lines",
    document_break: DocumentBreak = "paragraph",
    stats: CorpusStats | None = None,
    count_duplicates: bool = True,
    duplicate_warning: float | None = DEFAULT_DUPLICATE_WARNING,
) -> Iterator[list[str]]:
    """Stream the documents of a corpus, each a non-empty list of sentences.

    Args:
        sources: files, directories (searched recursively) and glob patterns, read in sorted
            order so two runs see the same corpus the same way.
        fmt: ``"lines"`` (one sentence per line, blank line between documents) or ``"free"``
            (paragraphs of prose, split by :func:`split_sentences`).
        document_break: for ``"free"`` only: a document per paragraph or per file.
        stats: a :class:`CorpusStats` to fill in as the corpus streams (complete once the
            generator is exhausted).
        count_duplicates: keep line hashes to count exact duplicates.
        duplicate_warning: warn (:class:`DuplicateLinesWarning`) at the end when the duplicate
            ratio exceeds this; ``None`` never warns.

    Raises:
        DataFormatError: a source names nothing, a file is not UTF-8 (with ``path:line``), or a
            file holds no text at all.
        UsageError: no sources, or an unknown ``fmt`` / ``document_break``.
    """
    if fmt not in ("lines", "free"):
        raise UsageError(f"unknown corpus format {fmt!r}; expected 'lines' or 'free'")
    if document_break not in ("paragraph", "file"):
        raise UsageError(
            f"unknown document_break {document_break!r}; expected 'paragraph' or 'file'"
        )
    stats = CorpusStats() if stats is None else stats
    seen: set[int] = set()
    for path in expand_sources(sources):
        stats.files += 1
        file_lines = 0
        for document in _documents_in_file(path, fmt, document_break):
            for kind, text in document:
                if kind == "line":
                    file_lines += 1
                    stats.lines += 1
                    if count_duplicates:
                        key = hash(text)
                        if key in seen:
                            stats.duplicate_lines += 1
                        else:
                            seen.add(key)
            sentences = [text for kind, text in document if kind == "sentence"]
            if sentences:
                stats.documents += 1
                stats.sentences += len(sentences)
                yield sentences
        if file_lines == 0:
            raise DataFormatError(
                "file is empty (no non-blank line); expected text with one sentence per line "
                "and a blank line between documents" if fmt == "lines" else
                "file is empty (no non-blank line); expected paragraphs of text",
                path,
            )
    if duplicate_warning is not None:
        message = stats.duplicate_warning(duplicate_warning)
        if message:
            warnings.warn(message, DuplicateLinesWarning, stacklevel=2)


def corpus_stats(
    sources: str | Path | Iterable[str | Path],
    *,
    fmt: CorpusFormat = "lines",
    document_break: DocumentBreak = "paragraph",
) -> CorpusStats:
    """Read a whole corpus once and return its statistics (no warning; the caller decides)."""
    stats = CorpusStats()
    for _ in read_documents(
        sources, fmt=fmt, document_break=document_break, stats=stats, duplicate_warning=None
    ):
        pass
    return stats


# A document in flight is a list of tagged items: ("line", raw line) for statistics and
# ("sentence", text) for the output. Tagging keeps line counting and sentence splitting in one
# pass without a second read of the file.
_Items = list[tuple[str, str]]


def _documents_in_file(path: Path, fmt: CorpusFormat,
                       document_break: DocumentBreak) -> Iterator[_Items]:
    """Yield one file's documents as tagged item lists (see ``_Items``)."""
    document: _Items = []
    paragraph: list[str] = []

    def flush_paragraph() -> None:
        if paragraph:
            document.extend(("sentence", s) for s in split_sentences(" ".join(paragraph)))
            paragraph.clear()

    for _, raw in iter_lines(path):
        line = raw.strip()
        if not line:
            if fmt == "free":
                flush_paragraph()
                if document_break == "file":
                    continue
            if document:
                yield document
                document = []
            continue
        document.append(("line", line))
        if fmt == "lines":
            document.append(("sentence", line))
        else:
            paragraph.append(line)
    flush_paragraph()
    if document:
        yield document
