"""Sliding windows over long texts: the one mechanism every task uses past ``max_length``.

A BERT encoder sees at most ``max_length`` tokens (512 for the released checkpoints). Users with
longer texts otherwise meet a silent truncation or the opaque ``IndexError: index out of range
in self``. Here a text is tokenized ONCE, whole, and cut into overlapping windows; nothing is
ever dropped. Classification (aggregate the windows' logits), NER (each token from its best
window), extractive QA (spans scored in the window that gives their start the most context) and
embeddings (pool each token once) all read the same :class:`WindowSet`.

Definitions, as in Google's ``run_squad.py`` (``doc_stride``, ``_check_is_max_context``):

* An example is one text, or a pair. With a pair the FIRST text (the question, for QA) is kept
  whole in every window and the SECOND is windowed; with one text, that text is windowed. The
  windowed text is called the *segment* below.
* ``capacity = max_length - special tokens - len(first text)`` segment tokens fit in a window.
  Window starts step by ``min(doc_stride, capacity)`` (``doc_stride`` is the STEP between window
  starts, Google's meaning; ``tokenizers``' ``stride`` is the OVERLAP instead). The last window
  ends at the segment's last token, so every token lies in at least one window.
* A token's *max-context* window maximises ``min(left, right) + 0.01 * window length``, where
  ``left``/``right`` count the segment tokens on either side of it inside the window; on a tie
  the earlier window wins (Google's strict ``>``).

Why windows are cut here from one full tokenization, not with ``tokenizers``' overflow: the
bertkit :class:`~bertkit.tokenization.Tokenizer` keeps truncation as locked backend state with
``stride=0`` (changing it from outside would desynchronise its settings cache); cutting a token
list is exact, O(tokens), gives the max-context bookkeeping for free, and yields the same tokens
(the backend also tokenizes first and cuts afterwards). The special-token layout ([CLS] A [SEP]
B [SEP] for BERT, <s> A </s></s> B </s> for RoBERTa) is read off the tokenizer once by probing
it, so any ``tokenizers`` post-processor works.

Character offsets: each position's offsets index the ORIGINAL text of its own segment (Python
``str`` indices, i.e. code points: accents, CJK and emoji count as one). For input already split
into words (``is_split_into_words=True``) the original text is defined as the words joined by
single spaces, and offsets are converted to that text (the backend reports them per word).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from bertkit.data.batch import pad_sequences
from bertkit.errors import InputError, TokenizerError, UsageError

if TYPE_CHECKING:
    from bertkit.tokenization import Tokenizer

__all__ = [
    "Span",
    "TokenizedText",
    "Window",
    "WindowSet",
    "collate_windows",
    "make_windows",
    "max_context_windows",
    "plan_spans",
]

Offset = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Span:
    """Segment tokens ``[start, end)`` that one window holds."""

    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start

    def __contains__(self, token: object) -> bool:
        return isinstance(token, int) and self.start <= token < self.end


def plan_spans(num_tokens: int, capacity: int, doc_stride: int) -> list[Span]:
    """Google's doc-span loop: windows of ``capacity`` tokens whose starts step by
    ``min(doc_stride, capacity)``; the last one stops at the final token.

    A step larger than the capacity would leave gaps, so it is clamped (as Google's
    ``min(length, doc_stride)`` does): every token is in at least one span. An empty segment
    still gets one (empty) span, so every example has a window.
    """
    if capacity < 1:
        raise UsageError(f"window capacity is {capacity} tokens; expected >= 1")
    if doc_stride < 1:
        raise UsageError(f"doc_stride={doc_stride}; expected >= 1 (the step between windows)")
    spans: list[Span] = []
    start = 0
    while True:
        end = min(start + capacity, num_tokens)
        spans.append(Span(start, end))
        if end >= num_tokens:
            return spans
        start += min(end - start, doc_stride)


def max_context_windows(spans: Sequence[Span], num_tokens: int) -> np.ndarray:
    """For each segment token, the index of the span where it has the most context.

    Score of token ``p`` in span ``s``: ``min(p - s.start, s.end - 1 - p) + 0.01 * len(s)``;
    the highest score wins, the earliest span on a tie (Google's ``_check_is_max_context``).
    Returns an ``int64`` array of length ``num_tokens``.
    """
    best = np.full(num_tokens, -1, dtype=np.int64)
    best_score = np.full(num_tokens, -np.inf)
    for index, span in enumerate(spans):
        if not len(span):
            continue
        positions = np.arange(span.start, span.end)
        score = np.minimum(positions - span.start, span.end - 1 - positions) + 0.01 * len(span)
        better = score > best_score[span.start:span.end]  # strict: earlier span keeps ties
        best[span.start:span.end][better] = index
        best_score[span.start:span.end][better] = score[better]
    if num_tokens and (best < 0).any():
        missing = int(np.flatnonzero(best < 0)[0])
        raise UsageError(f"token {missing} lies in no span; spans must cover the segment")
    return best


@dataclass(frozen=True)
class TokenizedText:
    """One text tokenized without special tokens.

    ``text`` is the original text the offsets index (for word input: the words joined by single
    spaces); ``words`` is the word list for word input, else ``None``.
    """

    text: str
    ids: list[int]
    offsets: list[Offset]
    word_ids: list[int | None]
    words: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_words(self) -> int:
        """Words of the text: the given words, or the tokenizer's pre-tokenization units."""
        if self.words is not None:
            return len(self.words)
        known = [w for w in self.word_ids if w is not None]
        return max(known) + 1 if known else 0

    def word_char_spans(self) -> list[Offset | None]:
        """``(start, end)`` of every word in :attr:`text`.

        Word input: the word's place in the space-joined text (the whole word, even where the
        tokenizer dropped a character). Raw text: from the first to the last character of the
        word's tokens. ``None`` for a word that produced no token.
        """
        if self.words is not None:
            spans: list[Offset | None] = []
            position = 0
            for word in self.words:
                spans.append((position, position + len(word)))
                position += len(word) + 1
            return spans
        found: list[Offset | None] = [None] * self.num_words
        for word, (start, end) in zip(self.word_ids, self.offsets, strict=True):
            if word is None:
                continue
            old = found[word]
            found[word] = (start, end) if old is None else (min(old[0], start), max(old[1], end))
        return found

    def first_tokens(self) -> list[int | None]:
        """Index of each word's first token (``None`` for a word without tokens)."""
        first: list[int | None] = [None] * self.num_words
        for token, word in enumerate(self.word_ids):
            if word is not None and first[word] is None:
                first[word] = token
        return first


@dataclass(frozen=True, slots=True)
class Window:
    """One model input cut from an example; every per-position list has ``len(input_ids)``.

    ``sequence_ids``: 0 for the first text, 1 for the second (pairs), ``None`` for special
    tokens. ``token_index``: index of the position's token in the example's windowed segment
    (:attr:`WindowSet.segments`), ``None`` for special and first-text positions. ``offsets`` and
    ``word_ids`` refer to the position's own text. ``max_context`` is True where this window is
    the token's max-context window. Segment token ``t`` sits at position
    ``content_start + t - span.start``.
    """

    example: int
    number: int
    span: Span
    content_start: int
    input_ids: list[int]
    token_type_ids: list[int]
    sequence_ids: list[int | None]
    token_index: list[int | None]
    offsets: list[Offset | None]
    word_ids: list[int | None]
    max_context: list[bool]

    def __len__(self) -> int:
        return len(self.input_ids)

    def position_of(self, token: int) -> int:
        """Position in this window of segment token ``token`` (which must be in the span)."""
        if token not in self.span:
            raise UsageError(f"segment token {token} is not in window {self.number} "
                             f"(tokens {self.span.start}..{self.span.end - 1})")
        return self.content_start + token - self.span.start


@dataclass
class WindowSet:
    """All windows of a list of examples, in example order, plus the lookups decoding needs.

    ``best_window[e][t]`` is the index (into :attr:`windows`) of segment token ``t``'s
    max-context window; ``example_windows[e]`` the range of example ``e``'s windows.
    """

    windows: list[Window]
    segments: list[TokenizedText]
    firsts: list[TokenizedText] | None
    best_window: list[np.ndarray]
    example_windows: list[range]
    max_length: int
    doc_stride: int | None  # None: half of each example's window capacity
    pair: bool = field(default=False)

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def num_examples(self) -> int:
        return len(self.segments)

    @property
    def window_example(self) -> np.ndarray:
        """``(W,)`` example index of every window (what aggregation groups by)."""
        return np.array([w.example for w in self.windows], dtype=np.int64)

    def locate(self, example: int, token: int) -> tuple[int, int]:
        """``(window index, position)`` where segment token ``token`` of ``example`` has its
        maximum context."""
        index = int(self.best_window[example][token])
        return index, self.windows[index].position_of(token)


# --------------------------------------------------------------------------- template probe


@dataclass(frozen=True)
class _Template:
    """The special-token layout: ``parts`` lists ``("special", id, type)`` and
    ``("first" | "second", -1, type)`` in order."""

    parts: tuple[tuple[str, int, int], ...]

    @property
    def num_special(self) -> int:
        return sum(kind == "special" for kind, _, _ in self.parts)


def _probe_template(tokenizer: Tokenizer, pair: bool) -> _Template:
    """Read the special-token layout off the tokenizer: encode probe texts with and without
    special tokens; the positions the special-tokens mask marks are the template's own."""
    probes = ("a", "b")
    alone = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in probes]
    if not all(alone):
        raise TokenizerError("cannot infer the special-token layout: the probe texts 'a'/'b' "
                             "give no tokens with this tokenizer")
    full = tokenizer(probes[0], probes[1] if pair else None, return_special_tokens_mask=True)
    parts: list[tuple[str, int, int]] = []
    content: list[int] = []
    for token, type_id, special in zip(full["input_ids"], full["token_type_ids"],
                                       full["special_tokens_mask"], strict=True):
        if special:
            parts.append(("special", token, type_id))
            continue
        kind = "first" if len(content) < len(alone[0]) else "second"
        if not parts or parts[-1][0] != kind:
            parts.append((kind, -1, type_id))
        content.append(token)
    expected = alone[0] + (alone[1] if pair else [])
    kinds = [kind for kind, _, _ in parts if kind != "special"]
    if content != expected or kinds != (["first", "second"] if pair else ["first"]):
        raise TokenizerError("cannot infer the special-token layout of this tokenizer: its "
                             "post-processor does not keep each text as one contiguous run")
    return _Template(tuple(parts))


# --------------------------------------------------------------------------- tokenization


def _tokenize(tokenizer: Tokenizer, texts: Sequence[Any], split: bool) -> list[TokenizedText]:
    """Tokenize every text once, without special tokens, keeping offsets and word ids."""
    if not texts:
        return []
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True,
                    return_word_ids=True, is_split_into_words=split)
    out: list[TokenizedText] = []
    for text, ids, offsets, word_ids in zip(texts, enc["input_ids"], enc["offset_mapping"],
                                            enc["word_ids"], strict=True):
        offsets = [tuple(o) for o in offsets]
        if split:
            words = list(text)
            starts, position = [], 0
            for word in words:
                starts.append(position)
                position += len(word) + 1
            # The backend reports offsets within each word; move them into the joined text.
            offsets = [(s + starts[w], e + starts[w]) if w is not None else (s, e)
                       for (s, e), w in zip(offsets, word_ids, strict=True)]
            out.append(TokenizedText(" ".join(words), ids, offsets, list(word_ids), words))
        else:
            out.append(TokenizedText(text, ids, offsets, list(word_ids)))
    return out


# --------------------------------------------------------------------------- the engine


def make_windows(
    tokenizer: Tokenizer,
    texts: Sequence[str] | Sequence[Sequence[str]],
    text_pairs: Sequence[str] | Sequence[Sequence[str]] | None = None,
    *,
    max_length: int | None = None,
    doc_stride: int | None = None,
    is_split_into_words: bool = False,
    example_names: Sequence[str] | None = None,
) -> WindowSet:
    """Tokenize examples and cut each into overlapping windows of at most ``max_length``.

    Args:
        tokenizer: a bertkit :class:`~bertkit.tokenization.Tokenizer`.
        texts: one text per example (a list of words each with ``is_split_into_words``). With
            ``text_pairs`` these are the FIRST texts, kept whole in every window.
        text_pairs: optional second texts; when given, they are the ones windowed.
        max_length: tokens per window including special tokens (default: the tokenizer's
            ``model_max_length``).
        doc_stride: step between window starts in segment tokens (default: half the window
            capacity, so each token's best window gives it at least a quarter window of context
            on both sides).
        is_split_into_words: texts are word lists; offsets then index the words joined by single
            spaces.
        example_names: how errors name example ``i`` (e.g. a question id or ``file:line``);
            default ``"example i"``.

    Raises:
        InputError: a first text leaves no room for the second within ``max_length``.
        UsageError: bad ``max_length`` / ``doc_stride`` or mismatched lists.
    """
    max_length = tokenizer.model_max_length if max_length is None else max_length
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise UsageError(f"max_length={max_length!r}; expected a positive int")
    if doc_stride is not None and (not isinstance(doc_stride, int) or doc_stride < 1):
        raise UsageError(f"doc_stride={doc_stride!r}; expected a positive int (the step "
                         "between window starts) or None for half a window")
    pair = text_pairs is not None
    if pair and len(text_pairs) != len(texts):  # type: ignore[arg-type]
        raise UsageError(f"got {len(texts)} texts but {len(text_pairs)} text_pairs; "  # type: ignore[arg-type]
                         "expected one pair per text")
    if example_names is not None and len(example_names) != len(texts):
        raise UsageError(f"got {len(example_names)} example_names for {len(texts)} texts")
    template = _probe_template(tokenizer, pair)
    if pair:
        firsts: list[TokenizedText] | None = _tokenize(tokenizer, texts, is_split_into_words)
        segments = _tokenize(tokenizer, text_pairs, is_split_into_words)  # type: ignore[arg-type]
    else:
        firsts, segments = None, _tokenize(tokenizer, texts, is_split_into_words)

    windows: list[Window] = []
    best_window: list[np.ndarray] = []
    example_windows: list[range] = []
    for example, segment in enumerate(segments):
        first = None if firsts is None else firsts[example]
        room = max_length - template.num_special - (0 if first is None else len(first))
        if room < 1:
            name = f"example {example}" if example_names is None else example_names[example]
            what = (f"its first text has {len(first)} tokens, which with the "  # type: ignore[arg-type]
                    f"{template.num_special} special tokens" if first is not None
                    else f"the {template.num_special} special tokens")
            raise InputError(f"{name}: {what} leave no room for the text to window within "
                             f"max_length={max_length}; raise max_length or shorten it")
        stride = doc_stride if doc_stride is not None else max(1, room // 2)
        spans = plan_spans(len(segment), room, stride)
        best = max_context_windows(spans, len(segment))
        offset = len(windows)
        for number, span in enumerate(spans):
            windows.append(_assemble(template, example, number, span, segment, first,
                                     best, offset))
        best_window.append(best + offset)
        example_windows.append(range(offset, len(windows)))
    return WindowSet(windows, segments, firsts, best_window, example_windows, max_length,
                     doc_stride, pair)


def _assemble(template: _Template, example: int, number: int, span: Span,
              segment: TokenizedText, first: TokenizedText | None, best: np.ndarray,
              window_offset: int) -> Window:
    """Lay out one window following the template."""
    ids: list[int] = []
    types: list[int] = []
    seq: list[int | None] = []
    index: list[int | None] = []
    offsets: list[Offset | None] = []
    words: list[int | None] = []
    is_max: list[bool] = []
    content_start = -1
    windowed_seq = 1 if first is not None else 0
    for kind, token, type_id in template.parts:
        if kind == "special":
            ids.append(token)
            types.append(type_id)
            seq.append(None)
            index.append(None)
            offsets.append(None)
            words.append(None)
            is_max.append(False)
        elif kind == "first" and first is not None:
            n = len(first)
            ids.extend(first.ids)
            types.extend([type_id] * n)
            seq.extend([0] * n)
            index.extend([None] * n)
            offsets.extend(first.offsets)
            words.extend(first.word_ids)
            is_max.extend([False] * n)
        else:  # the windowed segment
            n = len(span)
            content_start = len(ids)
            ids.extend(segment.ids[span.start:span.end])
            types.extend([type_id] * n)
            seq.extend([windowed_seq] * n)
            index.extend(range(span.start, span.end))
            offsets.extend(segment.offsets[span.start:span.end])
            words.extend(segment.word_ids[span.start:span.end])
            is_max.extend((best[span.start:span.end] == number).tolist())
    return Window(example, number, span, content_start, ids, types, seq, index, offsets, words,
                  is_max)


def collate_windows(windows: Sequence[Window], *, pad_id: int,
                    pad_to_multiple_of: int | None = None) -> dict[str, torch.Tensor]:
    """Pad windows into ``input_ids``, ``token_type_ids``, ``attention_mask`` — ``(B, T)``
    long tensors, right-padded to the longest window."""
    if not windows:
        raise UsageError("cannot collate an empty list of windows")
    kw = {"pad_to_multiple_of": pad_to_multiple_of}
    return {
        "input_ids": pad_sequences([w.input_ids for w in windows], pad_value=pad_id, **kw),
        "token_type_ids": pad_sequences([w.token_type_ids for w in windows], pad_value=0, **kw),
        "attention_mask": pad_sequences([torch.ones(len(w), dtype=torch.long) for w in windows],
                                        pad_value=0, **kw),
    }
