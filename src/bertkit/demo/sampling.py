"""Fixed, reproducible slices of the data: evenly spaced items, class-stratified subsets, the
first documents of a corpus. No random sampling, so every machine scores the same documents."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bertkit import _fileio
from bertkit.data.readers import TextExample


def spread(items: Sequence[Any], count: int) -> list[Any]:
    """``count`` evenly spaced items, in order: a fixed, reproducible slice of a split that
    follows its natural class mix (no sampling, so every machine scores the same documents)."""
    if count >= len(items):
        return list(items)
    return [items[i] for i in sorted(set(np.linspace(0, len(items) - 1, count).round()
                                         .astype(int).tolist()))]


def stratified(examples: Sequence[TextExample], count: int) -> list[TextExample]:
    """About ``count`` examples keeping the class proportions, at least one of every class
    (an evaluation label unseen in training would be an error), evenly spaced within each
    class; returned in file order."""
    by_label: dict[Any, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_label[example.label].append(index)
    chosen: list[int] = []
    for indices in by_label.values():
        quota = max(1, round(count * len(indices) / len(examples)))
        chosen += spread(indices, quota)
    return [examples[i] for i in sorted(chosen)]


def first_documents(source: Path, count: int) -> Path:
    """The first ``count`` documents of a BERT-format corpus, as a file beside it (cached)."""
    target = source.with_name(f"{source.stem}.first-{count}.{source.stat().st_size}.txt")
    if not target.is_file():
        documents = source.read_text(encoding="utf-8").split("\n\n")[:count]
        _fileio.write_text(target, "\n\n".join(documents).strip("\n") + "\n")
    return target
