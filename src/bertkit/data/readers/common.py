"""What every labelled-data reader shares: reading a file's text (errors at ``path:line``),
the label ↔ id map and a record's ``path:line:`` prefix for later error messages."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bertkit.errors import DataFormatError, UsageError

if TYPE_CHECKING:  # annotations only: the readers import this module
    from bertkit.data.readers.classification import TextExample
    from bertkit.data.readers.conll import NerSentence

LabelKind = Literal["multiclass", "multilabel", "regression"]
"""``multiclass``: one string label per text (ints in JSONL are read as their string).
``multilabel``: a set of string labels (a JSON list, or a string split at ``label_separator``).
``regression``: one float."""


def read_text(path: Path) -> str:
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


def jsonl_records(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL text; bad JSON or a
    non-object line raises a :class:`DataFormatError` at ``path:line``."""
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
