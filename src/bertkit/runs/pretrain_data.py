"""The pretraining run's data: documents read and tokenized once, a held-out share of them
set aside, and the training examples of the regime (NSP/SOP shards, or packed sequences masked
afresh per draw) with fixed-mask evaluation batches; plus the two reference points every
evaluation is read against: the unigram baseline and the table of content tokens.

Split from :mod:`bertkit.runs.pretrain` (the run itself) so that each reads on its own; the
settings object is that module's :class:`~bertkit.runs.pretrain.PretrainSettings`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as torch_dist

from bertkit.data.batch import Batch, DynamicMaskingCollator, collate
from bertkit.data.corpus import read_documents
from bertkit.data.instances import (
    ShardDataset,
    build_nsp_shards,
    pack_sequences,
    tokenize_documents,
)
from bertkit.data.masking import IGNORE_INDEX, MaskingConfig
from bertkit.errors import UsageError
from bertkit.tokenization import Tokenizer

if TYPE_CHECKING:
    from bertkit.runs.pretrain import PretrainSettings

#: Regimes with sentence pairs written to static shards, and the pair task each predicts.
PAIR_TASK = {"bert": "nsp", "albert": "sop"}
DATA_DIR = "data"
_DATA_VERSION = 1
#: Content tokens are those outside this many most frequent (non-special) tokens.
FREQUENT_TOKENS = 100
#: Training examples counted for the token frequencies (a sample is enough to rank the top).
_FREQUENCY_SAMPLE = 20000


def _fingerprint(settings: PretrainSettings, files: list[Path], tokenizer: Tokenizer) -> str:
    """Names a data build: the corpus files (path, size, mtime), the vocabulary and the data
    settings. Equal fingerprints mean the shards on disk are the ones this run would build."""
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    digest.update(json.dumps(vocab).encode())
    digest.update(json.dumps({"v": _DATA_VERSION, **settings.data_recipe()},
                             sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _tokenized_documents(settings: PretrainSettings, files: list[Path],
                         tokenizer: Tokenizer) -> list[list[Any]]:
    """Every document as sentences of token ids (no special tokens)."""
    def tokenize(sentences: list[str]) -> list[list[int]]:
        return tokenizer(sentences, add_special_tokens=False)["input_ids"]

    documents = read_documents(files, fmt=settings.corpus_format)
    return list(tokenize_documents(documents, tokenize))


def _split_documents(documents: list[Any], settings: PretrainSettings,
                     corpus: str) -> tuple[list[Any], list[Any]]:
    """Hold out an evenly spaced ``eval_fraction`` of the documents (deterministic, spread over
    the whole corpus rather than its tail, which is often one source)."""
    minimum = 2 if settings.regime == "bert" else 1  # NSP negatives need another document
    n = len(documents)
    if n == 0:
        raise UsageError(f"corpus {corpus} holds no text that tokenizes to anything")
    n_eval = 0 if settings.eval_fraction == 0 else max(minimum,
                                                        round(n * settings.eval_fraction))
    if n - n_eval < minimum:
        raise UsageError(
            f"corpus {corpus} has {n} document(s); the {settings.regime} regime needs at least "
            f"{minimum} for training plus {n_eval} held out (blank line between documents, or "
            "set eval_fraction=0)")
    held = set(np.linspace(0, n - 1, n_eval).round().astype(int).tolist()) if n_eval else set()
    train = [doc for i, doc in enumerate(documents) if i not in held]
    held_out = [doc for i, doc in enumerate(documents) if i in held]
    return train, held_out


def is_main() -> bool:
    return not (torch_dist.is_available() and torch_dist.is_initialized()) or \
        torch_dist.get_rank() == 0


def barrier() -> None:
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()


@dataclass
class RunData:
    train: Sequence[Any]
    collate_fn: Any
    eval_batches: list[Batch]
    generators: dict[str, torch.Generator]


def static_data(settings: PretrainSettings, files: list[Path], tokenizer: Tokenizer,
                 masking: MaskingConfig, continuation: torch.Tensor | None, out: Path,
                 corpus: str) -> RunData:
    """BERT (ALBERT): NSP (SOP) shards built once by rank 0 (cached by fingerprint), read by
    every rank."""
    root = out / DATA_DIR / _fingerprint(settings, files, tokenizer)
    train_dir, eval_dir = root / "train", root / "eval"
    if is_main() and not (train_dir / "manifest.json").is_file():
        documents = _tokenized_documents(settings, files, tokenizer)
        train_docs, eval_docs = _split_documents(documents, settings, corpus)
        common = {"cls_id": tokenizer.cls_token_id, "sep_id": tokenizer.sep_token_id,
                  "objective": PAIR_TASK[settings.regime],
                  "masking": masking, "max_seq_length": settings.seq_len,
                  "short_seq_prob": settings.short_seq_prob, "word_continuation": continuation}
        if eval_docs:
            build_nsp_shards(eval_docs, eval_dir, dupe_factor=1, seed=settings.seed + 1,
                             **common)
        build_nsp_shards(train_docs, train_dir, dupe_factor=settings.dupe_factor,
                         seed=settings.seed, **common)
    barrier()
    train = ShardDataset(train_dir)
    pad = tokenizer.pad_token_id

    def collate_fn(examples: list[Any]) -> Batch:
        return collate(examples, pad_id=pad, pad_to_multiple_of=8)

    eval_batches: list[Batch] = []
    if (eval_dir / "manifest.json").is_file():
        held = ShardDataset(eval_dir)
        count = min(len(held), settings.eval_max_examples)
        eval_batches = [collate_fn([held[i] for i in range(start, min(start +
                                    settings.batch_size, count))])
                        for start in range(0, count, settings.batch_size)]
    return RunData(train, collate_fn, eval_batches, {})


def dynamic_data(settings: PretrainSettings, files: list[Path], tokenizer: Tokenizer,
                  masking: MaskingConfig, continuation: torch.Tensor | None,
                  corpus: str) -> RunData:
    """RoBERTa: packed full-length sequences, masked afresh per draw (generator checkpointed);
    the held-out sequences are masked once with their own seed."""
    documents = _tokenized_documents(settings, files, tokenizer)
    train_docs, eval_docs = _split_documents(documents, settings, corpus)

    def pack(docs: list[Any]) -> list[np.ndarray]:
        flat = (np.concatenate([np.asarray(s, dtype=np.int32) for s in doc]) for doc in docs)
        return [np.asarray(seq, dtype=np.int32) for seq in pack_sequences(
            flat, settings.seq_len, tokenizer.sep_token_id, cls_id=tokenizer.cls_token_id,
            sep_id=tokenizer.sep_token_id)]

    collator = DynamicMaskingCollator(masking, pad_id=tokenizer.pad_token_id, seed=settings.seed,
                                      word_continuation=continuation, pad_to_multiple_of=8)
    eval_batches: list[Batch] = []
    if eval_docs:
        held = pack(eval_docs)[: settings.eval_max_examples]
        fixed = DynamicMaskingCollator(masking, pad_id=tokenizer.pad_token_id,
                                       seed=settings.seed + 1, word_continuation=continuation,
                                       pad_to_multiple_of=8)
        eval_batches = [fixed(held[i:i + settings.batch_size])
                        for i in range(0, len(held), settings.batch_size)]
    return RunData(pack(train_docs), collator, eval_batches, {"masking": collator.generator})


def unigram_baseline(batches: Iterable[Batch]) -> float:
    """Accuracy of always predicting the most frequent masked target of ``batches``."""
    counts: Counter[int] = Counter()
    for batch in batches:
        if batch.mlm_labels is not None:
            labels = batch.mlm_labels[batch.mlm_labels != IGNORE_INDEX]
            counts.update(labels.tolist())
    total = sum(counts.values())
    return counts.most_common(1)[0][1] / total if total else 0.0


def token_counts(train: Sequence[Any]) -> Counter[int]:
    """How often each token is a training target, counted over up to 20,000 examples: every
    token of a packed sequence, or the masked targets of a static instance (an unbiased sample
    of the text's tokens). Specials are counted where they occur; the readers drop them."""
    counts: Counter[int] = Counter()
    for index in range(min(len(train), _FREQUENCY_SAMPLE)):
        example = train[index]
        if isinstance(example, np.ndarray):
            counts.update(example.tolist())
        else:
            labels = example.mlm_labels
            counts.update(labels[labels != IGNORE_INDEX].tolist())
    return counts


def content_table(counts: Counter[int], tokenizer: Tokenizer,
                  frequent: int = FREQUENT_TOKENS) -> torch.Tensor:
    """(V,) bool: True for content tokens — every token outside the ``frequent`` most common
    non-special tokens of ``counts`` (:func:`token_counts`). Specials are never content."""
    special = set(tokenizer.all_special_ids)
    common = [token for token, _ in counts.most_common() if token not in special][:frequent]
    table = torch.ones(tokenizer.vocab_size, dtype=torch.bool)
    table[sorted(special | set(common))] = False
    return table


def unigram_log_prior(counts: Counter[int], tokenizer: Tokenizer) -> torch.Tensor:
    """(V,) log frequency of each token as a masked target (add-one smoothed, specials at the
    floor since masking never picks them), shifted to mean 0, which softmax ignores.

    As a from-scratch model's MLM output bias it makes the first predictions the base rates:
    the initial loss is the unigram entropy instead of ln V, and the first hundreds of steps go
    to context instead of to learning how common each token is ("initialise the output bias to
    the prior", as RetinaNet does for its classes).
    """
    frequency = torch.ones(tokenizer.vocab_size, dtype=torch.float64)
    special = set(tokenizer.all_special_ids)
    for token, count in counts.items():
        if token not in special and 0 <= token < tokenizer.vocab_size:
            frequency[token] += count
    prior = frequency.log()
    return (prior - prior.mean()).float()
