"""What one request may ask for, and the client's mistakes, shared by every API the server speaks
(bertkit's own routes, OpenAI's embeddings, Hugging Face text-embeddings-inference).

A mistake is a :class:`RequestError` carrying a ``kind`` that names WHAT went wrong
(``invalid``, ``empty``, ``too_large``, ``not_found``, …); :mod:`bertkit.server.errors` turns it
into each API's own status code and error body, so a check is written once and every client
reads the answer in the shape it knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bertkit.server.limits import RequestLimits


class RequestError(Exception):
    """A client's mistake: HTTP ``status``, the ``field`` at fault, what was expected, and its
    ``kind`` (how each API names it)."""

    def __init__(self, status: int, field: str | None, message: str, kind: str = "invalid",
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.field, self.message, self.kind = status, field, message, kind
        self.headers = headers


def check_count(field: str, count: int, limits: RequestLimits) -> None:
    """At least one item, at most ``max_texts``."""
    if count == 0:
        raise RequestError(422, field, "expected at least one item", "empty")
    if count > limits.max_texts:
        raise RequestError(413, field, f"{count} items; at most {limits.max_texts} per request",
                           "too_large")


def check_text(field: str, text: str, limits: RequestLimits) -> None:
    """Non-blank, within ``max_chars``, and real Unicode: a lone surrogate (``"\\ud800"`` is
    valid JSON) cannot be encoded, so no tokenizer can read it."""
    if len(text) > limits.max_chars:
        raise RequestError(413, field, f"{len(text)} characters; at most {limits.max_chars} "
                                       "per text", "too_large")
    if not text.strip():
        raise RequestError(422, field, "empty text; expected non-blank text", "empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise RequestError(422, field, f"not valid Unicode: a lone surrogate "
                                       f"{text[err.start]!r} at character {err.start}") from None


def check_texts(field: str, texts: Sequence[str], limits: RequestLimits) -> None:
    """:func:`check_count`, then :func:`check_text` on each as ``field[i]``."""
    check_count(field, len(texts), limits)
    for index, text in enumerate(texts):
        check_text(f"{field}[{index}]", text, limits)


def check_records(field: str, records: Sequence[Any], text_fields: Sequence[str],
                  limits: RequestLimits) -> None:
    """:func:`check_count`, then :func:`check_text` on each record's ``text_fields`` as
    ``field[i].name`` (the question and context of a QA input, …)."""
    check_count(field, len(records), limits)
    for index, record in enumerate(records):
        for name in text_fields:
            check_text(f"{field}[{index}].{name}", getattr(record, name), limits)


def check_range(field: str, value: int, high: int) -> None:
    """1 ≤ ``value`` ≤ ``high`` (``top_k``, ``num_beams``, …), else a 422 saying the range."""
    if not 1 <= value <= high:
        raise RequestError(422, field, f"{field}={value}; expected 1..{high}")


def text_list(field: str, value: Any, limits: RequestLimits) -> tuple[list[str], bool]:
    """``value`` as a checked list of texts, and whether the client sent ONE string (OpenAI's
    ``input`` and TEI's ``inputs`` take a string or a list of strings)."""
    if isinstance(value, str):
        check_text(field, value, limits)
        return [value], True
    if not isinstance(value, list):
        raise RequestError(422, field, f"got {_kind(value)}; expected a string or a list of "
                                       "strings")
    check_count(field, len(value), limits)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            hint = (" (token-id input is not supported; send text)"
                    if isinstance(item, int | list) and not isinstance(item, bool) else "")
            raise RequestError(422, f"{field}[{index}]", f"got {_kind(item)}; expected a "
                                                         f"string{hint}")
        check_text(f"{field}[{index}]", item, limits)
    return list(value), False


def check_tokens(field: str, costs: Sequence[int], limits: RequestLimits) -> None:
    """All items' tokens together within ``max_request_tokens``."""
    total = sum(costs)
    if total > limits.max_request_tokens:
        raise RequestError(413, field, f"{total} tokens in this request; at most "
                                       f"{limits.max_request_tokens} per request", "too_large")


def check_lengths(field: str, costs: Sequence[int], max_length: int) -> None:
    """Every item within the model's length (the TEI routes' ``truncate: false``)."""
    for index, cost in enumerate(costs):
        if cost > max_length:
            raise RequestError(413, f"{field}[{index}]" if len(costs) > 1 else field,
                               f"input has {cost} tokens; the model takes at most "
                               f"{max_length} (send truncate: true to cut it)", "too_large")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value),
                                                                         type(value).__name__)
