"""Embedding a text file larger than memory: read it in shards of ``shard_size`` lines, embed
each, write it as its own ``OUT/shard-NNNNNN.safetensors`` (vectors + source line numbers),
atomically; memory holds one shard's texts and vectors at a time, whatever the file's length.
Measured over 1 M lines (``benchmarks/embed_stream.py``), the process's peak RSS still grew
with the line count (492 MiB at 100 k lines, 990 MiB at 1 M): the model calls keep memory
(a plain ``BertModel`` too, less) that this module does not bound yet.

* **Resumable**: a shard file exists only once complete (atomic write), so a rerun after a
  crash or Ctrl-C skips the shards on disk and embeds the rest.
* **Rank sharding**: under ``torchrun`` (``RANK``/``WORLD_SIZE``) or with ``rank``/
  ``world_size`` given, process ``r`` embeds shards ``r, r + W, r + 2W …`` into the same
  folder; no coordination beyond the file names is needed.

Shard ``k`` always holds the non-blank lines ``k·shard_size … (k+1)·shard_size - 1`` (counted
over non-blank lines), so every rank and every rerun agree on what a shard is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bertkit.errors import DataFormatError, UsageError
from bertkit.inference.embedding_files import load_embeddings, save_sentence_embeddings
from bertkit.inference.embeddings import sentence_embeddings
from bertkit.inference.engine import Engine

__all__ = ["StreamReport", "embed_stream", "iter_shards", "read_shards", "shard_path"]


@dataclass
class StreamReport:
    """What one process did: shards written now, shards found done, texts embedded now."""

    written: int
    skipped: int
    texts: int
    rank: int
    world_size: int


def shard_path(out: Path, index: int) -> Path:
    return out / f"shard-{index:06d}.safetensors"


def iter_shards(path: str | Path, shard_size: int
                ) -> Iterator[tuple[int, list[str], list[int]]]:
    """``(shard index, texts, line numbers)`` of a UTF-8 file, streamed: blank lines skipped,
    a line that is not UTF-8 named."""
    file = Path(path)
    if not file.is_file():
        raise DataFormatError("input file does not exist; expected a UTF-8 text file with one "
                              "text per line", file)
    texts: list[str] = []
    lines: list[int] = []
    index = 0
    with file.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise DataFormatError(f"not UTF-8 text ({err.reason} at byte {err.start} of "
                                      "the line)", file, number) from None
            if not text.strip():
                continue
            texts.append(text)
            lines.append(number)
            if len(texts) == shard_size:
                yield index, texts, lines
                index, texts, lines = index + 1, [], []
    if texts:
        yield index, texts, lines
    elif index == 0:
        raise DataFormatError("no texts to embed: the input is empty or blank; expected one "
                              "text per line", file)


def _rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    rank = int(os.environ.get("RANK", 0)) if rank is None else rank
    world = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    if world < 1 or not 0 <= rank < world:
        raise UsageError(f"rank {rank} of world size {world}; expected 0 <= rank < world size")
    return rank, world


def embed_stream(engine: Engine, path: str | Path, out: str | Path, *, shard_size: int = 10_000,
                 pooling: str = "mean", layers: int | Sequence[int] = -1,
                 normalize: bool = False, rank: int | None = None,
                 world_size: int | None = None, metadata: dict | None = None) -> StreamReport:
    """Embed ``path`` shard by shard into the folder ``out`` (see the module docstring)."""
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise UsageError(f"shard_size={shard_size!r}; expected an integer >= 1")
    rank, world = _rank(rank, world_size)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {out}: a sharded embedding writes a folder; {out} is a file")
    out.mkdir(parents=True, exist_ok=True)
    written = skipped = count = 0
    for index, texts, lines in iter_shards(path, shard_size):
        if index % world != rank:
            continue
        target = shard_path(out, index)
        if target.exists():
            skipped += 1
            continue
        vectors = sentence_embeddings(engine, None, texts, pooling=pooling, layers=layers,
                                      normalize=normalize)
        save_sentence_embeddings(target, vectors, texts=texts, lines=lines,
                                 metadata={**(metadata or {}), "shard": index,
                                           "shard_size": shard_size})
        written += 1
        count += len(texts)
    return StreamReport(written, skipped, count, rank, world)


def read_shards(out: str | Path) -> dict[str, list]:
    """Every shard of ``out`` in order: ``{"embeddings": [arrays], "lines": [arrays]}`` (for
    checks and small outputs; a big one is read shard by shard)."""
    shards = sorted(Path(out).glob("shard-*.safetensors"))
    if not shards:
        raise DataFormatError("no shard-*.safetensors files", out)
    loaded = [load_embeddings(s) for s in shards]
    return {"embeddings": [d["embeddings"] for d in loaded],
            "lines": [d["lines"] for d in loaded]}
