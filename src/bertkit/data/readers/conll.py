"""CoNLL-style NER files: one token a line, a blank line between sentences, BIO tags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bertkit.data.readers.common import read_text
from bertkit.data.tags import validate_bio
from bertkit.errors import DataFormatError

# --------------------------------------------------------------------------- CoNLL NER


@dataclass(frozen=True)
class NerSentence:
    """One sentence: its words, their tags (``None`` for untagged input) and the file line of
    its first word (word ``i`` sits on line ``line + i``)."""

    words: list[str]
    tags: list[str] | None = None
    path: Path | None = None
    line: int | None = None


def read_conll(path: str | Path, *, has_tags: bool = True,
               validate: bool = True) -> list[NerSentence]:
    """Read a CoNLL-style NER file (see the module docstring for the layout).

    With ``has_tags=False`` every line's first column is the word and nothing is a tag (input
    for prediction). ``validate`` checks every tag is BIO (``O``/``B-X``/``I-X``).
    """
    path = Path(path)
    text = read_text(path)
    sentences: list[NerSentence] = []
    words: list[str] = []
    tags: list[str] = []
    first_line = 0

    def close() -> None:
        if words:
            if has_tags and validate:
                validate_bio(tags, path, first_line)
            sentences.append(NerSentence(list(words), list(tags) if has_tags else None, path,
                                         first_line))
            words.clear()
            tags.clear()

    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            close()
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if fields[0] == "-DOCSTART-":
            close()
            continue
        if has_tags and (len(fields) < 2 or not fields[-1]):
            raise DataFormatError(f"expected a token and a tag separated by a tab or spaces, "
                                  f"found {line!r}", path, number)
        if not fields[0]:
            raise DataFormatError(f"empty token in {line!r}; expected the token in the first "
                                  "column", path, number)
        if not words:
            first_line = number
        words.append(fields[0])
        if has_tags:
            tags.append(fields[-1])
    close()
    if not sentences:
        raise DataFormatError("file has no sentences; expected token<TAB>tag lines with a "
                              "blank line between sentences", path)
    return sentences
