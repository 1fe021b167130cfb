#!/usr/bin/env python
"""The demo's TF-IDF + logistic-regression baseline on the *full* Reuters R8 test split, trained
on class-stratified subsets of the training split of growing size (the last: all of it).

Usage (repository root, project virtualenv)::

    .venv/bin/python benchmarks/r8_tfidf.py --sizes 500,2000,all
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from benchtools import cpu_ticks, load_note, table
from bertkit.data.readers import read_classification
from bertkit.demo.baseline import score_tfidf
from bertkit.demo.data_steps import DATASETS, TEST_FILE, TRAIN_FILE
from bertkit.demo.sampling import stratified
from bertkit.resources.artifacts import fetch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="500,2000,all")
    args = parser.parse_args()
    folder = fetch(DATASETS, quiet=True)
    read = {"text_column": "Text", "label_column": "Category"}
    train = read_classification(folder / TRAIN_FILE, **read)  # type: ignore[arg-type]
    test = read_classification(folder / TEST_FILE, **read)  # type: ignore[arg-type]
    label, count = Counter(e.label for e in test).most_common(1)[0]
    since, rows = cpu_ticks(), []
    for size in args.sizes.split(","):
        subset = train if size == "all" else stratified(train, int(size))
        started = time.process_time()
        scores = score_tfidf(subset, test)
        rows.append([f"{len(subset):,}", f"{scores['accuracy']:.4f}",
                     f"{scores['macro_f1']:.4f}", f"{time.process_time() - started:.1f}"])
    print(f"R8: {len(train):,} training / {len(test):,} test documents; majority class "
          f"{label!r} {count / len(test):.4f}")
    table(["training documents", "accuracy", "macro-F1", "CPU s"], rows)
    print(load_note(since))


if __name__ == "__main__":
    main()
