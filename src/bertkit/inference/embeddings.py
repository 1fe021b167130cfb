"""Embeddings: per-token vectors from chosen layers, pooled sentence vectors, semantic search.

This is the original BERT ``extract_features`` job (token vectors of layers -1..-4) and the
sentence-embedding job (one vector per text, e.g. all-MiniLM-L6-v2's mean pooling), on the
length-sorted batches of :class:`~bertkit.inference.engine.Engine`.

Layers are numbered like ``hidden_states``: 0 is the embedding output, 1..L the encoder layers,
negative indices count from the end (-1 = last layer). Pooling is always mask-aware: padding
never enters a mean or a max, so a text's vector does not depend on what it was batched with.

Shape legend: N texts, B batch, T tokens, L requested layers, H hidden, Q queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bertkit.data.windows import WindowSet, make_windows
from bertkit.errors import UsageError
from bertkit.inference.engine import Engine, TextBatch, as_engine
from bertkit.tokenization import Tokenizer

POOLINGS = ("mean", "cls", "max")


# ---------------------------------------------------------------------------- pooling


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Average of the real tokens' vectors (padding excluded): (B, T, H) → (B, H).

    [CLS] and [SEP] count as real tokens, as in sentence-transformers' mean pooling. Padded
    positions are zeroed, not multiplied by 0, so even an inf or NaN there cannot leak in.
    """
    keep = attention_mask.bool().unsqueeze(-1)                                # (B, T, 1)
    count = keep.sum(dim=1).clamp(min=1).to(hidden.dtype)                    # (B, 1)
    return hidden.masked_fill(~keep, 0.0).sum(dim=1) / count


def max_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Element-wise maximum over the real tokens: (B, T, H) → (B, H).

    Padded positions are set to -inf first: their values (zeros on the unpadded fast path,
    pad-token activations otherwise) could exceed every real token's in a dimension.
    """
    keep = attention_mask.bool().unsqueeze(-1)                                # (B, T, 1)
    return hidden.masked_fill(~keep, float("-inf")).amax(dim=1)


def cls_pool(hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """The [CLS] token's vector, position 0: (B, T, H) → (B, H) (not the tanh pooler)."""
    return hidden[:, 0]


def pool(hidden: Tensor, attention_mask: Tensor, method: str) -> Tensor:
    """(B, T, H) → (B, H) by ``"mean"``, ``"cls"`` or ``"max"``."""
    if method == "mean":
        return mean_pool(hidden, attention_mask)
    if method == "max":
        return max_pool(hidden, attention_mask)
    if method == "cls":
        return cls_pool(hidden)
    raise UsageError(f"pooling={method!r}; expected one of {list(POOLINGS)}")


def resolve_layers(layers: int | Sequence[int], num_layers: int) -> list[int]:
    """Layer indices → positions in ``hidden_states`` (0 = embeddings, L = last layer).

    An index outside -(L+1)..L is an error that lists the valid range.
    """
    if isinstance(layers, int):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise UsageError("no layers requested; expected e.g. -1 (last) or -1,-2,-3,-4")
    resolved = []
    for index in layers:
        if not isinstance(index, int) or isinstance(index, bool):
            raise UsageError(f"layer {index!r}; expected an int")
        if not -(num_layers + 1) <= index <= num_layers:
            raise UsageError(
                f"layer {index} is out of range for a model with {num_layers} layers: use "
                f"0..{num_layers} (0 = embedding output, {num_layers} = last layer) or "
                f"-1..-{num_layers + 1} (-1 = last layer)")
        resolved.append(index % (num_layers + 1))
    return resolved


def parse_layers(text: str) -> list[int]:
    """``"-1,-2,-3,-4"`` → ``[-1, -2, -3, -4]`` (for the command line)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--layers {text!r}; expected comma-separated integers such as "
                         "-1,-2,-3,-4") from None
    if not values:
        raise UsageError(f"--layers {text!r}; expected at least one layer index")
    return values


def _encoder(model: nn.Module) -> nn.Module:
    """The bare encoder inside any bertkit model class (``BertModel`` or a task model)."""
    encoder = getattr(model, "bert", None)
    if encoder is None:
        raise UsageError(f"expected a bertkit model (with a .bert encoder), got "
                         f"{type(model).__name__}")
    return encoder


def _hidden_states(encoder: nn.Module, batch: TextBatch, positions: list[int]) -> list[Tensor]:
    """The requested hidden states of a batch, each (B, T, H); all layers only when needed."""
    last = len(encoder.layers)
    everything = any(p != last for p in positions)
    out = encoder(batch.input_ids, batch.attention_mask, output_hidden_states=everything)
    if not everything:
        return [out.last_hidden_state for _ in positions]
    return [out.hidden_states[p] for p in positions]


# ---------------------------------------------------------------------------- long texts


@dataclass
class _Layout:
    """What the model runs: every text that fits, whole, then the windows of those that do not.

    ``units`` are model inputs (dicts with ``input_ids``); units ``0..len(whole)-1`` are the
    texts ``whole`` (in order), the rest are the windows of ``windows`` (text ``long[e]`` is
    example ``e`` of the window set).
    """

    rows: list[dict[str, Any]]          # every text's full tokenization
    units: list[dict[str, Any]]
    whole: list[int]
    long: list[int]
    windows: WindowSet | None


def _layout(engine: Engine, texts: Sequence[str] | str) -> _Layout:
    """Tokenize once; texts longer than the model are cut into sliding windows (never
    truncated, unless the engine was built with ``truncate=True``)."""
    text_list = [texts] if isinstance(texts, str) else list(texts)
    rows = engine.encode(text_list, check=False)
    long = [i for i, row in enumerate(rows) if len(row["input_ids"]) > engine.max_length]
    taken = set(long)
    whole = [i for i in range(len(rows)) if i not in taken]
    units = [rows[i] for i in whole]
    windows = None
    if long:
        windows = make_windows(engine.tokenizer, [text_list[i] for i in long],
                               max_length=engine.max_length,
                               example_names=[f"text {i}" for i in long])
        units += [{"input_ids": window.input_ids} for window in windows.windows]
    return _Layout(rows, units, whole, long, windows)


def _stitch(layout: _Layout, example: int, states: Sequence[Tensor]) -> Tensor:
    """One long text's per-token states, each token taken once from its max-context window:
    the special tokens before the text from its first window, after it from its last.

    ``states[w]`` is window ``w``'s (T_w, …) tensor; returns (T_text, …) aligned with the text's
    full tokenization ([CLS] tokens… [SEP]).
    """
    windows = layout.windows
    assert windows is not None
    spans = windows.example_windows[example]
    first, last = windows.windows[spans[0]], windows.windows[spans[-1]]
    best = windows.best_window[example]
    tokens = [states[int(w)][windows.windows[int(w)].position_of(t)]
              for t, w in enumerate(best)]
    after = last.content_start + len(last.span)
    return torch.cat([states[spans[0]][:first.content_start], torch.stack(tokens),
                      states[spans[-1]][after:]])


def _token_states(engine: Engine, layout: _Layout, positions: list[int],
                  pooling: str | None) -> list[Tensor]:
    """Run every unit; return per text either its pooled (L, H) vector (``pooling`` given) or
    its (T, L, H) token states, float32 on the CPU, long texts stitched from their windows."""
    encoder = _encoder(engine.model)
    whole = len(layout.whole)

    def step(batch: TextBatch) -> list[Tensor]:
        hidden = _hidden_states(encoder, batch, positions)                   # L × (B, T, H)
        pooled = None
        if pooling is not None:
            pooled = torch.stack([pool(h.float(), batch.attention_mask, pooling)
                                  for h in hidden], dim=1).cpu()              # (B, L, H)
        # Token states are kept for the units that need them: all (no pooling) or windows.
        keep = [pooling is None or unit >= whole for unit in batch.indices]
        states = None
        if any(keep):
            states = torch.stack([h.float() for h in hidden], dim=2).cpu()    # (B, T, L, H)
        out = []
        for r, length in enumerate(batch.lengths):
            out.append(states[r, :length] if keep[r] else pooled[r])  # type: ignore[index]
        return out

    results = engine.map(layout.units, step)
    per_text: list[Tensor] = [torch.empty(0)] * len(layout.rows)
    for unit, text in enumerate(layout.whole):
        per_text[text] = results[unit]
    window_states = results[whole:]
    for example, text in enumerate(layout.long):
        tokens = _stitch(layout, example, window_states)                       # (T, L, H)
        if pooling is not None:
            mask = torch.ones(1, tokens.shape[0], dtype=torch.long)
            tokens = pool(tokens.flatten(1)[None], mask, pooling).view(len(positions), -1)
        per_text[text] = tokens
    return per_text


# ---------------------------------------------------------------------------- embedding


def sentence_embeddings(model: nn.Module | Engine, tokenizer: Tokenizer | None,
                        texts: str | Sequence[str], *, pooling: str = "mean",
                        layers: int | Sequence[int] = -1, normalize: bool = False,
                        batch_size: int | None = None, truncate: bool | None = None) -> Tensor:
    """One vector per text: (N, H) float32 on the CPU, or (N, L, H) when several layers are
    requested (in the order given).

    ``pooling`` is ``"mean"`` (sentence-transformers' default), ``"cls"`` or ``"max"``, always
    over real tokens only; ``normalize`` L2-normalises each vector (so dot = cosine). Texts are
    batched by length; rows come back in the order of ``texts``. Vectors are computed in the
    model's dtype and pooled in float32.

    A text longer than the model is cut into overlapping windows (half a window apart,
    :func:`bertkit.data.windows.make_windows`); each token's vector comes from the window where
    it has the most context, and the text is pooled over those — every token counted once, as
    if the model had seen the text whole. ``"cls"`` then reads the first window's [CLS].
    ``truncate=True`` cuts such texts to the model's length instead.
    """
    if pooling not in POOLINGS:
        raise UsageError(f"pooling={pooling!r}; expected one of {list(POOLINGS)}")
    engine = as_engine(model, tokenizer, batch_size=batch_size, truncate=truncate)
    positions = resolve_layers(layers, len(_encoder(engine.model).layers))
    layout = _layout(engine, texts)
    width = engine.model.config.hidden_size
    if not layout.rows:
        return torch.zeros((0, width) if len(positions) == 1 else (0, len(positions), width))
    vectors = torch.stack(_token_states(engine, layout, positions, pooling))  # (N, L, H)
    if normalize:
        vectors = F.normalize(vectors, dim=-1)
    return vectors[:, 0] if len(positions) == 1 else vectors


@dataclass
class TokenVectors:
    """One text's per-token vectors, special tokens included (as ``extract_features`` did)."""

    tokens: list[str]
    token_ids: list[int]
    vectors: Tensor          # (T, L, H) float32, layers in the order requested
    layers: list[int]        # the requested indices, as given


def token_embeddings(model: nn.Module | Engine, tokenizer: Tokenizer | None,
                     texts: str | Sequence[str], *, layers: int | Sequence[int] = -1,
                     batch_size: int | None = None, truncate: bool | None = None
                     ) -> list[TokenVectors]:
    """Per-token vectors of the chosen layers for every text, in the order of ``texts``.

    A text longer than the model gets each token's vector from its max-context window (see
    :func:`sentence_embeddings`), so its rows align with its full tokenization.
    """
    engine = as_engine(model, tokenizer, batch_size=batch_size, truncate=truncate)
    requested = [layers] if isinstance(layers, int) else list(layers)
    positions = resolve_layers(requested, len(_encoder(engine.model).layers))
    layout = _layout(engine, texts)
    states = _token_states(engine, layout, positions, None)
    return [TokenVectors(tokens=engine.tokenizer.convert_ids_to_tokens(row["input_ids"]),
                         token_ids=list(row["input_ids"]), vectors=vectors, layers=requested)
            for row, vectors in zip(layout.rows, states, strict=True)]


# ---------------------------------------------------------------------------- similarity


def cosine_similarity(a: Tensor, b: Tensor) -> Tensor:
    """(Q, H) × (N, H) → (Q, N) cosine similarities."""
    return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T


@dataclass(frozen=True)
class Match:
    """A corpus text found for a query."""

    index: int      # position in the corpus list
    score: float    # cosine similarity
    text: str


def semantic_search(queries: Tensor, corpus: Tensor, top_k: int = 5
                    ) -> list[list[tuple[int, float]]]:
    """For each query vector, the ``top_k`` most cosine-similar corpus vectors, best first."""
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise UsageError(f"top_k={top_k!r}; expected a positive int")
    if queries.dim() != 2 or corpus.dim() != 2 or queries.shape[1] != corpus.shape[1]:
        raise UsageError(f"expected (Q, H) queries and (N, H) corpus vectors, got "
                         f"{tuple(queries.shape)} and {tuple(corpus.shape)}")
    if corpus.shape[0] == 0:
        return [[] for _ in range(queries.shape[0])]
    scores, indices = cosine_similarity(queries, corpus).topk(min(top_k, corpus.shape[0]),
                                                               dim=-1)        # (Q, K)
    return [list(zip(row_i, row_s, strict=True))
            for row_i, row_s in zip(indices.tolist(), scores.tolist(), strict=True)]


def similar(model: nn.Module | Engine, tokenizer: Tokenizer | None,
            queries: str | Sequence[str], corpus: Sequence[str], *, top_k: int = 5,
            pooling: str = "mean", batch_size: int | None = None) -> list[list[Match]]:
    """Embed ``queries`` and ``corpus`` and return each query's ``top_k`` nearest corpus texts."""
    query_list = [queries] if isinstance(queries, str) else list(queries)
    corpus = list(corpus)
    engine = as_engine(model, tokenizer, batch_size=batch_size)
    query_vectors = sentence_embeddings(engine, None, query_list, pooling=pooling,
                                        normalize=True)
    corpus_vectors = sentence_embeddings(engine, None, corpus, pooling=pooling, normalize=True)
    return [[Match(index, score, corpus[index]) for index, score in hits]
            for hits in semantic_search(query_vectors, corpus_vectors, top_k)]
