"""RoBERTa's packed sequences: documents end to end, cut into full-length rows (masked later,
per batch)."""


from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from bertkit.errors import ConfigError

# --------------------------------------------------------------------------- packing


def pack_sequences(
    token_stream: Iterable[Sequence[int]],
    max_seq_length: int,
    doc_separator_id: int,
    *,
    cls_id: int | None = None,
    sep_id: int | None = None,
) -> Iterator[list[int]]:
    """RoBERTa's FULL-SENTENCES packing: documents end to end, cut into full-length sequences.

    Documents (flat token-id sequences) are joined with ``doc_separator_id`` between them, so a
    sequence may cross a document boundary and the model can see where it does. Every sequence
    has exactly ``max_seq_length`` tokens except the last, which holds what is left. With
    ``cls_id``/``sep_id`` each sequence is framed as ``[CLS] … [SEP]`` and the frame counts
    towards ``max_seq_length``. Streams: holds at most one document plus one sequence.
    """
    frame = (cls_id is not None) + (sep_id is not None)
    body = max_seq_length - frame
    if body < 1:
        raise ConfigError(f"max_seq_length={max_seq_length}: leaves no room for tokens")
    head = [] if cls_id is None else [cls_id]
    tail = [] if sep_id is None else [sep_id]
    buffer: list[int] = []
    first = True
    for document in token_stream:
        if not len(document):
            continue
        if not first:
            buffer.append(doc_separator_id)
        first = False
        buffer.extend(document)
        start = 0
        while len(buffer) - start >= body:
            yield [*head, *buffer[start : start + body], *tail]
            start += body
        del buffer[:start]
    if buffer:
        yield [*head, *buffer, *tail]
