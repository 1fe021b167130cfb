"""Source–target pairs for sequence-to-sequence training (translation, summarisation).

Two formats, chosen by suffix or ``format=``:

* **TSV** (``.tsv``, ``.txt``): one pair per line, ``source<TAB>target``, no header and no
  quoting (a quote is a literal character, as in the parallel corpora distributed as TSV).
  Exactly two fields: a third tab almost always means a misaligned line, so it is an error.
* **JSONL** (``.jsonl``, ``.ndjson``): one object per line with a source and a target field
  (``source`` / ``target`` by default; :func:`bertkit.resources.ddtp.build_ddtp` also writes
  ``source_paragraph`` / ``target_paragraph``).

Blank lines are skipped. Every other problem (wrong field count, an empty source or target,
bad JSON, a missing or non-string field, a file without pairs) raises a
:class:`~bertkit.errors.DataFormatError` at ``path:line`` saying what was expected: a silently
dropped line would shift the alignment a user thinks they have.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bertkit.data.readers.common import jsonl_records, read_text
from bertkit.errors import DataFormatError, UsageError

PairFormat = Literal["tsv", "jsonl"]
_SUFFIXES: dict[str, PairFormat] = {".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl",
                                    ".ndjson": "jsonl"}


@dataclass(frozen=True)
class TextPair:
    """One source–target pair and where it came from (for later error messages)."""

    source: str
    target: str
    path: Path | None = None
    line: int | None = None


def read_pairs(path: str | Path, *, format: PairFormat | None = None,
               source_field: str = "source", target_field: str = "target") -> list[TextPair]:
    """Read source–target pairs from a TSV or JSONL file (see the module docstring).

    ``source_field`` / ``target_field`` name the JSONL fields (ignored for TSV, whose columns
    are positional). Texts are kept as written except for surrounding whitespace.

    Raises:
        DataFormatError: at ``path:line`` for each kind of bad line; an empty file.
        UsageError: an unknown format or suffix.
    """
    path = Path(path)
    fmt = format or _SUFFIXES.get(path.suffix.lower())
    if fmt not in ("tsv", "jsonl"):
        raise UsageError(f"{path}: cannot tell the pair format from the suffix "
                         f"{path.suffix!r}; expected .tsv, .txt or .jsonl, or pass format=")
    text = read_text(path)
    names = ("source", "target")
    rows = (_tsv_rows(text, path, names) if fmt == "tsv"
            else _jsonl_rows(text, path, source_field, target_field))
    expected = "source<TAB>target lines" if fmt == "tsv" else "one JSON object per line"
    return [TextPair(source.strip(), target.strip(), path, line)
            for line, source, target in _non_empty(rows, path, names, expected)]


def read_tsv_pairs(path: str | Path, *, names: tuple[str, str] = ("source", "target")
                   ) -> list[tuple[int, str, str]]:
    """(line, first, second) of every pair of a two-column TSV file, texts as written (the
    TSV rules of the module docstring; ``names`` name the columns in error messages, e.g.
    ``("original", "modified")``)."""
    path = Path(path)
    rows = _tsv_rows(read_text(path), path, names)
    return _non_empty(rows, path, names, f"{names[0]}<TAB>{names[1]} lines")


def _non_empty(rows: Iterator[tuple[int, str, str]], path: Path, names: tuple[str, str],
               expected: str) -> list[tuple[int, str, str]]:
    """``rows``, each side checked non-empty; a file without rows is an error too."""
    checked = []
    for line, first, second in rows:
        for side, value in zip(names, (first, second), strict=True):
            if not value.strip():
                raise DataFormatError(f"empty {side} text; expected a non-empty {names[0]} "
                                      f"and {names[1]} on every line", path, line)
        checked.append((line, first, second))
    if not checked:
        raise DataFormatError(f"no pairs; expected {expected}", path)
    return checked


def _tsv_rows(text: str, path: Path, names: tuple[str, str]) -> Iterator[tuple[int, str, str]]:
    for number, raw in enumerate(text.split("\n"), start=1):
        raw = raw.removesuffix("\r")
        if not raw.strip():
            continue
        fields = raw.split("\t")
        if len(fields) != 2:
            raise DataFormatError(f"has {len(fields)} tab-separated field(s); expected 2 "
                                  f"({names[0]}<TAB>{names[1]})", path, number)
        yield number, fields[0], fields[1]


def _jsonl_rows(text: str, path: Path, source_field: str,
                target_field: str) -> Iterator[tuple[int, str, str]]:
    for number, record in jsonl_records(text, path):
        values = []
        for name in (source_field, target_field):
            if name not in record:
                raise DataFormatError(f"no field {name!r}; the fields found are "
                                      f"{sorted(record)}", path, number)
            value = record[name]
            if not isinstance(value, str):
                raise DataFormatError(f"field {name!r} holds {type(value).__name__} "
                                      f"{value!r}; expected a text string", path, number)
            values.append(value)
        yield number, values[0], values[1]
