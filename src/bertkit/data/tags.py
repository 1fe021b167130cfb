"""Entity tag schemes (BIO / IOB2, and the lenient reading of BIOES and IOB1): what a CoNLL
file must hold (:func:`validate_bio`, :func:`validate_iob2`) and which entities a tag sequence
names (:func:`extract_entities`, seqeval's default mode). The readers check training files
with it and the NER metrics score predictions with it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from bertkit.errors import DataFormatError, UsageError


class Entity(NamedTuple):
    """One entity: its type and the token span ``tags[start:end]`` (``end`` is EXCLUSIVE).

    seqeval reports ``(type, start, end_inclusive)``; bertkit uses Python's half-open spans so a
    span slices tokens and word offsets directly. Only the end index differs (ours = seqeval + 1).
    """

    type: str
    start: int
    end: int


_SINGLE_LETTER_PREFIXES = frozenset("BIES")


def _split_tag(tag: str) -> tuple[str, str]:
    """(prefix, type) of one tag under the rules documented in :func:`extract_entities`."""
    if not isinstance(tag, str):
        raise UsageError(f"NER tags must be strings, got {type(tag).__name__} {tag!r}")
    if tag == "O":
        return "O", "_"
    prefix, dash, type_ = tag.partition("-")
    if dash:
        return prefix, type_ or "_"
    if tag in _SINGLE_LETTER_PREFIXES:
        return tag, "_"
    return "B", tag  # conlleval -r: a plain tag is a one-token chunk


def _chunk_ends(prev: str, cur: str, prev_type: str, cur_type: str) -> bool:
    """seqeval ``end_of_chunk``: does an entity end between the previous and the current tag?"""
    if prev in ("E", "S"):
        return True
    if prev in ("B", "I") and cur in ("B", "S", "O"):
        return True
    return prev not in ("O", ".") and prev_type != cur_type


def _chunk_starts(prev: str, cur: str, prev_type: str, cur_type: str) -> bool:
    """seqeval ``start_of_chunk``: does an entity start at the current tag?"""
    if cur in ("B", "S"):
        return True
    if prev in ("E", "S", "O") and cur in ("E", "I"):
        return True
    return cur not in ("O", ".") and prev_type != cur_type


def extract_entities(tags: Sequence[str]) -> list[Entity]:
    """Entities of ONE sentence's tag sequence, with seqeval's default-mode (conlleval) rules.

    Lenient by design: it scores what a model predicted, and a model can emit any sequence.

    * **B-X** always starts an entity of type X.
    * **I-X** continues an entity of type X; after ``O``, after an entity of another type, or at
      the sentence start it **starts** a new one (so IOB1 data and "I- without B-" predictions
      are read as conlleval reads them).
    * **E-X / S-X** follow seqeval (BIOES meaning): ``E`` closes the entity it ends, ``S`` is a
      one-token entity; an ``E`` or ``I`` after ``E``/``S``/``O`` starts a new one. conlleval's
      own ``E`` (IOE) rules differ; seqeval is this project's reference.
    * A tag is split at its **first** hyphen, so types may contain hyphens (``B-geo-loc`` →
      ``geo-loc``); an empty type (``B-`` or a bare ``B``/``I``/``E``/``S``) is reported as ``"_"``,
      as seqeval does. An unknown prefix (``U-X``, ``L-X``) acts only through type changes, as in
      both conlleval and seqeval.
    * **Plain tags** without a prefix (``PER``) are read as conlleval's ``-r`` (raw) option reads
      them: ``B-PER``, one entity per token. seqeval instead garbles them (type ``"ER"``); convert
      IO-scheme data to BIO first if adjacent plain tags should merge.

    Returns entities in order of their start. End indices are exclusive (see :class:`Entity`).
    """
    entities: list[Entity] = []
    prev, prev_type, begin = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):  # the sentinel O closes an entity at the end
        cur, cur_type = _split_tag(tag)
        if _chunk_ends(prev, cur, prev_type, cur_type):
            entities.append(Entity(prev_type, begin, i))
        if _chunk_starts(prev, cur, prev_type, cur_type):
            begin = i
        prev, prev_type = cur, cur_type
    return entities


_BIO_TAG = re.compile(r"O|[BI]-\S+")


def _where(i: int, path: Any, line: int | None) -> tuple[str, int | None]:
    """Message fragment and line number of tag ``i``: tags of a CoNLL sentence sit on
    consecutive lines, so tag ``i`` is on ``line + i``."""
    if line is not None:
        return "", line + i
    return f"token {i}: ", None


def validate_bio(tags: Sequence[str], path: Any = None, line: int | None = None) -> None:
    """Raise :class:`DataFormatError` unless every tag is ``O``, ``B-TYPE`` or ``I-TYPE``.

    This checks the *form* of each tag only, so IOB1 files and "I- after O" pass; use
    :func:`validate_iob2` to also require that every entity opens with ``B-``. ``line`` is the
    file line of ``tags[0]``; the error points at ``path:line+i`` of the offending tag ``i``.
    Non-BIO schemes (BIOES's ``E-``/``S-``, plain tags) are rejected: the data loaders accept
    BIO/IOB2, and :func:`extract_entities` is the place that is lenient.
    """
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or not _BIO_TAG.fullmatch(tag):
            prefix, at = _where(i, path, line)
            raise DataFormatError(
                f"{prefix}tag {tag!r} is not a BIO tag; expected O, B-TYPE or I-TYPE",
                path=path,
                line=at,
            )


def validate_iob2(tags: Sequence[str], path: Any = None, line: int | None = None) -> None:
    """Strict IOB2: :func:`validate_bio`, and every ``I-X`` follows ``B-X`` or ``I-X``.

    Explicit and separate because the lenient reading (:func:`extract_entities`) is the right
    one for scoring, while a training file that breaks IOB2 usually means a conversion bug the
    user wants to hear about.
    """
    validate_bio(tags, path, line)
    prev = "O"
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and prev not in (f"B-{tag[2:]}", tag):
            prefix, at = _where(i, path, line)
            raise DataFormatError(
                f"{prefix}tag {tag!r} follows {prev!r}; IOB2 requires an entity to open with "
                f"B-{tag[2:]} (IOB1 data? convert it, or check with validate_bio only)",
                path=path,
                line=at,
            )
        prev = tag
