"""Embedding files: reading the texts to embed (one a line, from a file or stdin) and writing
or reading vectors as ``.npy``, ``.jsonl`` or ``.safetensors``, chosen by the suffix. Kept
apart from the computation so the file formats can change without touching the model side."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_safetensors
from safetensors.numpy import save_file as save_safetensors
from torch import Tensor

from bertkit._fileio import atomic_path, atomic_write
from bertkit.errors import DataFormatError, UsageError
from bertkit.inference.embeddings import TokenVectors

FORMATS = (".npy", ".jsonl", ".safetensors")


@dataclass
class TextFile:
    """Texts read one per line; ``lines`` holds each text's 1-based line number."""

    texts: list[str]
    lines: list[int]
    source: str
    skipped_blank: int


def read_texts(path: str | Path) -> TextFile:
    """One text per line from a UTF-8 file, or from stdin for ``"-"``.

    Blank lines are skipped (and counted); the line number of every text is kept so output
    rows can be traced back. A file without any text is an error naming it.
    """
    name = str(path)
    if name == "-":
        raw = sys.stdin.read()
        name = "<stdin>"
    else:
        file = Path(path)
        if not file.is_file():
            what = "is a directory" if file.is_dir() else "does not exist"
            raise DataFormatError(f"input file {what}; expected a UTF-8 text file with one "
                                  "text per line", file)
        try:
            raw = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise DataFormatError(f"not UTF-8 text ({err.reason} at byte {err.start})",
                                  file) from None
    texts: list[str] = []
    lines: list[int] = []
    skipped = 0
    for number, line in enumerate(io.StringIO(raw, newline=None), 1):
        text = line.rstrip("\n")
        if not text.strip():
            skipped += 1
            continue
        texts.append(text)
        lines.append(number)
    if not texts:
        what = "is empty" if not raw else "holds only blank lines"
        raise DataFormatError(f"no texts to embed: the input {what}; expected one text per "
                              "line", name)
    return TextFile(texts, lines, name, skipped)


def output_format(path: str | Path) -> str:
    """The output format named by the file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"--output {path}: unknown format {suffix or '(no extension)'!r}; "
                         f"expected one of {', '.join(FORMATS)}")
    return suffix


def _floats(values: np.ndarray) -> str:
    """A JSON array of float32 values, each written with 9 significant digits (exact for
    float32, shorter than the float64 repr)."""
    return "[" + ",".join(format(v, ".9g") for v in values.ravel().tolist()) + "]"


def _nested(values: np.ndarray) -> str:
    if values.ndim == 1:
        return _floats(values)
    return "[" + ",".join(_nested(row) for row in values) + "]"


def save_sentence_embeddings(path: str | Path, vectors: Tensor, *,
                             texts: Sequence[str] | None = None,
                             lines: Sequence[int] | None = None,
                             metadata: dict[str, Any] | None = None) -> None:
    """Write (N, H) or (N, L, H) vectors as ``.npy``, ``.jsonl`` or ``.safetensors``, atomically.

    ``.npy`` holds the array only; ``.jsonl`` one record per text (``line``, ``text``,
    ``embedding``); ``.safetensors`` the array as ``embeddings`` plus ``lines`` and the
    metadata (pooling, layers, model) as strings.
    """
    kind = output_format(path)
    array = vectors.detach().float().cpu().numpy()
    count = array.shape[0]
    line_numbers = list(lines) if lines is not None else list(range(1, count + 1))
    if kind == ".npy":
        atomic_write(path, lambda handle: np.save(handle, array), binary=True)
    elif kind == ".jsonl":
        def write(handle: Any) -> None:
            for index in range(count):
                head = {"line": line_numbers[index]}
                if texts is not None:
                    head["text"] = texts[index]
                prefix = json.dumps(head, ensure_ascii=False)[:-1]
                handle.write(f'{prefix}, "embedding": {_nested(array[index])}}}\n')
        atomic_write(path, write)
    else:
        _save_safetensors(path, {"embeddings": array,
                                 "lines": np.asarray(line_numbers, dtype=np.int64)}, metadata)


def save_token_embeddings(path: str | Path, items: Sequence[TokenVectors], *,
                          texts: Sequence[str] | None = None,
                          lines: Sequence[int] | None = None,
                          metadata: dict[str, Any] | None = None) -> None:
    """Write per-token vectors as ``.jsonl`` (the ``extract_features`` layout: per text a list
    of ``{"token", "layers": [{"index", "values"}]}``) or ``.safetensors`` (all tokens
    concatenated: ``vectors`` (ΣT, L, H), ``token_ids`` (ΣT,), ``offsets`` (N + 1,) row starts,
    ``lines`` (N,)). ``.npy`` cannot hold texts of different lengths and is refused."""
    kind = output_format(path)
    line_numbers = list(lines) if lines is not None else list(range(1, len(items) + 1))
    if kind == ".npy":
        raise UsageError(f"--output {path}: per-token vectors differ in length per text and "
                         "do not fit one .npy array; write .jsonl or .safetensors, or pool them "
                         "(--pooling mean|cls|max)")
    if kind == ".jsonl":
        def write(handle: Any) -> None:
            for index, item in enumerate(items):
                head = {"line": line_numbers[index]}
                if texts is not None:
                    head["text"] = texts[index]
                features = []
                array = item.vectors.numpy()                                 # (T, L, H)
                for t, token in enumerate(item.tokens):
                    layers = ",".join(
                        f'{{"index": {layer}, "values": {_floats(array[t, j])}}}'
                        for j, layer in enumerate(item.layers))
                    features.append(f'{{"token": {json.dumps(token, ensure_ascii=False)}, '
                                    f'"layers": [{layers}]}}')
                prefix = json.dumps(head, ensure_ascii=False)[:-1]
                handle.write(f'{prefix}, "features": [{",".join(features)}]}}\n')
        atomic_write(path, write)
        return
    lengths = [len(item.tokens) for item in items]
    width = items[0].vectors.shape[1:] if items else (0, 0)
    _save_safetensors(path, {
        "vectors": (np.concatenate([item.vectors.numpy() for item in items])
                    if items else np.zeros((0, *width), dtype=np.float32)),
        "token_ids": np.asarray([i for item in items for i in item.token_ids], dtype=np.int64),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "lines": np.asarray(line_numbers, dtype=np.int64),
    }, metadata)


def _save_safetensors(path: str | Path, tensors: dict[str, np.ndarray],
                      metadata: dict[str, Any] | None) -> None:
    meta = {key: value if isinstance(value, str) else json.dumps(value)
            for key, value in (metadata or {}).items()}
    with atomic_path(path) as tmp:
        try:
            save_safetensors({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                             str(tmp), metadata=meta)
        except (OSError, SafetensorError) as err:
            raise DataFormatError(f"could not write safetensors ({err})", path) from None


def load_embeddings(path: str | Path) -> dict[str, Any]:
    """Read back what the save functions wrote: ``.npy`` → ``{"embeddings"}``; ``.jsonl`` →
    one dict per line under ``"records"``; ``.safetensors`` → its arrays by name."""
    kind = output_format(path)
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("file not found", path)
    if kind == ".npy":
        return {"embeddings": np.load(path, allow_pickle=False)}
    if kind == ".jsonl":
        records = []
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise DataFormatError(f"invalid JSON: {err.msg}", path, number) from None
        return {"records": records}
    try:
        return dict(load_safetensors(str(path)))
    except (SafetensorError, OSError) as err:
        raise DataFormatError(f"not a readable safetensors file ({err})", path) from None
