"""A tiny model and a small synthetic corpus in the Brown "Form C" layout, for probing tests.

The corpus is written as ``word/tag`` lines in files ``c[a-r]NN``, so the tests go through
bertkit's own Brown reader and document split. Its grammar makes part of speech partly
ambiguous by word ("run", "walk" are nouns or verbs by position), which a per-word baseline
cannot resolve.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from bertkit import BertModel
from tiny import tiny_config, word_tokenizer

DETS, ADJS = ["the", "a", "this"], ["big", "old", "red"]
NOUNS, VERBS = ["dog", "cat", "run", "walk", "man", "park"], ["saw", "run", "walk", "likes"]
WORDS = sorted({*DETS, *ADJS, *NOUNS, *VERBS, ".", "##ing"})


def _sentence(rng: random.Random) -> str:
    words = [(rng.choice(DETS), "at")]
    if rng.random() < 0.5:
        words.append((rng.choice(ADJS), "jj"))
    words += [(rng.choice(NOUNS), "nn"), (rng.choice(VERBS), "vbd"), (rng.choice(DETS), "at"),
              (rng.choice(NOUNS), "nn-tl" if rng.random() < 0.2 else "nn")]
    words += [(".", ".")] * rng.randint(0, 6)   # lengths vary: the length task has classes
    return " ".join(f"{w}/{t}" for w, t in words)


def write_brown(folder: Path, sentences_per_file: int = 12, files: int = 20) -> Path:
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(files):
        lines = ["\t" + _sentence(rng) for _ in range(sentences_per_file)]
        (folder / f"c{'abcdefghjklmnpr'[d % 15]}{d:02d}").write_text("\n\n".join(lines) + "\n",
                                                                      encoding="latin-1")
    return folder


@pytest.fixture(scope="session")
def brown_writer() -> Callable[..., Path]:
    """``write_brown(folder, sentences_per_file, files)`` for tests that edit their corpus."""
    return write_brown


@pytest.fixture(scope="session")
def brown_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_brown(tmp_path_factory.mktemp("brown"))


@pytest.fixture(scope="session")
def probe_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT (random weights) with a word-level vocabulary saved as a model folder."""
    root = tmp_path_factory.mktemp("probe-model")
    tokenizer = word_tokenizer(root, WORDS, max_length=16)
    model = BertModel(tiny_config(len(WORDS) + 5, max_position_embeddings=16))
    model.init_weights()
    folder = root / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
