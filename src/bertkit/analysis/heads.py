"""What each attention head looks at, over a corpus (Clark et al. 2019, "What Does BERT Look At?
An Analysis of BERT's Attention").

For every head of every layer, averaged over the real (non-padding) query tokens of a corpus:

* **attention to a target** — the probability mass a token gives to ``[CLS]``, to ``[SEP]``, to
  the previous and the next token, to punctuation, to itself, to the other pieces of its own
  word, and to earlier copies of its own token;
* **entropy** of its attention distribution (nats): broad heads near log T, focused ones near 0;
* **top-attention accuracy** per relation — how often the token it attends to most is such a
  target (Clark et al. score dependency relations this way; the relations here need no parser:
  previous / next token, same word, repeated token, [CLS], [SEP], punctuation, self). Each
  relation counts only queries for which a target exists (the first token has no previous one).

Streaming: one batch of attention maps (B, N, T, T) per layer is alive at a time, and what is
kept is a few (L, N) sums, so memory does not grow with the corpus. Heads removed by pruning
(``config.pruned_heads``) keep their column, as NaN, so tables of pruned and unpruned models
line up.

Shape legend: B batch, N heads, T tokens (query × key), L layers.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bertkit.data.corpus import read_documents
from bertkit.errors import DataFormatError, UsageError
from bertkit.inference.engine import Engine, TextBatch

TARGETS = ("cls", "sep", "previous", "next", "punctuation", "self", "same_word", "repeated")
"""What a token may attend to, in table order (see the module docstring)."""

MIN_PIECES = 2
"""A sentence is usable when it has at least this many word pieces (besides [CLS] / [SEP]):
with one there is no previous or next token to attend to."""


@dataclass
class HeadStatistics:
    """Per-head statistics of one model over one corpus: (L, N) arrays, NaN for pruned heads.

    ``attention[t]`` is the mean attention to target ``t``, ``top[t]`` the share of queries
    whose most-attended key is a ``t`` target, ``entropy`` the mean entropy; ``queries[t]``
    says how many query tokens each of them averages over.
    """

    num_layers: int
    num_heads: int
    sentences: int
    tokens: int
    attention: dict[str, np.ndarray]
    top: dict[str, np.ndarray]
    entropy: np.ndarray
    queries: dict[str, int]
    model: str = ""
    corpus: str = ""
    pruned_heads: dict[int, list[int]] = field(default_factory=dict)

    def best_heads(self, relation: str, k: int = 3) -> list[tuple[int, int, float]]:
        """The ``k`` heads (layer, head, accuracy) whose top attention matches ``relation``
        most often, best first."""
        if relation not in self.top:
            raise UsageError(f"unknown relation {relation!r}; expected one of {list(TARGETS)}")
        scores = np.nan_to_num(self.top[relation], nan=-1.0)  # pruned, or never applied
        order = np.argsort(-scores, axis=None, kind="stable")[:k]
        return [(int(i // self.num_heads), int(i % self.num_heads), float(scores.flat[i]))
                for i in order if scores.flat[i] >= 0]

    def to_json(self) -> dict[str, Any]:
        """The table as JSON: every statistic as a list of layers of heads (null = pruned),
        the best heads per relation, and what was averaged over."""
        def rows(array: np.ndarray) -> list[list[float | None]]:
            return [[None if math.isnan(v) else round(float(v), 6) for v in layer]
                    for layer in array]
        return {
            "model": self.model, "corpus": self.corpus, "sentences": self.sentences,
            "tokens": self.tokens, "num_layers": self.num_layers, "num_heads": self.num_heads,
            "pruned_heads": {str(k): v for k, v in sorted(self.pruned_heads.items())},
            "queries": self.queries,
            "attention": {name: rows(values) for name, values in self.attention.items()},
            "top_accuracy": {name: rows(values) for name, values in self.top.items()},
            "entropy": rows(self.entropy),
            "best_heads": {name: [{"layer": layer, "head": head, "accuracy": round(score, 6)}
                                  for layer, head, score in self.best_heads(name)]
                           for name in self.top},
        }


def read_sentences(path: str | Path) -> list[str]:
    """One sentence per non-blank line of a UTF-8 text file (blank lines separate documents);
    :class:`DataFormatError` when there is none."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("no such text file", path)
    sentences = [s for document in read_documents(path, duplicate_warning=None)
                 for s in document]
    if not sentences:
        raise DataFormatError("no usable sentences: the file has no non-blank line; expected "
                              "one sentence per line", path)
    return sentences


def punctuation_table(tokens: Sequence[str]) -> Tensor:
    """(V,) bool: which vocabulary entries are punctuation only (``.``, ``,``, ``##)``…), the
    Unicode P* categories; special tokens (``[CLS]``) are not."""
    def is_punctuation(token: str) -> bool:
        piece = token.removeprefix("##").removeprefix("Ġ").removeprefix("▁")
        return bool(piece) and all(unicodedata.category(c).startswith("P") for c in piece)
    return torch.tensor([is_punctuation(t) for t in tokens], dtype=torch.bool)


def target_masks(batch: TextBatch, cls_id: int, sep_id: int,
                 punctuation: Tensor) -> dict[str, Tensor]:
    """(B, T, T) bool per target: ``[b, i, j]`` is True when key j is a target of query i."""
    ids, real = batch.input_ids.cpu(), batch.attention_mask.cpu().bool()       # (B, T)
    B, T = ids.shape
    keys = real[:, None, :].expand(B, T, T)
    eye = torch.eye(T, dtype=torch.bool).expand(B, T, T)
    word_ids = torch.full((B, T), -1, dtype=torch.long)
    for r, row in enumerate(batch.rows):
        word_ids[r, :len(row["word_ids"])] = torch.tensor(
            [-1 if w is None else w for w in row["word_ids"]])
    same_word = (word_ids[:, :, None] == word_ids[:, None, :]) & (word_ids[:, :, None] >= 0)
    earlier = torch.ones(T, T, dtype=torch.bool).tril(-1)                    # j < i
    repeated = (ids[:, :, None] == ids[:, None, :]) & earlier
    specials = (ids == cls_id) | (ids == sep_id)
    repeated &= ~specials[:, :, None]
    return {
        "cls": keys & (ids == cls_id)[:, None, :],
        "sep": keys & (ids == sep_id)[:, None, :],
        "previous": keys & torch.diag(torch.ones(T - 1, dtype=torch.bool), -1),  # j = i - 1
        "next": keys & torch.diag(torch.ones(T - 1, dtype=torch.bool), 1),       # j = i + 1
        "punctuation": keys & punctuation[ids.clamp(max=len(punctuation) - 1)][:, None, :],
        "self": keys & eye,
        "same_word": keys & same_word & ~eye,
        "repeated": keys & repeated,
    }


class _Accumulator:
    """Running sums of the statistics: (L, N) float64 arrays and per-target query counts."""

    def __init__(self, num_layers: int, num_heads: int):
        shape = (num_layers, num_heads)
        self.attention = {t: np.zeros(shape) for t in TARGETS}
        self.top = {t: np.zeros(shape) for t in TARGETS}
        self.entropy = np.zeros(shape)
        self.queries = dict.fromkeys(TARGETS, 0)
        self.tokens = 0

    def add(self, layer: int, heads: list[int], probs: Tensor, real: Tensor,
            targets: dict[str, Tensor]) -> None:
        """One layer's probabilities (B, N_l, T, T) of a batch; ``heads`` their numbers in
        the unpruned layer; ``real`` (B, T) the real queries."""
        probs = probs.float().cpu()
        query = real.float()[:, None, :]                                     # (B, 1, T)
        logs = probs.clamp_min(1e-12).log()
        entropy = -(probs * logs).sum(-1)                                    # (B, N, T)
        self.entropy[layer, heads] += (entropy * query).sum((0, 2)).double().numpy()
        best = probs.argmax(-1)                                              # (B, N, T)
        for name, target in targets.items():
            applies = (target.any(-1) & real).float()[:, None, :]            # (B, 1, T)
            mass = (probs * target[:, None].float()).sum(-1)                 # (B, N, T)
            hit = target[:, None].expand_as(probs).gather(-1, best[..., None]).squeeze(-1)
            self.attention[name][layer, heads] += (mass * applies).sum((0, 2)).double().numpy()
            self.top[name][layer, heads] += (hit.float() * applies).sum((0, 2)).double().numpy()
            if layer == 0:
                self.queries[name] += int(applies.sum())
        if layer == 0:
            self.tokens += int(real.sum())

    def finish(self, alive: np.ndarray) -> tuple[dict, dict, np.ndarray]:
        """Means (NaN where a head is pruned, or a target never occurred)."""
        def mean(total: np.ndarray, count: int) -> np.ndarray:
            out = total / count if count else np.full_like(total, np.nan)
            return np.where(alive, out, np.nan)
        return ({t: mean(v, self.queries[t]) for t, v in self.attention.items()},
                {t: mean(v, self.queries[t]) for t, v in self.top.items()},
                mean(self.entropy, self.tokens))


def head_statistics(engine: Engine, sentences: Iterable[str], *, source: str = "",
                    progress: bool = False) -> HeadStatistics:
    """Per-head statistics of ``engine``'s model over ``sentences`` (one text each; cut to the
    engine's ``max_length`` when it truncates). Sentences under :data:`MIN_PIECES` word
    pieces are skipped; none left is a :class:`DataFormatError`."""
    config = engine.model.config
    tokenizer = engine.tokenizer
    rows = [row for row in engine.encode(list(sentences), word_ids=True)
            if len(row["input_ids"]) - 2 >= MIN_PIECES]
    if not rows:
        raise DataFormatError(f"no usable sentences: none has {MIN_PIECES} or more word pieces",
                              source or None)
    encoder = engine.model.bert
    L, N = len(encoder.layers), config.num_attention_heads
    alive = np.ones((L, N), dtype=bool)
    heads_of = []
    for layer in range(L):  # config.pruned_heads: the record every model class keeps
        pruned = sorted(config.pruned_heads.get(layer, ()))
        heads_of.append([h for h in range(N) if h not in pruned])
        alive[layer, pruned] = False
    punctuation = punctuation_table(tokenizer.convert_ids_to_tokens(
        list(range(len(tokenizer)))))
    sums = _Accumulator(L, N)
    batches = list(engine.batches(rows))
    with engine.run_context():
        for number, batch in enumerate(batches, 1):
            out = encoder(batch.input_ids, batch.attention_mask, output_attentions=True)
            real = batch.attention_mask.cpu().bool()
            targets = target_masks(batch, tokenizer.cls_token_id, tokenizer.sep_token_id,
                                   punctuation)
            for layer, probs in enumerate(out.attentions):
                sums.add(layer, heads_of[layer], probs, real, targets)
            if progress:
                print(f"\rheads: batch {number}/{len(batches)}", end="", flush=True)
    if progress:
        print()
    attention, top, entropy = sums.finish(alive)
    return HeadStatistics(num_layers=L, num_heads=N, sentences=len(rows), tokens=sums.tokens,
                          attention=attention, top=top, entropy=entropy,
                          queries=dict(sums.queries), corpus=source,
                          pruned_heads={k: list(v) for k, v in config.pruned_heads.items()})
