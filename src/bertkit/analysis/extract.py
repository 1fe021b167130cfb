"""Frozen-model representations for probes: one vector per word or per sentence, per layer.

A probe needs, for every layer, a matrix with one row per item (word or sentence). Holding
every layer of every token of a corpus at once does not scale (Brown through BERT-base: 1.2M
words x 13 layers x 768 floats = 48 GB), so extraction streams: sentences go through the model
in the engine's length-sorted batches, each batch's hidden states are pooled at once and
written into one array per layer — an ``.npy`` memmap on disk when ``store`` is given (float16
by default, half the bytes; probes read one layer at a time as float32). Peak memory is one
batch's hidden states plus whatever the page cache keeps.

Words are pooled from their sub-tokens by ``"first"`` (the first sub-token, as BERT's NER
head reads a word) or ``"mean"`` (the average of all its sub-tokens); sentences by ``"cls"``
(the [CLS] vector, not the tanh pooler) or ``"mean"`` (every real token, [CLS] and [SEP]
included, as sentence-transformers does). A sentence longer than the model is skipped, not
truncated (its items are marked in ``kept``), so no item is read from a cut context.

Layers are numbered like ``hidden_states``: 0 is the embedding output, 1..L the encoder layers;
negative indices count from the end.

Shape legend: N items, B batch, T tokens, H hidden, W words of a batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from bertkit.errors import UsageError
from bertkit.inference.embeddings import pool, resolve_layers
from bertkit.inference.engine import Engine, TextBatch
from bertkit.training.progress import ProgressLine

WORD_POOLINGS = ("first", "mean")
SENTENCE_POOLINGS = ("cls", "mean")
STORE_DTYPES = ("float16", "float32")


@dataclass
class Representations:
    """Per-layer item vectors: ``arrays[i]`` is (N, H) for hidden-state position ``layers[i]``.

    ``kept[n]`` is False for an item the model never saw (its sentence was too long, or the
    word has no sub-token); its row is zeros and probes leave it out.
    """

    layers: list[int]
    arrays: list[np.ndarray]
    kept: np.ndarray            # (N,) bool
    skipped_sentences: int

    def layer(self, position: int) -> np.ndarray:
        """The (N, H) array of hidden-state position ``position`` (0 = embeddings)."""
        if position not in self.layers:
            raise UsageError(f"layer {position} was not extracted; extracted: {self.layers}")
        return self.arrays[self.layers.index(position)]


def num_layers(engine: Engine) -> int:
    """The number of encoder layers of the engine's model (hidden states are 0..that)."""
    return int(engine.model.config.num_hidden_layers)


def all_layers(engine: Engine, layers: int | Sequence[int] | None) -> list[int]:
    """``layers`` as hidden-state positions (every position 0..L when ``None``); an index out
    of range is an error naming the valid range."""
    count = num_layers(engine)
    return list(range(count + 1)) if layers is None else resolve_layers(layers, count)


def word_representations(engine: Engine, sentences: Sequence[Sequence[str]], *,
                         layers: int | Sequence[int] | None = None, pooling: str = "first",
                         store: str | Path | None = None, dtype: str = "float16",
                         progress: bool = False) -> Representations:
    """One vector per word of every sentence (rows in reading order, sentence after sentence)."""
    if pooling not in WORD_POOLINGS:
        raise UsageError(f"word pooling={pooling!r}; expected one of {list(WORD_POOLINGS)}")
    return _extract(engine, sentences, all_layers(engine, layers), "word", pooling, store,
                    dtype, progress)


def sentence_representations(engine: Engine, sentences: Sequence[Sequence[str]], *,
                             layers: int | Sequence[int] | None = None, pooling: str = "cls",
                             store: str | Path | None = None, dtype: str = "float16",
                             progress: bool = False) -> Representations:
    """One vector per sentence (given as its words; the model sees them as split)."""
    if pooling not in SENTENCE_POOLINGS:
        raise UsageError(f"sentence pooling={pooling!r}; expected one of "
                         f"{list(SENTENCE_POOLINGS)}")
    return _extract(engine, sentences, all_layers(engine, layers), "sentence", pooling, store,
                    dtype, progress)


# ---------------------------------------------------------------------------- internals


def _allocate(store: str | Path | None, layers: list[int], rows: int, width: int,
              dtype: str) -> list[np.ndarray]:
    if dtype not in STORE_DTYPES:
        raise UsageError(f"dtype={dtype!r}; expected one of {list(STORE_DTYPES)}")
    if store is None:
        return [np.zeros((rows, width), dtype=dtype) for _ in layers]
    folder = Path(store)
    folder.mkdir(parents=True, exist_ok=True)
    return [np.lib.format.open_memmap(folder / f"layer{p:02d}.npy", mode="w+", dtype=dtype,
                                      shape=(rows, width)) for p in layers]


def _word_index(batch: TextBatch, sentence_ids: list[int], first_row: list[int], pooling: str,
                width: int) -> tuple[Tensor, Tensor, Tensor, list[int]]:
    """Which flat token positions (b * T + t) feed which word slot of this batch.

    Returns (token positions, their word slot, tokens per slot, the slots' global rows).
    """
    tokens, slots, rows = [], [], []
    for b, row in enumerate(batch.rows):
        seen: dict[int, int] = {}
        for t, word in enumerate(row["word_ids"]):
            if word is None or (pooling == "first" and word in seen):
                continue
            if word not in seen:
                seen[word] = len(rows)
                rows.append(first_row[sentence_ids[b]] + word)
            tokens.append(b * width + t)
            slots.append(seen[word])
    slot = torch.tensor(slots, dtype=torch.long)
    counts = torch.bincount(slot, minlength=len(rows)).clamp(min=1)
    return torch.tensor(tokens, dtype=torch.long), slot, counts, rows


def _extract(engine: Engine, sentences: Sequence[Sequence[str]], positions: list[int],
             unit: str, pooling: str, store: str | Path | None, dtype: str,
             progress: bool) -> Representations:
    word_lists = [list(words) for words in sentences]
    lengths = [len(words) for words in word_lists]
    first_row = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist() \
        if word_lists else []
    total = sum(lengths) if unit == "word" else len(word_lists)
    width = int(engine.model.config.hidden_size)
    arrays = _allocate(store, positions, total, width, dtype)
    kept = np.zeros(total, dtype=bool)
    usable = [i for i, words in enumerate(word_lists) if words]
    rows = []
    if usable:
        encoded = engine.tokenizer([word_lists[i] for i in usable], is_split_into_words=True,
                                   return_word_ids=True)
        rows = [{"input_ids": encoded["input_ids"][k], "word_ids": encoded["word_ids"][k]}
                for k in range(len(usable))]
    fits = [k for k, row in enumerate(rows) if len(row["input_ids"]) <= engine.max_length]
    skipped = len(word_lists) - len(fits)
    sentence_of = [usable[k] for k in fits]     # engine row → caller's sentence index
    encoder = engine.model.bert
    line = ProgressLine(-(-len(fits) // engine.batch_size), enabled=progress)
    start, done = time.perf_counter(), 0
    was_training = engine.model.training
    engine.model.eval()
    try:
        with engine.run_context():
            for step, batch in enumerate(engine.batches([rows[k] for k in fits]), start=1):
                out = encoder(batch.input_ids, batch.attention_mask, output_hidden_states=True)
                hidden = [out.hidden_states[p].float() for p in positions]    # L × (B, T, H)
                ids = [sentence_of[i] for i in batch.indices]
                if unit == "word":
                    _write_words(batch, ids, hidden, arrays, kept, first_row, pooling)
                else:
                    for array, h in zip(arrays, hidden, strict=True):
                        array[ids] = pool(h, batch.attention_mask, pooling).cpu().numpy()
                    kept[ids] = True
                done += len(ids)
                line.update(step, {}, throughput=done / max(time.perf_counter() - start, 1e-9),
                            unit="sentences")
    finally:
        engine.model.train(was_training)
        line.close()
    for array in arrays:
        if isinstance(array, np.memmap):
            array.flush()
    return Representations(positions, arrays, kept, skipped)


def _write_words(batch: TextBatch, sentence_ids: list[int], hidden: list[Tensor],
                 arrays: list[np.ndarray], kept: np.ndarray, first_row: list[int],
                 pooling: str) -> None:
    """Pool each word's sub-tokens in every layer and write the rows (``sentence_ids``: the
    caller's index of each batch row's sentence)."""
    width = batch.input_ids.shape[1]
    tokens, slot, counts, rows = _word_index(batch, sentence_ids, first_row, pooling, width)
    if not rows:
        return
    device = hidden[0].device
    tokens, slot, counts = tokens.to(device), slot.to(device), counts.to(device)
    for array, h in zip(arrays, hidden, strict=True):
        flat = h.reshape(-1, h.shape[-1])[tokens]                            # (tokens, H)
        summed = torch.zeros(len(rows), h.shape[-1], device=device).index_add_(0, slot, flat)
        array[rows] = (summed / counts[:, None]).cpu().numpy()               # (W, H)
    kept[rows] = True
