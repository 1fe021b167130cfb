"""Sentence-pair (NSP/SOP) instances made as Google's ``create_pretraining_data.py`` makes
them; the differences, and why, are in :mod:`bertkit.data.instances`."""


from __future__ import annotations

import random
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bertkit.errors import ConfigError, UsageError

PairObjective = Literal["nsp", "sop"]
SingleSegment = Literal["split", "random"]
Document = Sequence[Sequence[int]]  # sentences of token ids

# Google draws a random document this many times before accepting the same one.
_RANDOM_DOCUMENT_TRIES = 10



@dataclass
class NspInstance:
    """``[CLS] A [SEP] B [SEP]`` with segment ids 0 for ``[CLS] A [SEP]`` and 1 for ``B [SEP]``.

    ``is_random_next`` is the pair label: B came from another document (NSP), or A and B were
    swapped (SOP).
    """

    tokens: list[int]
    segment_ids: list[int]
    is_random_next: bool


# --------------------------------------------------------------------------- token ids


def tokenize_documents(
    documents: Iterable[Sequence[str]],
    tokenize: Callable[[list[str]], Sequence[Sequence[int]]],
) -> Iterator[list[array]]:
    """Turn streamed text documents into token-id documents, ready for pairing or packing.

    ``tokenize`` maps a list of sentences to their token ids *without* special tokens — one
    call per document, so a batch tokenizer (``tokenizers``' ``encode_batch``) does the work in
    parallel; wrap a one-sentence function as ``lambda ss: [f(s) for s in ss]``. Sentences that
    tokenize to nothing are dropped, then documents left empty.

    Sentences are kept as ``array("i")`` (4 bytes a token) rather than lists of Python ints
    (about 36 bytes a token): Google's algorithm needs every document in memory to draw random
    B segments, and this is what lets a 10-million-word corpus fit in a few hundred MB.
    """
    for document in documents:
        ids = [array("i", sentence) for sentence in tokenize(list(document))]
        ids = [sentence for sentence in ids if len(sentence)]
        if ids:
            yield ids


# --------------------------------------------------------------------------- sentence pairs


def create_nsp_instances(documents: Sequence[Document], **options: Any) -> list[NspInstance]:
    """One pass of sentence-pair creation over every document, in the given order:
    :func:`iter_nsp_instances` (the same arguments) collected into a list."""
    return list(iter_nsp_instances(documents, **options))


def iter_nsp_instances(
    documents: Sequence[Document],
    *,
    max_seq_length: int = 128,
    short_seq_prob: float = 0.1,
    nsp_prob: float = 0.5,
    rng: random.Random,
    cls_id: int,
    sep_id: int,
    objective: PairObjective = "nsp",
    single_segment: SingleSegment = "split",
    document_order: Sequence[int] | None = None,
) -> Iterator[NspInstance]:
    """Stream sentence-pair instances one document at a time (Google's algorithm; see module).

    Args:
        documents: document → sentence → token ids. Empty sentences and documents are ignored.
        max_seq_length: length of the longest instance, ``[CLS]`` and both ``[SEP]`` included.
        short_seq_prob: probability that a document uses a random shorter target length.
        nsp_prob: probability of a random-document B (NSP) or of a swap (SOP).
        rng: the only source of randomness.
        cls_id, sep_id: the special ids framing the pair.
        objective: ``"nsp"`` or ``"sop"``.
        single_segment: NSP only: ``"split"`` (balanced labels, default) or ``"random"``
            (Google: a one-segment chunk always gets a random B); see the module docstring.
        document_order: indices of the documents to visit (default: list order).

    Raises:
        UsageError: NSP with fewer than two non-empty documents (negatives need another one).
        ConfigError: ``max_seq_length`` below 5 or a probability outside [0, 1].
    """
    if max_seq_length < 5:
        raise ConfigError(
            f"max_seq_length={max_seq_length}: need at least 5 ([CLS] a [SEP] b [SEP])")
    for name, value in (("short_seq_prob", short_seq_prob), ("nsp_prob", nsp_prob)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name}={value}: expected a probability in [0, 1]")
    if objective not in ("nsp", "sop"):
        raise ConfigError(f"objective={objective!r}: expected 'nsp' or 'sop'")
    if single_segment not in ("split", "random"):
        raise ConfigError(f"single_segment={single_segment!r}: expected 'split' or 'random'")
    nonempty = [i for i, doc in enumerate(documents) if any(len(s) for s in doc)]
    if objective == "nsp" and len(nonempty) < 2:
        raise UsageError(f"next-sentence pairs need at least 2 non-empty documents, got "
                         f"{len(nonempty)}; add documents (blank line between them) or use SOP")
    pair = _PairMaker(documents, nonempty, max_seq_length - 3, short_seq_prob, nsp_prob, rng,
                      cls_id, sep_id, objective, single_segment == "split")
    for index in range(len(documents)) if document_order is None else document_order:
        yield from pair.from_document(index)


class _PairMaker:
    """The per-document step of Google's algorithm, with the corpus-wide state it needs."""

    def __init__(self, documents: Sequence[Document], nonempty: list[int], max_num_tokens: int,
                 short_seq_prob: float, nsp_prob: float, rng: random.Random, cls_id: int,
                 sep_id: int, objective: PairObjective, split_single: bool) -> None:
        self.documents = documents
        self.nonempty = nonempty
        self.max_num_tokens = max_num_tokens
        self.short_seq_prob = short_seq_prob
        self.nsp_prob = nsp_prob
        self.rng = rng
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.objective = objective
        self.split_single = split_single or objective == "sop"

    def segments(self, index: int) -> list[Sequence[int]]:
        return [s for s in self.documents[index] if len(s)]

    def from_document(self, index: int) -> Iterator[NspInstance]:
        rng = self.rng
        document = self.segments(index)
        target = self.max_num_tokens
        if rng.random() < self.short_seq_prob:
            target = rng.randint(2, self.max_num_tokens)
        chunk: list[Sequence[int]] = []
        length = 0
        i = 0
        while i < len(document):
            chunk.append(document[i])
            length += len(document[i])
            if i == len(document) - 1 or length >= target:
                a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                tokens_a = [t for segment in chunk[:a_end] for t in segment]
                # Google: a lone segment has no continuation, so its B must be random. When
                # splitting, a lone segment of >= 2 tokens is its own continuation.
                forced = len(chunk) == 1 and not (self.split_single and len(tokens_a) >= 2)
                if self.objective == "sop":
                    instance = self.order_pair(chunk, a_end, tokens_a)
                elif forced or rng.random() < self.nsp_prob:
                    tokens_b = self.random_span(index, target - len(tokens_a))
                    i -= len(chunk) - a_end  # put the unused segments back
                    instance = self.make(tokens_a, tokens_b, is_random_next=True)
                else:
                    tokens_a, tokens_b = self.continuation(chunk, a_end, tokens_a)
                    instance = self.make(tokens_a, tokens_b, is_random_next=False)
                if instance is not None:
                    yield instance
                chunk = []
                length = 0
            i += 1

    def random_span(self, index: int, target_b_length: int) -> list[int]:
        """Tokens from a random other document, from a random segment on, up to the target."""
        rng = self.rng
        other = index
        for _ in range(_RANDOM_DOCUMENT_TRIES):
            other = self.nonempty[rng.randint(0, len(self.nonempty) - 1)]
            if other != index:
                break
        segments = self.segments(other)
        tokens_b: list[int] = []
        for segment in segments[rng.randint(0, len(segments) - 1):]:
            tokens_b.extend(segment)
            if len(tokens_b) >= target_b_length:
                break
        return tokens_b

    def continuation(self, chunk: list[Sequence[int]], a_end: int,
                     tokens_a: list[int]) -> tuple[list[int], list[int]]:
        """(A, B) with B the true continuation: the rest of the chunk, or for a lone segment
        its second part, cut at a random token."""
        if len(chunk) >= 2:
            return tokens_a, [t for segment in chunk[a_end:] for t in segment]
        cut = self.rng.randint(1, len(tokens_a) - 1)
        return tokens_a[:cut], tokens_a[cut:]

    def order_pair(self, chunk: list[Sequence[int]], a_end: int,
                   tokens_a: list[int]) -> NspInstance | None:
        """SOP: true continuation, swapped with probability ``nsp_prob``."""
        if len(chunk) == 1 and len(tokens_a) < 2:
            return None  # a one-token chunk has no order to predict
        tokens_a, tokens_b = self.continuation(chunk, a_end, tokens_a)
        swapped = self.rng.random() < self.nsp_prob
        if swapped:
            tokens_a, tokens_b = tokens_b, tokens_a
        return self.make(tokens_a, tokens_b, is_random_next=swapped)

    def make(self, tokens_a: list[int], tokens_b: list[int], *,
             is_random_next: bool) -> NspInstance:
        truncate_seq_pair(tokens_a, tokens_b, self.max_num_tokens, self.rng)
        tokens = [self.cls_id, *tokens_a, self.sep_id, *tokens_b, self.sep_id]
        segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
        return NspInstance(tokens=tokens, segment_ids=segment_ids, is_random_next=is_random_next)


def truncate_seq_pair(tokens_a: list[int], tokens_b: list[int], max_num_tokens: int,
                      rng: random.Random) -> None:
    """Shorten the pair in place to at most ``max_num_tokens``: always the longer side (B on a
    tie), one token at a time, from the front or the back at random — so the model sees
    truncated text at both ends rather than only at the end."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()
