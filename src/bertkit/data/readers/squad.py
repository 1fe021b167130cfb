"""SQuAD 1.1 / 2.0 JSON, every answer checked against its context."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bertkit.data.readers.common import read_text
from bertkit.errors import DataFormatError

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
    raw_text = read_text(path)
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
    if not isinstance(value, kind) or isinstance(value, bool):  # JSON true is no id or offset
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
