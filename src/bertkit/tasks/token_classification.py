"""Token classification (NER) data: word tags → word-piece labels, and predictions → entities.

**Alignment.** A model predicts one label per word piece, a data set has one tag per word. In
training, the FIRST piece of each word carries the word's tag id and the other pieces carry
:data:`IGNORE_INDEX` (-100, skipped by the loss) — BERT's paper recipe. With
``label_all_pieces=True`` every piece is labelled; a continuation piece of a ``B-X`` word gets
``I-X`` (when that tag exists), so no entity seems to start mid-word. Special tokens and the
padding are always ignored. Long sentences are windowed; every window labels the first pieces
it holds.

**Decoding.** A word's prediction is the prediction at its first piece, read from the window
where that piece has its maximum context (:meth:`~bertkit.data.windows.WindowSet.locate`).
Entities are then extracted from the word tags with
:func:`~bertkit.tasks.metrics.extract_entities` (seqeval's rules) and given CHARACTER offsets:

* word input (:class:`~bertkit.data.readers.NerSentence`): offsets index the words joined by
  single spaces — ``" ".join(words)`` — and an entity spans from the first character of its
  first word to the last character of its last word;
* raw text input (``str``): the tokenizer's pre-tokenization splits the text into words, and
  offsets index the text itself (a word runs from its first to its last piece's character).

A word the tokenizer turns into no piece at all (e.g. only control characters) cannot be
labelled or predicted; it is listed in ``TokenClassificationFeatures.unaligned`` and decoded as
``O``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from bertkit.data.batch import pad_sequences
from bertkit.data.masking import IGNORE_INDEX
from bertkit.data.readers import LabelMap, NerSentence
from bertkit.data.windows import TokenizedText, WindowSet, collate_windows, make_windows
from bertkit.errors import UsageError
from bertkit.tasks.metrics import extract_entities

if TYPE_CHECKING:
    from bertkit.tokenization import Tokenizer

__all__ = [
    "IGNORE_INDEX",
    "CharEntity",
    "NerPrediction",
    "TokenClassificationFeatures",
    "collate_token_classification",
    "decode_entities",
    "encode_tags",
    "entities_with_offsets",
    "token_classification_features",
    "word_predictions",
]


def encode_tags(sentences: Sequence[NerSentence], label_map: LabelMap) -> list[list[int]]:
    """Tag ids of every sentence; an unknown tag is a ``DataFormatError`` at its file line."""
    out: list[list[int]] = []
    for s in sentences:
        if s.tags is None:
            raise UsageError("encode_tags needs tagged sentences (read with has_tags=True)")
        out.append([label_map.id_of(tag, s.path, None if s.line is None else s.line + i, "tag")
                    for i, tag in enumerate(s.tags)])
    return out


@dataclass
class TokenClassificationFeatures:
    """Windows, and per window a label per position (``IGNORE_INDEX`` where not scored).

    ``unaligned`` lists ``(example, word)`` of words that produced no word piece.
    """

    windows: WindowSet
    labels: list[list[int]] | None
    unaligned: list[tuple[int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.windows)


def token_classification_features(
    tokenizer: Tokenizer,
    inputs: Sequence[NerSentence] | Sequence[str],
    *,
    label_map: LabelMap | None = None,
    max_length: int | None = None,
    doc_stride: int | None = None,
    label_all_pieces: bool = False,
) -> TokenClassificationFeatures:
    """Window NER inputs; with ``label_map`` (and tagged sentences) also align the labels.

    ``inputs`` are either sentences (word lists, e.g. from
    :func:`~bertkit.data.readers.read_conll`) or raw texts, not a mix.
    """
    raw = [isinstance(x, str) for x in inputs]
    if any(raw) and not all(raw):
        raise UsageError("inputs mix raw texts and NerSentence objects; pass one kind")
    is_text = bool(inputs) and raw[0]
    if not is_text and not all(isinstance(x, NerSentence) for x in inputs):
        raise UsageError("inputs must be NerSentence objects or raw text strings")
    if is_text and label_map is not None:
        raise UsageError("labels need word-level tags: pass NerSentence inputs with tags")
    names = None
    if not is_text:
        names = [f"{s.path}:{s.line}" if s.path is not None else f"sentence {i}"
                 for i, s in enumerate(inputs)]  # type: ignore[union-attr]
    texts = list(inputs) if is_text else [s.words for s in inputs]  # type: ignore[union-attr]
    windows = make_windows(tokenizer, texts, max_length=max_length, doc_stride=doc_stride,
                           is_split_into_words=not is_text, example_names=names)
    firsts = [segment.first_tokens() for segment in windows.segments]
    unaligned = [(e, w) for e, first in enumerate(firsts) for w, t in enumerate(first)
                 if t is None]
    labels = None
    if label_map is not None:
        tag_ids = encode_tags(inputs, label_map)  # type: ignore[arg-type]
        continuation = _continuation_ids(label_map) if label_all_pieces else None
        labels = []
        for window in windows.windows:
            first = firsts[window.example]
            row = []
            for token, word in zip(window.token_index, window.word_ids, strict=True):
                if token is None or word is None:
                    row.append(IGNORE_INDEX)
                    continue
                tag = tag_ids[window.example][word]
                if token == first[word]:
                    row.append(tag)
                else:
                    row.append(IGNORE_INDEX if continuation is None else continuation[tag])
            labels.append(row)
    return TokenClassificationFeatures(windows, labels, unaligned)


def _continuation_ids(label_map: LabelMap) -> list[int]:
    """Label id a continuation piece gets under ``label_all_pieces``: B-X → I-X if known."""
    ids = label_map.label2id
    return [ids.get("I-" + tag[2:], i) if tag.startswith("B-") else i
            for i, tag in enumerate(label_map.labels)]


def collate_token_classification(features: TokenClassificationFeatures, indices: Sequence[int],
                                 *, pad_id: int, pad_to_multiple_of: int | None = None
                                 ) -> dict[str, torch.Tensor]:
    """A padded batch of windows ``indices``; ``labels`` ``(B, T)`` padded with -100."""
    batch = collate_windows([features.windows.windows[i] for i in indices], pad_id=pad_id,
                            pad_to_multiple_of=pad_to_multiple_of)
    if features.labels is not None:
        batch["labels"] = pad_sequences([features.labels[i] for i in indices],
                                        pad_value=IGNORE_INDEX,
                                        pad_to_multiple_of=pad_to_multiple_of)
    return batch


def _as_predictions(predictions: Any, num_windows: int) -> np.ndarray:
    """``(W, T)`` label ids from ids or ``(W, T, C)`` logits: a tensor, an array, or a list of
    per-window rows of different lengths (unpadded), padded here with -1."""
    if isinstance(predictions, torch.Tensor):
        predictions = predictions.detach().cpu().numpy()
    if isinstance(predictions, (list, tuple)):
        rows = [np.asarray(r) for r in predictions]
        rows = [r.argmax(-1) if r.ndim == 2 else r for r in rows]
        if any(r.ndim != 1 for r in rows):
            raise UsageError("each window's predictions must be (T,) ids or (T, C) logits")
        width = max((len(r) for r in rows), default=0)
        predictions = np.full((len(rows), width), -1, dtype=np.int64)
        for i, r in enumerate(rows):
            predictions[i, :len(r)] = r
    array = np.asarray(predictions)
    if array.ndim == 3:
        array = array.argmax(-1)
    if array.ndim != 2 or array.shape[0] != num_windows:
        raise UsageError(f"predictions have shape {array.shape}; expected ({num_windows}, T) "
                         f"label ids or ({num_windows}, T, C) logits, one row per window")
    return array


def word_predictions(windows: WindowSet, predictions: Any) -> list[list[int | None]]:
    """Per example, the predicted label id of every word (``None`` for a word without pieces):
    the prediction at the word's first piece in that piece's max-context window."""
    array = _as_predictions(predictions, len(windows))
    out: list[list[int | None]] = []
    for example, segment in enumerate(windows.segments):
        row: list[int | None] = []
        for token in segment.first_tokens():
            if token is None:
                row.append(None)
                continue
            index, position = windows.locate(example, token)
            if position >= array.shape[1]:
                raise UsageError(f"predictions have {array.shape[1]} positions but window "
                                 f"{index} needs position {position}")
            row.append(int(array[index, position]))
        out.append(row)
    return out


@dataclass(frozen=True)
class CharEntity:
    """An entity with character offsets ``text[start:end]`` (end exclusive) and its word span
    ``[word_start, word_end)``."""

    type: str
    start: int
    end: int
    text: str
    word_start: int
    word_end: int


@dataclass(frozen=True)
class NerPrediction:
    """One input's decoded prediction: its words, one tag per word, the entities, and the text
    the entities' offsets index."""

    text: str
    words: list[str]
    tags: list[str]
    entities: list[CharEntity]


def entities_with_offsets(segment: TokenizedText, tags: Sequence[str]) -> list[CharEntity]:
    """Entities of one input's word tags, with character offsets into ``segment.text``."""
    spans = segment.word_char_spans()
    if len(tags) != len(spans):
        raise UsageError(f"got {len(tags)} tags for {len(spans)} words")
    out = []
    for entity in extract_entities(list(tags)):
        inside = [s for s in spans[entity.start:entity.end] if s is not None]
        if not inside:
            continue
        start, end = inside[0][0], inside[-1][1]
        out.append(CharEntity(entity.type, start, end, segment.text[start:end], entity.start,
                              entity.end))
    return out


def decode_entities(windows: WindowSet, predictions: Any,
                    label_map: LabelMap) -> list[NerPrediction]:
    """Window predictions (ids ``(W, T)`` or logits ``(W, T, C)``) → per input words, tags and
    entities with character offsets (see the module docstring for what offsets index)."""
    ids = word_predictions(windows, predictions)
    out = []
    for segment, row in zip(windows.segments, ids, strict=True):
        tags = []
        for value in row:
            if value is not None and not 0 <= value < len(label_map):
                raise UsageError(f"predicted label id {value} is outside 0..{len(label_map) - 1}")
            tags.append("O" if value is None else label_map.labels[value])
        if segment.words is not None:
            words = list(segment.words)
        else:
            words = [segment.text[s[0]:s[1]] if s is not None else ""
                     for s in segment.word_char_spans()]
        out.append(NerPrediction(segment.text, words, tags, entities_with_offsets(segment, tags)))
    return out
