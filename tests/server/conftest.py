"""Server tests: tiny random models of every head saved to temporary folders (fast), loaded
once per session as :class:`~bertkit.server.ServedModel`; they skip without the server extra."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

for _module in ("fastapi", "uvicorn", "httpx"):
    pytest.importorskip(_module, reason=f"{_module} not installed (pip install 'bertkit[server]')")

from bertkit import BertForMaskedLM, BertModel, Tokenizer  # noqa: E402
from bertkit.model.pretrained import (  # noqa: E402
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from bertkit.server import ServedModel  # noqa: E402
from tiny import tiny_config as shared_tiny_config  # noqa: E402
from tiny import word_tokenizer  # noqa: E402

WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "in", "paris", "london", "alice", "bob",
         "met", "lives", "where", "who", "does", "is", "was", "happy", "sad", "film", "good",
         "bad", "very", "and", "it", ".", "?", ",", "##s", "##ing", "play", "sky", "blue"]
NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


tiny_config = functools.partial(shared_tiny_config, max_position_embeddings=24)


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    return word_tokenizer(tmp_path_factory.mktemp("vocab"), WORDS, 24)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory, tokenizer: Tokenizer
               ) -> dict[str, Path]:
    """One checkpoint folder per server task; max 24 positions so long texts need windows."""
    size = len(tokenizer)
    models = {
        "embeddings": BertModel(tiny_config(size)),
        "fill-mask": BertForMaskedLM(tiny_config(size)),
        "classify": BertForSequenceClassification(tiny_config(
            size, id2label={0: "negative", 1: "positive"})),
        "ner": BertForTokenClassification(tiny_config(size, id2label=NER_LABELS)),
        "qa": BertForQuestionAnswering(tiny_config(size)),
    }
    dirs = {}
    for seed, (task, model) in enumerate(models.items()):
        torch.manual_seed(seed)
        model.init_weights()
        directory = tmp_path_factory.mktemp(task)
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        dirs[task] = directory
    return dirs


@pytest.fixture(scope="session")
def served(model_dirs: dict[str, Path]) -> dict[str, ServedModel]:
    """Every tiny model loaded once, on the CPU, named after its task."""
    return {task: ServedModel.load(task, directory, device="cpu")
            for task, directory in model_dirs.items()}


@pytest.fixture
def minilm_dir(artifact: Callable[[str], Path]) -> Path:
    return artifact("all-minilm-l6-v2")


@pytest.fixture(scope="session")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Tokenizer) -> Path:
    """A one-label sequence classifier: a cross-encoder reranker's shape."""
    torch.manual_seed(11)
    model = BertForSequenceClassification(tiny_config(len(tokenizer), num_labels=1))
    model.init_weights()
    directory = tmp_path_factory.mktemp("rerank")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def reranker(cross_encoder_dir: Path) -> ServedModel:
    return ServedModel.load("rerank", cross_encoder_dir, device="cpu")
