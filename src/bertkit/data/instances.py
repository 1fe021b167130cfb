"""Training instances: BERT sentence pairs written once to shards, and RoBERTa packed sequences.

**BERT (static masking).** :func:`iter_nsp_instances` follows Google's
``create_pretraining_data.py`` step for step: per document a target length of
``max_seq_length - 3`` (or, with probability ``short_seq_prob``, one drawn uniformly from
``[2, max_seq_length - 3]`` — drawn once per document, as Google does, so short targets
cover about ``short_seq_prob`` of the *documents*); segments (sentences) accumulate until the
target is reached; a random split point makes A; B is the true continuation, or — with
probability ``nsp_prob`` — a span from a random *other* document (up to 10 draws to avoid the
same one), in which case the unused segments go back to be read again; the longer of A and B
loses tokens, one at a time from a randomly chosen end, until the pair fits.
:func:`build_nsp_shards` repeats that ``dupe_factor`` times (each pass gives new pairs *and* a
new mask, as in Google's script) and :func:`write_shards` stores the masked instances once, as
memory-mapped numpy arrays that :class:`ShardDataset` reads back with no tokenisation.

Deliberate differences from Google, each measured or free:

- **One-segment chunks** (``single_segment``). Google always gives such a chunk a random B.
  Those chunks cluster at document ends, where every random B puts segments back and so makes
  another, smaller end chunk — a cascade that ends in a forced negative. Measured on synthetic
  documents of 8–120 sentences, that pushes the share of random-next labels to 54–60 %,
  so a constant classifier beats 50 % and NSP accuracy misleads. The default ``"split"`` gives a
  one-segment chunk the same ``nsp_prob`` choice, its positive being the segment cut at a
  random token (A = its start, B = the rest); each label is then an independent draw and the
  balance is ``nsp_prob`` in expectation. ``"random"`` is Google's rule, exactly.
- Documents are shuffled per pass instead of once (decorrelates the dupes, costs nothing).
- ``objective="sop"`` (ALBERT's sentence-order prediction): B is always the true
  continuation and the pair is swapped with probability ``nsp_prob`` (label 1 = swapped); a
  one-segment chunk is split the same way, so the label means only "order".

**RoBERTa (dynamic masking).** :func:`pack_sequences` concatenates documents, with a separator
between them, and cuts the stream into full-length sequences; the mask is drawn later, per
batch, by :class:`~bertkit.data.batch.DynamicMaskingCollator`.

Shard layout (one directory): ``manifest.json`` — written last, so a directory without it is an
interrupted write — and per shard ``<name>.tokens.npy`` (int32, all masked token ids end to end),
``<name>.index.npy`` (int64, one row per instance, columns :data:`INDEX_COLUMNS`) and
``<name>.mlm.npy`` (int32 rows ``(position, original id)`` of the predicted positions).

Legend: B batch, T tokens.
"""

from __future__ import annotations

import bisect
import random
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

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
from bertkit.errors import ConfigError, DataFormatError, UsageError

PairObjective = Literal["nsp", "sop"]
SingleSegment = Literal["split", "random"]
Document = Sequence[Sequence[int]]  # sentences of token ids

SHARD_FORMAT = "bertkit-pretraining-shards"
SHARD_VERSION = 1
INDEX_COLUMNS = (
    "token_start", "length", "segment_a_length", "pair_label", "mlm_start", "mlm_count",
)
_TOKEN_START, _LENGTH, _SEGMENT_A, _PAIR_LABEL, _MLM_START, _MLM_COUNT = range(6)

# Google draws a random document this many times before accepting the same one.
_RANDOM_DOCUMENT_TRIES = 10


@dataclass
class NspInstance:
    """``[CLS] A [SEP] B [SEP]`` with segment ids 0 for ``[CLS] A [SEP]`` and 1 for ``B [SEP]``.

    ``is_random_next`` is the pair label: B came from another document (NSP), or A and B were
    swapped (SOP).
    """

    tokens: list[int]
    segment_ids: list[int]
    is_random_next: bool


# --------------------------------------------------------------------------- token ids


def tokenize_documents(
    documents: Iterable[Sequence[str]],
    tokenize: Callable[[list[str]], Sequence[Sequence[int]]],
) -> Iterator[list[array]]:
    """Turn streamed text documents into token-id documents, ready for pairing or packing.

    ``tokenize`` maps a list of sentences to their token ids *without* special tokens — one
    call per document, so a batch tokenizer (``tokenizers``' ``encode_batch``) does the work in
    parallel; wrap a one-sentence function as ``lambda ss: [f(s) for s in ss]``. Sentences that
    tokenize to nothing are dropped, then documents left empty.

    Sentences are kept as ``array("i")`` (4 bytes a token) rather than lists of Python ints
    (about 36 bytes a token): Google's algorithm needs every document in memory to draw random
    B segments, and this is what lets a 10-million-word corpus fit in a few hundred MB.
    """
    for document in documents:
        ids = [array("i", sentence) for sentence in tokenize(list(document))]
        ids = [sentence for sentence in ids if len(sentence)]
        if ids:
            yield ids


# --------------------------------------------------------------------------- sentence pairs


def create_nsp_instances(
    documents: Sequence[Document],
    *,
    max_seq_length: int = 128,
    short_seq_prob: float = 0.1,
    nsp_prob: float = 0.5,
    rng: random.Random,
    cls_id: int,
    sep_id: int,
    objective: PairObjective = "nsp",
    single_segment: SingleSegment = "split",
) -> list[NspInstance]:
    """One pass of sentence-pair creation over every document, in the given order.

    See :func:`iter_nsp_instances`, which this collects into a list.
    """
    return list(iter_nsp_instances(
        documents, max_seq_length=max_seq_length, short_seq_prob=short_seq_prob,
        nsp_prob=nsp_prob, rng=rng, cls_id=cls_id, sep_id=sep_id, objective=objective,
        single_segment=single_segment,
    ))


def iter_nsp_instances(
    documents: Sequence[Document],
    *,
    max_seq_length: int = 128,
    short_seq_prob: float = 0.1,
    nsp_prob: float = 0.5,
    rng: random.Random,
    cls_id: int,
    sep_id: int,
    objective: PairObjective = "nsp",
    single_segment: SingleSegment = "split",
    document_order: Sequence[int] | None = None,
) -> Iterator[NspInstance]:
    """Stream sentence-pair instances one document at a time (Google's algorithm; see module).

    Args:
        documents: document → sentence → token ids. Empty sentences and documents are ignored.
        max_seq_length: length of the longest instance, ``[CLS]`` and both ``[SEP]`` included.
        short_seq_prob: probability that a document uses a random shorter target length.
        nsp_prob: probability of a random-document B (NSP) or of a swap (SOP).
        rng: the only source of randomness.
        cls_id, sep_id: the special ids framing the pair.
        objective: ``"nsp"`` or ``"sop"``.
        single_segment: NSP only: ``"split"`` (balanced labels, default) or ``"random"``
            (Google: a one-segment chunk always gets a random B); see the module docstring.
        document_order: indices of the documents to visit (default: list order).

    Raises:
        UsageError: NSP with fewer than two non-empty documents (negatives need another one).
        ConfigError: ``max_seq_length`` below 5 or a probability outside [0, 1].
    """
    if max_seq_length < 5:
        raise ConfigError(
            f"max_seq_length={max_seq_length}: need at least 5 ([CLS] a [SEP] b [SEP])")
    for name, value in (("short_seq_prob", short_seq_prob), ("nsp_prob", nsp_prob)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name}={value}: expected a probability in [0, 1]")
    if objective not in ("nsp", "sop"):
        raise ConfigError(f"objective={objective!r}: expected 'nsp' or 'sop'")
    if single_segment not in ("split", "random"):
        raise ConfigError(f"single_segment={single_segment!r}: expected 'split' or 'random'")
    nonempty = [i for i, doc in enumerate(documents) if any(len(s) for s in doc)]
    if objective == "nsp" and len(nonempty) < 2:
        raise UsageError(f"next-sentence pairs need at least 2 non-empty documents, got "
                         f"{len(nonempty)}; add documents (blank line between them) or use SOP")
    pair = _PairMaker(documents, nonempty, max_seq_length - 3, short_seq_prob, nsp_prob, rng,
                      cls_id, sep_id, objective, single_segment == "split")
    for index in range(len(documents)) if document_order is None else document_order:
        yield from pair.from_document(index)


class _PairMaker:
    """The per-document step of Google's algorithm, with the corpus-wide state it needs."""

    def __init__(self, documents: Sequence[Document], nonempty: list[int], max_num_tokens: int,
                 short_seq_prob: float, nsp_prob: float, rng: random.Random, cls_id: int,
                 sep_id: int, objective: PairObjective, split_single: bool) -> None:
        self.documents = documents
        self.nonempty = nonempty
        self.max_num_tokens = max_num_tokens
        self.short_seq_prob = short_seq_prob
        self.nsp_prob = nsp_prob
        self.rng = rng
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.objective = objective
        self.split_single = split_single or objective == "sop"

    def segments(self, index: int) -> list[Sequence[int]]:
        return [s for s in self.documents[index] if len(s)]

    def from_document(self, index: int) -> Iterator[NspInstance]:
        rng = self.rng
        document = self.segments(index)
        target = self.max_num_tokens
        if rng.random() < self.short_seq_prob:
            target = rng.randint(2, self.max_num_tokens)
        chunk: list[Sequence[int]] = []
        length = 0
        i = 0
        while i < len(document):
            chunk.append(document[i])
            length += len(document[i])
            if i == len(document) - 1 or length >= target:
                a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                tokens_a = [t for segment in chunk[:a_end] for t in segment]
                # Google: a lone segment has no continuation, so its B must be random. When
                # splitting, a lone segment of >= 2 tokens is its own continuation.
                forced = len(chunk) == 1 and not (self.split_single and len(tokens_a) >= 2)
                if self.objective == "sop":
                    instance = self.order_pair(chunk, a_end, tokens_a)
                elif forced or rng.random() < self.nsp_prob:
                    tokens_b = self.random_span(index, target - len(tokens_a))
                    i -= len(chunk) - a_end  # put the unused segments back
                    instance = self.make(tokens_a, tokens_b, is_random_next=True)
                else:
                    tokens_a, tokens_b = self.continuation(chunk, a_end, tokens_a)
                    instance = self.make(tokens_a, tokens_b, is_random_next=False)
                if instance is not None:
                    yield instance
                chunk = []
                length = 0
            i += 1

    def random_span(self, index: int, target_b_length: int) -> list[int]:
        """Tokens from a random other document, from a random segment on, up to the target."""
        rng = self.rng
        other = index
        for _ in range(_RANDOM_DOCUMENT_TRIES):
            other = self.nonempty[rng.randint(0, len(self.nonempty) - 1)]
            if other != index:
                break
        segments = self.segments(other)
        tokens_b: list[int] = []
        for segment in segments[rng.randint(0, len(segments) - 1):]:
            tokens_b.extend(segment)
            if len(tokens_b) >= target_b_length:
                break
        return tokens_b

    def continuation(self, chunk: list[Sequence[int]], a_end: int,
                     tokens_a: list[int]) -> tuple[list[int], list[int]]:
        """(A, B) with B the true continuation: the rest of the chunk, or for a lone segment
        its second part, cut at a random token."""
        if len(chunk) >= 2:
            return tokens_a, [t for segment in chunk[a_end:] for t in segment]
        cut = self.rng.randint(1, len(tokens_a) - 1)
        return tokens_a[:cut], tokens_a[cut:]

    def order_pair(self, chunk: list[Sequence[int]], a_end: int,
                   tokens_a: list[int]) -> NspInstance | None:
        """SOP: true continuation, swapped with probability ``nsp_prob``."""
        if len(chunk) == 1 and len(tokens_a) < 2:
            return None  # a one-token chunk has no order to predict
        tokens_a, tokens_b = self.continuation(chunk, a_end, tokens_a)
        swapped = self.rng.random() < self.nsp_prob
        if swapped:
            tokens_a, tokens_b = tokens_b, tokens_a
        return self.make(tokens_a, tokens_b, is_random_next=swapped)

    def make(self, tokens_a: list[int], tokens_b: list[int], *,
             is_random_next: bool) -> NspInstance:
        truncate_seq_pair(tokens_a, tokens_b, self.max_num_tokens, self.rng)
        tokens = [self.cls_id, *tokens_a, self.sep_id, *tokens_b, self.sep_id]
        segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
        return NspInstance(tokens=tokens, segment_ids=segment_ids, is_random_next=is_random_next)


def truncate_seq_pair(tokens_a: list[int], tokens_b: list[int], max_num_tokens: int,
                      rng: random.Random) -> None:
    """Shorten the pair in place to at most ``max_num_tokens``: always the longer side (B on a
    tie), one token at a time, from the front or the back at random — so the model sees
    truncated text at both ends rather than only at the end."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


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


# --------------------------------------------------------------------------- packing


def pack_sequences(
    token_stream: Iterable[Sequence[int]],
    max_seq_length: int,
    doc_separator_id: int,
    *,
    cls_id: int | None = None,
    sep_id: int | None = None,
) -> Iterator[list[int]]:
    """RoBERTa's FULL-SENTENCES packing: documents end to end, cut into full-length sequences.

    Documents (flat token-id sequences) are joined with ``doc_separator_id`` between them, so a
    sequence may cross a document boundary and the model can see where it does. Every sequence
    has exactly ``max_seq_length`` tokens except the last, which holds what is left. With
    ``cls_id``/``sep_id`` each sequence is framed as ``[CLS] … [SEP]`` and the frame counts
    towards ``max_seq_length``. Streams: holds at most one document plus one sequence.
    """
    frame = (cls_id is not None) + (sep_id is not None)
    body = max_seq_length - frame
    if body < 1:
        raise ConfigError(f"max_seq_length={max_seq_length}: leaves no room for tokens")
    head = [] if cls_id is None else [cls_id]
    tail = [] if sep_id is None else [sep_id]
    buffer: list[int] = []
    first = True
    for document in token_stream:
        if not len(document):
            continue
        if not first:
            buffer.append(doc_separator_id)
        first = False
        buffer.extend(document)
        start = 0
        while len(buffer) - start >= body:
            yield [*head, *buffer[start : start + body], *tail]
            start += body
        del buffer[:start]
    if buffer:
        yield [*head, *buffer, *tail]
