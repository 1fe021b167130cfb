"""Classification tables: CSV, TSV, JSONL and Orange ``.tab`` files of texts and labels
(see :mod:`bertkit.data.readers` for the formats)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bertkit.data.readers.common import LabelKind, jsonl_records, read_text
from bertkit.errors import DataFormatError, UsageError

TableFormat = Literal["csv", "tsv", "jsonl", "tab"]
_SUFFIXES: dict[str, TableFormat] = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
                                     ".ndjson": "jsonl", ".tab": "tab"}

# --------------------------------------------------------------------------- classification


@dataclass(frozen=True)
class TextExample:
    """One classification record: text, optional pair text, label (``None`` when unlabelled;
    ``str`` multi-class, sorted ``tuple`` multi-label, ``float`` regression) and its origin."""

    text: str
    text_pair: str | None = None
    label: str | tuple[str, ...] | float | None = None
    path: Path | None = None
    line: int | None = None


def read_classification(
    path: str | Path,
    *,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str | None = "label",
    label_kind: LabelKind = "multiclass",
    label_separator: str | None = None,
    format: TableFormat | None = None,
) -> list[TextExample]:
    """Read classification examples from a CSV / TSV / JSONL / Orange ``.tab`` file.

    ``label_column=None`` reads unlabelled texts (for prediction). Multi-label labels in a
    CSV/TSV/.tab cell are split at ``label_separator`` (required then: a comma inside a label
    is too common to guess); in JSONL they are a list (or a string split at the separator).
    Parts are stripped and empty parts dropped, so an empty cell is the empty label set.

    Raises:
        DataFormatError: missing column (named, with the columns found), wrong field count,
            bad JSON, a label of the wrong kind, an empty file — each at ``path:line``.
        UsageError: an unknown format or label kind, or multi-label CSV without a separator.
    """
    path = Path(path)
    fmt = format or _SUFFIXES.get(path.suffix.lower())
    if fmt not in ("csv", "tsv", "jsonl", "tab"):
        raise UsageError(f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
                         "expected .csv, .tsv, .jsonl or .tab, or pass format=")
    if label_kind not in ("multiclass", "multilabel", "regression"):
        raise UsageError(f"label_kind={label_kind!r}; expected 'multiclass', 'multilabel' or "
                         "'regression'")
    if label_separator == "":
        raise UsageError("label_separator must be a non-empty string")
    if (label_kind == "multilabel" and label_column is not None and fmt != "jsonl"
            and label_separator is None):
        raise UsageError(f"{path}: multi-label labels in a {fmt.upper()} cell need "
                         "label_separator= (e.g. '|' for 'sports|politics')")
    text = read_text(path)
    if not text.strip():
        raise DataFormatError("file is empty; expected a header row and examples"
                              if fmt != "jsonl" else "file is empty; expected one JSON object "
                              "per line", path)
    columns = [text_column, text_pair_column, label_column]
    rows = jsonl_records(text, path) if fmt == "jsonl" else _table_rows(text, path, fmt, columns)
    examples: list[TextExample] = []
    for line, record in rows:
        values = {}
        for name in columns:
            if name is None:
                continue
            if name not in record:
                found = sorted(record) if fmt == "jsonl" else list(record)
                hint = next((c for c in record if c.lower() == name.lower()), None)
                extra = f" (did you mean {hint!r}?)" if hint else ""
                raise DataFormatError(f"no column {name!r}{extra}; the columns found are "
                                      f"{found}", path, line)
            values[name] = record[name]
        texts = []
        for name in (text_column, text_pair_column):
            if name is None:
                texts.append(None)
                continue
            value = values[name]
            if not isinstance(value, str):
                raise DataFormatError(f"column {name!r} holds {type(value).__name__} "
                                      f"{value!r}; expected a text string", path, line)
            texts.append(value)
        label = None
        if label_column is not None:
            label = _parse_label(values[label_column], label_kind, label_separator,
                                 label_column, path, line)
        examples.append(TextExample(texts[0], texts[1], label, path, line))
    if not examples:
        raise DataFormatError("has a header but no examples", path)
    return examples


def _table_rows(text: str, path: Path, fmt: str,
                wanted: Sequence[str | None]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV/TSV/.tab file as ``(first line of the record, {column: cell})``."""
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # long documents in one cell
    if fmt == "csv":
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    elif fmt == "tab":
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", strict=True)
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t",
                            quoting=csv.QUOTE_NONE)
    header: list[str] | None = None
    header_rows = 3 if fmt == "tab" else 1  # Orange: names, types, flags
    seen_header = 0
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataFormatError(f"malformed {fmt.upper()} record: {err}", path,
                                  start) from None
        if seen_header < header_rows:
            if seen_header == 0:
                header = [name.strip() for name in row]
                dupes = {c for c in header if header.count(c) > 1 and c in wanted}
                if dupes:
                    raise DataFormatError(f"column(s) {sorted(dupes)} occur more than once in "
                                          "the header", path, start)
            seen_header += 1
            continue
        if not row or (len(row) == 1 and not row[0].strip() and len(header or ()) > 1):
            continue  # blank line
        assert header is not None
        if len(row) != len(header):
            raise DataFormatError(f"has {len(row)} fields; the header has {len(header)} "
                                  f"({header})", path, start)
        yield start, dict(zip(header, row, strict=True))


def _parse_label(value: Any, kind: LabelKind, separator: str | None, column: str, path: Path,
                 line: int) -> str | tuple[str, ...] | float:
    if kind == "regression":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise DataFormatError(f"column {column!r} holds {value!r}; expected a number "
                                  "(regression)", path, line)
        try:
            number = float(value)
        except ValueError:
            raise DataFormatError(f"column {column!r} holds {value!r}; expected a number "
                                  "(regression)", path, line) from None
        if not math.isfinite(number):
            raise DataFormatError(f"column {column!r} holds {value!r}; expected a finite "
                                  "number", path, line)
        return number
    if kind == "multilabel":
        if isinstance(value, list):
            parts = [_label_string(v, column, path, line) for v in value]
        elif isinstance(value, str) and separator is not None:
            parts = value.split(separator)
        else:
            raise DataFormatError(f"column {column!r} holds {value!r}; expected a list of "
                                  "labels (or pass label_separator= for joined strings)",
                                  path, line)
        return tuple(sorted({p.strip() for p in parts if p.strip()}))
    label = _label_string(value, column, path, line).strip()
    if not label:
        raise DataFormatError(f"column {column!r} is empty; expected a label", path, line)
    return label


def _label_string(value: Any, column: str, path: Path, line: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # JSON 0/1 labels become "0"/"1"
    raise DataFormatError(f"column {column!r} holds {type(value).__name__} {value!r}; "
                          "expected a string (or integer) label", path, line)
