"""Statically masked sentence pairs written once to memory-mapped shards and read back with no
tokenisation (layout: :mod:`bertkit.data.instances`)."""


from __future__ import annotations

import bisect
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bertkit import _fileio
from bertkit.data.batch import Example, pad_sequences
from bertkit.data.masking import (
    IGNORE_INDEX,
    MaskingConfig,
    mask_tokens,
    word_starts_from_continuation,
)
from bertkit.data.pairs import (
    Document,
    NspInstance,
    PairObjective,
    SingleSegment,
    iter_nsp_instances,
)
from bertkit.errors import ConfigError, DataFormatError, UsageError

SHARD_FORMAT = "bertkit-pretraining-shards"
SHARD_VERSION = 1
INDEX_COLUMNS = (
    "token_start", "length", "segment_a_length", "pair_label", "mlm_start", "mlm_count",
)
_TOKEN_START, _LENGTH, _SEGMENT_A, _PAIR_LABEL, _MLM_START, _MLM_COUNT = range(6)


# --------------------------------------------------------------------------- shards


def build_nsp_shards(
    documents: Sequence[Document],
    directory: str | Path,
    *,
    cls_id: int,
    sep_id: int,
    masking: MaskingConfig,
    dupe_factor: int = 10,
    max_seq_length: int = 128,
    short_seq_prob: float = 0.1,
    nsp_prob: float = 0.5,
    objective: PairObjective = "nsp",
    single_segment: SingleSegment = "split",
    seed: int = 12345,
    word_continuation: Tensor | None = None,
    instances_per_shard: int = 100_000,
) -> dict[str, Any]:
    """Google's static pipeline: ``dupe_factor`` passes of pairing + masking, written once.

    Each pass visits the documents in a fresh random order and streams its instances straight
    into :func:`write_shards`, so memory holds the token-id documents and one shard, not all
    instances. Seeds ``random.Random(seed)`` (pairs) and ``torch.Generator`` (masks) once.
    Defaults are Google's (``dupe_factor=10``, ``max_seq_length=128``, seed 12345).

    Returns:
        The manifest written to ``directory/manifest.json``.
    """
    if dupe_factor < 1:
        raise ConfigError(f"dupe_factor={dupe_factor}: expected at least 1")
    rng = random.Random(seed)

    def passes() -> Iterator[NspInstance]:
        for _ in range(dupe_factor):
            order = list(range(len(documents)))
            rng.shuffle(order)
            yield from iter_nsp_instances(
                documents, max_seq_length=max_seq_length, short_seq_prob=short_seq_prob,
                nsp_prob=nsp_prob, rng=rng, cls_id=cls_id, sep_id=sep_id, objective=objective,
                single_segment=single_segment, document_order=order,
            )

    metadata = {"objective": objective, "single_segment": single_segment,
                "dupe_factor": dupe_factor, "seed": seed,
                "short_seq_prob": short_seq_prob, "nsp_prob": nsp_prob,
                "whole_word_masking": word_continuation is not None}
    return write_shards(directory, passes(), masking=masking,
                        generator=torch.Generator().manual_seed(seed),
                        max_seq_length=max_seq_length, word_continuation=word_continuation,
                        instances_per_shard=instances_per_shard, metadata=metadata)


def write_shards(
    directory: str | Path,
    instances: Iterable[NspInstance],
    *,
    masking: MaskingConfig,
    generator: torch.Generator,
    max_seq_length: int,
    word_continuation: Tensor | None = None,
    instances_per_shard: int = 100_000,
    mask_batch_size: int = 1024,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Mask instances (vectorised, ``mask_batch_size`` at a time) and write them as shards.

    Position 0, the end of segment A and the last position are never masked (they hold
    ``[CLS]``/``[SEP]``), nor any id in ``masking.special_ids``. Every file is written
    atomically and the manifest last.

    Raises:
        UsageError: an instance is longer than ``max_seq_length``, or there are none.
    """
    masking.validate()
    if instances_per_shard < 1 or mask_batch_size < 1:
        raise ConfigError("instances_per_shard and mask_batch_size must be positive")
    writer = _ShardWriter(Path(directory), instances_per_shard)
    iterator = iter(instances)
    while True:
        chunk = [inst for _, inst in zip(range(min(mask_batch_size, writer.room())), iterator,
                                         strict=False)]
        if not chunk:
            break
        too_long = max(len(inst.tokens) for inst in chunk)
        if too_long > max_seq_length:
            raise UsageError(
                f"an instance has {too_long} tokens; max_seq_length is {max_seq_length}")
        writer.add(*_mask_chunk(chunk, masking, generator, word_continuation))
    if writer.total == 0:
        raise UsageError("no instances to write: the corpus produced no sentence pairs")
    manifest = {
        "format": SHARD_FORMAT, "version": SHARD_VERSION, "max_seq_length": max_seq_length,
        "num_instances": writer.total, "shards": writer.close(), "index_columns": INDEX_COLUMNS,
        "masking": asdict(masking), **(metadata or {}),
    }
    _fileio.write_json(Path(directory) / "manifest.json", manifest)
    return manifest


def _mask_chunk(chunk: list[NspInstance], masking: MaskingConfig, generator: torch.Generator,
                word_continuation: Tensor | None) -> tuple[np.ndarray, ...]:
    """Mask a list of instances as one padded batch; return flat numpy pieces for the writer."""
    ids = pad_sequences([inst.tokens for inst in chunk], pad_value=0)  # (B, T)
    rows = torch.arange(len(chunk))
    lengths = torch.tensor([len(inst.tokens) for inst in chunk])
    a_lengths = torch.tensor([inst.segment_ids.count(0) for inst in chunk])
    attention = torch.arange(ids.shape[1]) < lengths[:, None]  # (B, T)
    special = torch.isin(ids, torch.tensor(masking.special_ids, dtype=torch.long))
    special[:, 0] = True
    special[rows, a_lengths - 1] = True
    special[rows, lengths - 1] = True
    word_starts = None if word_continuation is None else word_starts_from_continuation(
        ids, word_continuation)
    masked, labels = mask_tokens(
        ids, special, vocab_size=masking.vocab_size, mask_token_id=masking.mask_token_id,
        rate=masking.rate, mask_fraction=masking.mask_fraction,
        random_fraction=masking.random_fraction, max_predictions=masking.max_predictions,
        generator=generator, word_starts=word_starts, attention_mask=attention,
        selection=masking.selection, exclude_random_ids=masking.special_ids,
    )
    predicted = labels != IGNORE_INDEX
    row, position = predicted.nonzero(as_tuple=True)  # row-major, so grouped by instance
    mlm = torch.stack([position, labels[row, position]], dim=1)
    return (
        masked[attention].numpy().astype(np.int32),
        lengths.numpy(),
        a_lengths.numpy(),
        np.array([inst.is_random_next for inst in chunk], dtype=np.int64),
        mlm.numpy().astype(np.int32),
        predicted.sum(1).numpy(),
    )


class _ShardWriter:
    """Buffers one shard's arrays and writes them atomically when it is full."""

    def __init__(self, directory: Path, capacity: int) -> None:
        self.directory = directory
        self.capacity = capacity
        self.total = 0
        self.shards: list[dict[str, Any]] = []
        self._reset()

    def _reset(self) -> None:
        self.tokens: list[np.ndarray] = []
        self.index: list[np.ndarray] = []
        self.mlm: list[np.ndarray] = []
        self.count = self.n_tokens = self.n_mlm = 0

    def room(self) -> int:
        return self.capacity - self.count

    def add(self, tokens: np.ndarray, lengths: np.ndarray, a_lengths: np.ndarray,
            pair_labels: np.ndarray, mlm: np.ndarray, mlm_counts: np.ndarray) -> None:
        index = np.zeros((len(lengths), len(INDEX_COLUMNS)), dtype=np.int64)
        index[:, _TOKEN_START] = self.n_tokens + np.cumsum(lengths) - lengths
        index[:, _LENGTH] = lengths
        index[:, _SEGMENT_A] = a_lengths
        index[:, _PAIR_LABEL] = pair_labels
        index[:, _MLM_START] = self.n_mlm + np.cumsum(mlm_counts) - mlm_counts
        index[:, _MLM_COUNT] = mlm_counts
        self.tokens.append(tokens)
        self.index.append(index)
        self.mlm.append(mlm)
        self.count += len(lengths)
        self.n_tokens += len(tokens)
        self.n_mlm += len(mlm)
        self.total += len(lengths)
        if self.room() == 0:
            self._flush()

    def _flush(self) -> None:
        if not self.count:
            return
        name = f"shard-{len(self.shards):05d}"
        arrays = {
            "tokens": np.concatenate(self.tokens),
            "index": np.concatenate(self.index),
            "mlm": np.concatenate(self.mlm).reshape(-1, 2),
        }
        for kind, values in arrays.items():
            _fileio.atomic_write(self.directory / f"{name}.{kind}.npy",
                                 lambda handle, a=values: np.save(handle, a), binary=True)
        self.shards.append({"name": name, "num_instances": self.count,
                            "num_tokens": self.n_tokens, "num_predictions": self.n_mlm})
        self._reset()

    def close(self) -> list[dict[str, Any]]:
        self._flush()
        return self.shards


class ShardDataset(torch.utils.data.Dataset[Example]):
    """Random access to the instances of a shard directory, memory-mapped, no tokenisation.

    Each item is an :class:`~bertkit.data.batch.Example` (masked ids, segment ids, MLM labels,
    pair label); batch them with :func:`~bertkit.data.batch.collate`. Arrays are opened lazily
    and dropped when pickled, so ``DataLoader`` workers map the files themselves instead of
    receiving copies.

    Raises:
        DataFormatError: no manifest (an interrupted write or a wrong directory), another
            format, or shard files that disagree with the manifest.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        manifest_path = self.directory / "manifest.json"
        if not manifest_path.is_file():
            raise DataFormatError("no manifest.json: not a shard directory, or its writing was "
                                  "interrupted", self.directory)
        self.manifest: dict[str, Any] = _fileio.read_json(manifest_path)
        if (self.manifest.get("format") != SHARD_FORMAT
                or self.manifest.get("version") != SHARD_VERSION):
            raise DataFormatError(f"expected format {SHARD_FORMAT!r} version {SHARD_VERSION}, got "
                                  f"{self.manifest.get('format')!r} version "
                                  f"{self.manifest.get('version')}", manifest_path)
        counts = [int(s["num_instances"]) for s in self.manifest["shards"]]
        self._ends = np.cumsum(counts).tolist()
        self._arrays: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __getitem__(self, item: int) -> Example:
        if not -len(self) <= item < len(self):
            raise IndexError(f"instance {item} out of range for {len(self)} instances")
        item %= len(self)
        shard = bisect.bisect_right(self._ends, item)
        row = item - (self._ends[shard - 1] if shard else 0)
        tokens, index, mlm = self._load()[shard]
        start, length, a_length, pair_label, mlm_start, mlm_count = index[row].tolist()
        input_ids = torch.from_numpy(tokens[start : start + length].astype(np.int64))
        token_type_ids = torch.zeros(length, dtype=torch.long)
        token_type_ids[a_length:] = 1
        labels = torch.full((length,), IGNORE_INDEX, dtype=torch.long)
        predicted = torch.from_numpy(mlm[mlm_start : mlm_start + mlm_count].astype(np.int64))
        labels[predicted[:, 0]] = predicted[:, 1]
        return Example(input_ids=input_ids, token_type_ids=token_type_ids, mlm_labels=labels,
                       next_sentence_label=pair_label)

    def _load(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if self._arrays is None:
            self._arrays = [self._open(shard) for shard in self.manifest["shards"]]
        return self._arrays

    def _open(self, shard: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        arrays = []
        for kind in ("tokens", "index", "mlm"):
            path = self.directory / f"{shard['name']}.{kind}.npy"
            try:
                arrays.append(np.load(path, mmap_mode="r"))
            except (OSError, ValueError) as err:
                raise DataFormatError(f"cannot map shard file: {err}", path) from None
        tokens, index, mlm = arrays
        expected = (int(shard["num_instances"]), len(INDEX_COLUMNS))
        if (index.shape != expected or len(tokens) != int(shard["num_tokens"])
                or mlm.shape != (int(shard["num_predictions"]), 2)):
            raise DataFormatError(f"shard {shard['name']} does not match the manifest (index "
                                  f"{index.shape}, expected {expected})", self.directory)
        return tokens, index, mlm

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_arrays"] = None
        return state
