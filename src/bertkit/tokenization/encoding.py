"""What a tokenizer call returns: a dict of model inputs with attribute access.

Keys follow the names every BERT user knows (and models accept as keyword arguments):
``input_ids``, ``token_type_ids``, ``attention_mask`` and, on request, ``offset_mapping``,
``special_tokens_mask`` and ``word_ids``. Values are lists (one list per text, or a flat list for a
single text) or, with ``return_tensors``, ``(B, T)`` arrays (``(B, T, 2)`` for offsets).

Building these from the ``tokenizers`` encodings is the only Python work on the hot path, so it
is one list comprehension per requested key — no per-token loops.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Encoding as BackendEncoding

from bertkit.errors import TokenizerError

TENSOR_KINDS = (None, "pt", "np")


class Encoding(dict):
    """Model inputs by name; ``enc.input_ids`` and ``enc["input_ids"]`` are the same thing.

    A plain ``dict`` underneath so that ``model(**enc)`` and ``json.dumps`` just work.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"Encoding has no {name!r}; it holds {sorted(self)} "
                "(offsets, special-token masks and word ids only when requested)"
            ) from None

    def to(self, device: Any) -> Encoding:
        """Move every tensor value to ``device`` (returns ``self``, like ``BatchEncoding.to``)."""
        for key, value in self.items():
            if hasattr(value, "to"):
                self[key] = value.to(device)
        return self


@dataclass(frozen=True)
class TensorPadding:
    """How tensors are padded: to ``length`` (``None``: the longest row), rounded up to a
    multiple of ``multiple``, with ``pad_id``. Padding is always on the right."""

    length: int | None
    multiple: int | None
    pad_id: int


def assemble(
    encodings: Sequence[BackendEncoding],
    *,
    single: bool,
    pairs: bool,
    padded: bool,
    return_tensors: str | None,
    tensor_padding: TensorPadding | None = None,
    offsets: bool,
    special_tokens_mask: bool,
    word_ids: bool,
) -> Encoding:
    """Collect the requested fields from backend encodings into an :class:`Encoding`.

    Each ``Encoding`` property is a copy out of Rust, the dominant Python cost here, so fields
    whose values are known without asking are built directly: token type ids are all 0 without
    pairs (padding gets type 0 too), and the attention mask is all 1 without padding
    (``padded`` says whether the backend padded). ``single`` unwraps the batch dimension for
    list output (a single text gives flat lists, as in transformers); tensors always keep it.

    For tensors the backend does *not* pad: the unpadded rows are packed into a padded array in
    one vectorised step (``tensor_padding``), which is cheaper than copying padded lists.
    """
    ids = [e.ids for e in encodings]
    out = Encoding(input_ids=ids)
    if return_tensors is None:
        out["token_type_ids"] = ([e.type_ids for e in encodings] if pairs
                                 else [[0] * len(x) for x in ids])
        out["attention_mask"] = ([e.attention_mask for e in encodings] if padded
                                 else [[1] * len(x) for x in ids])
    elif pairs:
        out["token_type_ids"] = [e.type_ids for e in encodings]
    if offsets:
        out["offset_mapping"] = [e.offsets for e in encodings]
    if special_tokens_mask:
        out["special_tokens_mask"] = [e.special_tokens_mask for e in encodings]
    if word_ids:
        out["word_ids"] = [e.word_ids for e in encodings]
    if return_tensors is not None:
        return _to_tensors(out, return_tensors, tensor_padding)
    if single:
        for key in out:
            out[key] = out[key][0]
    return out


# Value at padded positions, per field (what tokenizers' own padding writes).
_PAD_VALUES = {"token_type_ids": 0, "offset_mapping": 0, "special_tokens_mask": 1,
               "word_ids": -1}
_ORDER = ("input_ids", "token_type_ids", "attention_mask", "offset_mapping",
          "special_tokens_mask", "word_ids")


def _to_tensors(out: Encoding, kind: str, padding: TensorPadding | None) -> Encoding:
    """Pack ragged rows into ``(B, T)`` int64 arrays (``(B, T, 2)`` for offsets).

    Without padding every row must already have the same length. Word ids have no number for
    special and padding positions (``None`` in lists); tensors use -1.
    """
    rows = out["input_ids"]
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    longest = int(lengths.max()) if len(rows) else 0
    if padding is None:
        if len(rows) and int(lengths.min()) != longest:
            raise TokenizerError(
                f"cannot make {kind!r} tensors from sequences of different lengths "
                f"({int(lengths.min())}..{longest} tokens); pass padding=True or "
                "padding='max_length'"
            )
        width = longest
    else:
        width = longest if padding.length is None else padding.length
        if padding.multiple:
            width = -(-width // padding.multiple) * padding.multiple
        if longest > width:
            raise TokenizerError(
                f"cannot pad to max_length={width}: the longest sequence has {longest} tokens; "
                "pass truncation=True or a larger max_length"
            )
    filled = np.arange(width)[None, :] < lengths[:, None]  # (B, T) True at real tokens
    pad_id = 0 if padding is None else padding.pad_id
    arrays: dict[str, np.ndarray] = {
        "input_ids": _pack(rows, filled, pad_id),
        "attention_mask": filled.astype(np.int64),
    }
    for key in ("token_type_ids", "offset_mapping", "special_tokens_mask", "word_ids"):
        if key in out:
            values = out[key]
            if key == "word_ids":
                values = [[-1 if w is None else w for w in row] for row in values]
            arrays[key] = _pack(values, filled, _PAD_VALUES[key])
    if "token_type_ids" not in arrays:  # single sequences: all segment 0
        arrays["token_type_ids"] = np.zeros_like(arrays["input_ids"])
    arrays = {key: arrays[key] for key in _ORDER if key in arrays}
    if kind == "pt":
        import torch  # only here: tokenization must not require torch to produce lists

        return Encoding({key: torch.from_numpy(a) for key, a in arrays.items()})
    return Encoding(arrays)


def _pack(rows: list[Any], filled: np.ndarray, fill: int) -> np.ndarray:
    """Scatter ragged rows (of ints, or of (start, end) pairs) into a padded array."""
    total = int(filled.sum())
    flat = list(itertools.chain.from_iterable(rows))
    if flat and isinstance(flat[0], tuple):  # offsets
        packed = np.full((*filled.shape, 2), fill, dtype=np.int64)
        packed[filled] = np.array(flat, dtype=np.int64).reshape(total, 2)
    else:
        packed = np.full(filled.shape, fill, dtype=np.int64)
        packed[filled] = np.fromiter(flat, dtype=np.int64, count=total)
    return packed
