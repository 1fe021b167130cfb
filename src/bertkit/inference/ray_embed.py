"""Embedding a corpus larger than one machine with Ray Data (optional extra ``ray``): the
distributed engine does the scheduling, retries and I/O; bertkit supplies the model.

:func:`embed_dataset` maps a bertkit model over a ``ray.data.Dataset`` with an actor pool —
each actor loads the model ONCE and embeds blocks of ``block_rows`` texts; inside a block the
texts are sorted by length before batching (:func:`~bertkit.inference.embeddings.
sentence_embeddings` does), so padding stays small. The vectors are exactly single-process
``bertkit embed``'s: the same engine and pooling run in every actor. :func:`embed_file_ray`
reads a text file (one text a line, blank lines dropped) and writes Parquet files with the
columns ``text`` and ``embedding``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bertkit.errors import DataFormatError, UsageError

__all__ = ["embed_dataset", "embed_file_ray"]


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise UsageError("--engine ray needs Ray Data: pip install 'bertkit[ray]'") from None
    return ray


class _Embedder:
    """One actor: a model loaded once, called on blocks of texts."""

    def __init__(self, model_dir: str, column: str, pooling: str, normalize: bool,
                 batch_size: int, device: str):
        from bertkit.inference.engine import Engine

        self.engine = Engine.from_pretrained(model_dir, device=device, batch_size=batch_size)
        self.column, self.pooling, self.normalize = column, pooling, normalize

    def __call__(self, block: dict[str, np.ndarray]) -> dict[str, Any]:
        from bertkit.inference.embeddings import sentence_embeddings

        texts = [str(t) for t in block[self.column]]
        vectors = sentence_embeddings(self.engine, None, texts, pooling=self.pooling,
                                      normalize=self.normalize).numpy()
        return {**block, "embedding": list(vectors)}


def embed_dataset(dataset: Any, model_dir: str | Path, *, column: str = "text",
                  pooling: str = "mean", normalize: bool = False, batch_size: int = 32,
                  block_rows: int = 1024, workers: int = 1, device: str = "cpu") -> Any:
    """``dataset`` with an ``embedding`` column (float32 vectors), lazily: Ray runs it when
    the result is written or consumed. ``workers`` actors, each with its own model."""
    _ray()
    if workers < 1 or block_rows < 1:
        raise UsageError(f"workers={workers}, block_rows={block_rows}; expected >= 1")
    return dataset.map_batches(
        _Embedder, fn_constructor_args=(str(model_dir), column, pooling, normalize,
                                        batch_size, device),
        batch_size=block_rows, batch_format="numpy", concurrency=workers)


def embed_file_ray(path: str | Path, out: str | Path, model_dir: str | Path, *,
                   pooling: str = "mean", normalize: bool = False, batch_size: int = 32,
                   workers: int = 1, device: str = "cpu") -> int:
    """Embed a text file into Parquet files under ``out``; returns the number of texts. Starts
    a local Ray instance unless one is already running (``ray.init()``)."""
    ray = _ray()
    source = Path(path)
    if not source.is_file():
        raise DataFormatError("input file does not exist; expected one text per line", source)
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    texts = ray.data.read_text(str(source)).filter(lambda row: bool(row["text"].strip()))
    embedded = embed_dataset(texts, model_dir, pooling=pooling, normalize=normalize,
                             batch_size=batch_size, workers=workers, device=device)
    embedded.write_parquet(str(out))
    return sum(_parquet_rows(f) for f in Path(out).glob("*.parquet"))


def _parquet_rows(path: Path) -> int:
    """Rows of one Parquet file (from its footer, without reading the data)."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)
