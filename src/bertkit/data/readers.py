"""Readers for the labelled files users bring: classification tables, CoNLL NER, SQuAD JSON.

Every reader returns plain records that remember where they came from (``path``, ``line``), so
a problem found later (an unknown label at evaluation, an answer the tokenizer cannot place)
still points at the file line. Every mistake in a file raises a
:class:`~bertkit.errors.DataFormatError` whose message starts with ``path:line:`` and says what
was expected; nothing is skipped silently.

Formats:

* **Classification**: CSV (comma, ``"`` quoting), TSV (tab, NO quoting: quotes are literal, as
  in GLUE's files), JSONL (one object per line), Orange ``.tab`` (tab, ``"`` quoting, three
  header lines: names, types, flags). CSV/TSV/.tab need a header row naming the columns. The
  format comes from the suffix (``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``, ``.tab``) or
  ``format=``. Label kinds are chosen explicitly, never guessed from the values (see
  :data:`LabelKind`).
* **NER**: CoNLL style: one token per line, the token in the first column and the tag in the
  last, separated by a tab (then tokens may contain spaces) or by whitespace; a blank (or
  whitespace-only) line ends a sentence; ``-DOCSTART-`` lines are skipped. Tags must be BIO
  (``O``, ``B-X``, ``I-X``; IOB1 passes, see :func:`~bertkit.data.tags.validate_bio`).
* **QA**: SQuAD 1.1 / 2.0 JSON (``data[].paragraphs[].{context, qas[]}``; each qa has ``id``,
  ``question``, ``answers[{text, answer_start}]`` and, in 2.0, ``is_impossible``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bertkit.data.tags import validate_bio
from bertkit.errors import DataFormatError, UsageError

__all__ = [
    "Answer",
    "LabelKind",
    "LabelMap",
    "NerSentence",
    "QAExample",
    "SquadData",
    "TableFormat",
    "TextExample",
    "gold_answers",
    "read_classification",
    "read_conll",
    "read_squad",
]

LabelKind = Literal["multiclass", "multilabel", "regression"]
"""``multiclass``: one string label per text (ints in JSONL are read as their string).
``multilabel``: a set of string labels (a JSON list, or a string split at ``label_separator``).
``regression``: one float."""

TableFormat = Literal["csv", "tsv", "jsonl", "tab"]
_SUFFIXES: dict[str, TableFormat] = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
                                     ".ndjson": "jsonl", ".tab": "tab"}


# --------------------------------------------------------------------------- shared


def _read_text(path: Path) -> str:
    """The file's text (UTF-8, a BOM dropped); a decoding error names its line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError("file not found", path) from None
    except IsADirectoryError:
        raise DataFormatError("is a directory; expected a data file", path) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise DataFormatError(f"not UTF-8 text ({err.reason} at byte {err.start})", path,
                              line) from None


@dataclass(frozen=True)
class LabelMap:
    """Label strings ↔ ids; ``labels[i]`` has id ``i``.

    Built from the TRAINING data, sorted, so the same data always gives the same ids; saved in
    ``config.json`` as ``id2label``/``label2id`` (:meth:`to_config`) and read back with
    :meth:`from_config`, so evaluation and prediction use the training run's ids.
    """

    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.labels:
            raise UsageError("a label map needs at least one label")
        bad = [x for x in self.labels if not isinstance(x, str)]
        if bad:
            raise UsageError(f"labels must be strings, got {bad[:3]!r}")
        if len(set(self.labels)) != len(self.labels):
            raise UsageError(f"labels must be distinct, got {list(self.labels)}")

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelMap:
        """Sorted unique labels."""
        return cls(tuple(sorted(set(labels))))

    @classmethod
    def from_examples(cls, examples: Sequence[TextExample]) -> LabelMap:
        """Every label of multi-class or multi-label training examples."""
        found: set[str] = set()
        for example in examples:
            if isinstance(example.label, str):
                found.add(example.label)
            elif isinstance(example.label, tuple):
                found.update(example.label)
            else:
                raise UsageError(f"{location(example)}example has label {example.label!r}; a "
                                 "label map is built from string labels (not regression)")
        if not found:
            raise UsageError("the training examples carry no label at all")
        return cls.from_labels(found)

    @classmethod
    def from_sentences(cls, sentences: Sequence[NerSentence]) -> LabelMap:
        """Every tag of tagged NER training sentences."""
        tags = {tag for s in sentences for tag in (s.tags or ())}
        if not tags:
            raise UsageError("the training sentences carry no tags")
        return cls.from_labels(tags)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LabelMap:
        """Read ``id2label`` (keys may be ints or digit strings, as JSON writes them)."""
        raw = config.get("id2label")
        if not isinstance(raw, Mapping) or not raw:
            raise UsageError("config has no id2label mapping; expected {'0': 'label', ...}")
        try:
            pairs = sorted((int(k), v) for k, v in raw.items())
        except (TypeError, ValueError):
            raise UsageError(f"id2label keys must be integers, got {list(raw)[:5]}") from None
        if [i for i, _ in pairs] != list(range(len(pairs))):
            raise UsageError(f"id2label ids must be 0..{len(pairs) - 1}, got "
                             f"{[i for i, _ in pairs]}")
        return cls(tuple(v for _, v in pairs))

    def to_config(self) -> dict[str, dict[Any, Any]]:
        """``{"id2label": {0: label, ...}, "label2id": {label: 0, ...}}`` for ``config.json``."""
        return {"id2label": dict(enumerate(self.labels)), "label2id": self.label2id}

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: object) -> bool:
        return label in self.labels

    def id_of(self, label: str, path: str | Path | None = None, line: int | None = None,
              what: str = "label") -> int:
        """Id of ``label``; an unseen one raises a :class:`DataFormatError` at ``path:line``."""
        index = self.label2id.get(label)
        if index is None:
            shown = list(self.labels) if len(self.labels) <= 20 else [*self.labels[:20], "..."]
            raise DataFormatError(f"unknown {what} {label!r}; the training data has "
                                  f"{len(self.labels)}: {shown}", path, line)
        return index


def location(record: Any) -> str:
    """``"path:line: "`` of a record read from a file (for error messages), or ``""``."""
    path, line = getattr(record, "path", None), getattr(record, "line", None)
    if path is None:
        return ""
    return f"{path}:{line}: " if line is not None else f"{path}: "


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
    text = _read_text(path)
    if not text.strip():
        raise DataFormatError("file is empty; expected a header row and examples"
                              if fmt != "jsonl" else "file is empty; expected one JSON object "
                              "per line", path)
    columns = [text_column, text_pair_column, label_column]
    rows = _jsonl_rows(text, path) if fmt == "jsonl" else _table_rows(text, path, fmt, columns)
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


def _jsonl_rows(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    # Split on "\n" only: JSON strings may hold U+2028 & co. raw, which str.splitlines splits.
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"invalid JSON: {err.msg} (column {err.colno})", path,
                                  number) from None
        if not isinstance(record, dict):
            raise DataFormatError(f"expected a JSON object per line, got "
                                  f"{type(record).__name__}", path, number)
        yield number, record


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


# --------------------------------------------------------------------------- CoNLL NER


@dataclass(frozen=True)
class NerSentence:
    """One sentence: its words, their tags (``None`` for untagged input) and the file line of
    its first word (word ``i`` sits on line ``line + i``)."""

    words: list[str]
    tags: list[str] | None = None
    path: Path | None = None
    line: int | None = None


def read_conll(path: str | Path, *, has_tags: bool = True,
               validate: bool = True) -> list[NerSentence]:
    """Read a CoNLL-style NER file (see the module docstring for the layout).

    With ``has_tags=False`` every line's first column is the word and nothing is a tag (input
    for prediction). ``validate`` checks every tag is BIO (``O``/``B-X``/``I-X``).
    """
    path = Path(path)
    text = _read_text(path)
    sentences: list[NerSentence] = []
    words: list[str] = []
    tags: list[str] = []
    first_line = 0

    def close() -> None:
        if words:
            if has_tags and validate:
                validate_bio(tags, path, first_line)
            sentences.append(NerSentence(list(words), list(tags) if has_tags else None, path,
                                         first_line))
            words.clear()
            tags.clear()

    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            close()
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if fields[0] == "-DOCSTART-":
            close()
            continue
        if has_tags and (len(fields) < 2 or not fields[-1]):
            raise DataFormatError(f"expected a token and a tag separated by a tab or spaces, "
                                  f"found {line!r}", path, number)
        if not fields[0]:
            raise DataFormatError(f"empty token in {line!r}; expected the token in the first "
                                  "column", path, number)
        if not words:
            first_line = number
        words.append(fields[0])
        if has_tags:
            tags.append(fields[-1])
    close()
    if not sentences:
        raise DataFormatError("file has no sentences; expected token<TAB>tag lines with a "
                              "blank line between sentences", path)
    return sentences


# --------------------------------------------------------------------------- SQuAD


@dataclass(frozen=True)
class Answer:
    """A gold answer: its text and the character offset where it starts in the context."""

    text: str
    start: int

    @property
    def end(self) -> int:
        """Exclusive character end."""
        return self.start + len(self.text)


@dataclass(frozen=True)
class QAExample:
    """One SQuAD question. ``answers`` empty with ``is_impossible`` False means unlabelled."""

    id: str
    question: str
    context: str
    answers: tuple[Answer, ...] = ()
    is_impossible: bool = False
    title: str = ""
    path: Path | None = None
    line: int | None = None


@dataclass(frozen=True)
class SquadData:
    """The questions of a SQuAD file, with the file's version (``"1.1"`` or ``"2.0"``)."""

    examples: list[QAExample]
    version: Literal["1.1", "2.0"]
    path: Path | None = None


def gold_answers(examples: Sequence[QAExample]) -> dict[str, list[str]]:
    """``{question id: [answer texts]}`` — what :func:`~bertkit.tasks.metrics.squad_evaluate`
    takes (an empty list marks an unanswerable question)."""
    return {e.id: [a.text for a in e.answers] for e in examples}


def read_squad(path: str | Path, *, skip_mismatched_answers: bool = False) -> SquadData:
    """Read SQuAD 1.1 / 2.0 JSON, checking every answer against its context.

    The version is the top-level ``"version"`` (``"v2.0"``/``"2.0"`` → 2.0, anything else
    → 1.1) or, without one, 2.0 when any question has ``is_impossible``. An answer whose text
    is not ``context[answer_start : answer_start + len(text)]`` is an error naming the question
    id and both strings; ``skip_mismatched_answers=True`` drops such answers instead (a question
    left without answers is then dropped too). Errors carry the line of the question's ``"id"``
    when it can be found in the file.
    """
    path = Path(path)
    raw_text = _read_text(path)
    if not raw_text.strip():
        raise DataFormatError("file is empty; expected SQuAD JSON ({\"data\": [...]})", path)
    try:
        document = json.loads(raw_text)
    except json.JSONDecodeError as err:
        raise DataFormatError(f"invalid JSON: {err.msg} (column {err.colno})", path,
                              err.lineno) from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataFormatError("not SQuAD JSON: expected an object with a 'data' list", path, 1)
    id_lines = _id_lines(raw_text)
    examples: list[QAExample] = []
    seen: set[str] = set()
    any_impossible = False

    def fail(message: str, where: str, qid: str | None = None) -> DataFormatError:
        return DataFormatError(f"{where}: {message}", path, id_lines.get(qid or ""))

    for a, article in enumerate(document["data"]):
        where_a = f"data[{a}]"
        paragraphs = _field(article, "paragraphs", list, where_a, fail)
        title = article.get("title", "") if isinstance(article, dict) else ""
        title = title if isinstance(title, str) else str(title)
        for p, paragraph in enumerate(paragraphs):
            where_p = f"{where_a}.paragraphs[{p}]"
            context = _field(paragraph, "context", str, where_p, fail)
            for q, qa in enumerate(_field(paragraph, "qas", list, where_p, fail)):
                where_q = f"{where_p}.qas[{q}]"
                qid = _field(qa, "id", (str, int), where_q, fail)
                qid = str(qid)
                where_q = f"question {qid!r} ({where_q})"
                if qid in seen:
                    raise fail("question id occurs twice; ids must be unique", where_q, qid)
                seen.add(qid)
                question = _field(qa, "question", str, where_q, fail, qid)
                impossible = qa.get("is_impossible", False)
                if not isinstance(impossible, bool):
                    raise fail(f"is_impossible is {impossible!r}; expected true or false",
                               where_q, qid)
                any_impossible |= impossible
                answers = []
                for n, answer in enumerate(_field(qa, "answers", list, where_q, fail, qid)):
                    where_n = f"{where_q} answer {n}"
                    text = _field(answer, "text", str, where_n, fail, qid)
                    start = _field(answer, "answer_start", int, where_n, fail, qid)
                    if isinstance(start, bool):
                        raise fail("answer_start is a boolean; expected an int", where_n, qid)
                    found = context[start:start + len(text)] if start >= 0 else ""
                    if found != text or not text:
                        if skip_mismatched_answers:
                            continue
                        raise fail(f"answer text {text!r} does not match the context at "
                                   f"answer_start={start}, which reads {found!r}", where_n, qid)
                    answers.append(Answer(text, start))
                if impossible and answers:
                    raise fail(f"is_impossible is true but it has {len(answers)} answer(s); "
                               "an unanswerable question has \"answers\": []", where_q, qid)
                if skip_mismatched_answers and not answers and qa["answers"] and not impossible:
                    continue
                examples.append(QAExample(qid, question, context, tuple(answers), impossible,
                                          title, path, id_lines.get(qid)))
    if not examples:
        raise DataFormatError("has no questions", path)
    version_field = document.get("version")
    if isinstance(version_field, str) and version_field.strip():
        version: Literal["1.1", "2.0"] = ("2.0" if version_field.lstrip("vV").startswith("2")
                                          else "1.1")
    else:
        version = "2.0" if any_impossible else "1.1"
    return SquadData(examples, version, path)


def _field(obj: Any, key: str, kind: Any, where: str, fail: Any, qid: str | None = None) -> Any:
    if not isinstance(obj, dict):
        raise fail(f"expected an object, got {type(obj).__name__}", where, qid)
    if key not in obj:
        raise fail(f"missing {key!r} (keys found: {sorted(obj)})", where, qid)
    value = obj[key]
    if not isinstance(value, kind):
        names = (" or ".join(k.__name__ for k in kind) if isinstance(kind, tuple)
                 else kind.__name__)
        raise fail(f"{key!r} is {type(value).__name__} {value!r:.60}; expected {names}", where,
                   qid)
    return value


_ID_FIELD = re.compile(r'"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)')


def _id_lines(raw_text: str) -> dict[str, int]:
    """``{question id: line of its "id" key}`` in one pass over the raw JSON (for messages;
    best effort: an ``"id"`` key elsewhere in the file could shadow one)."""
    lines: dict[str, int] = {}
    line, last = 1, 0
    for match in _ID_FIELD.finditer(raw_text):
        line += raw_text.count("\n", last, match.start())
        last = match.start()
        try:
            key = str(json.loads(match.group(1)))
        except json.JSONDecodeError:
            continue
        lines.setdefault(key, line)
    return lines
