"""What happens to next-token scores before a token is picked: bans (repeated n-grams, an
end token too early) and, when sampling, the temperature and the top-k / nucleus cut.

The order and the rules are ``transformers``' logits processors, so that the same settings
pick the same tokens. Scores are (R, V): one row per hypothesis; ``tokens`` (R, L) are the
target ids so far, the start token included.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from bertkit.generation.config import GenerationConfig

BANNED = -math.inf


def process(scores: Tensor, tokens: Tensor, config: GenerationConfig) -> Tensor:
    """The scores after every rule ``config`` switches on (a new tensor)."""
    if config.no_repeat_ngram_size:
        scores = ban_repeated_ngrams(scores, tokens, config.no_repeat_ngram_size)
    length = tokens.shape[1]
    too_short = length < config.min_length or length - 1 < config.min_new_tokens
    if config.eos_token_id is not None and too_short:
        scores = scores.clone()
        scores[:, config.eos_token_id] = BANNED
    if config.do_sample:
        if config.temperature != 1.0:
            scores = scores / config.temperature
        if config.top_k:
            scores = keep_top_k(scores, config.top_k)
        if config.top_p < 1.0:
            scores = keep_top_p(scores, config.top_p)
    return scores


def ban_repeated_ngrams(scores: Tensor, tokens: Tensor, n: int) -> Tensor:
    """Forbid every token that would complete an n-gram already in its row's tokens."""
    length = tokens.shape[1]
    if length < n:
        return scores
    windows = tokens.unfold(1, n, 1)                                    # (R, W, n)
    tail = tokens[:, length - n + 1:]                                   # (R, n - 1)
    repeats = (windows[:, :, :-1] == tail[:, None]).all(dim=-1)         # (R, W)
    hits = torch.zeros(scores.shape, dtype=torch.long, device=scores.device)
    hits.scatter_add_(1, windows[:, :, -1], repeats.long())             # (R, V)
    return scores.masked_fill(hits > 0, BANNED)


def keep_top_k(scores: Tensor, k: int) -> Tensor:
    """Only the k best tokens of each row stay possible (ties with the k-th stay too)."""
    k = min(k, scores.shape[-1])
    kth = scores.topk(k, dim=-1).values[:, -1:]                         # (R, 1)
    return scores.masked_fill(scores < kth, BANNED)


def keep_top_p(scores: Tensor, p: float) -> Tensor:
    """Nucleus sampling (Holtzman et al. 2020): the fewest best tokens whose probability adds
    up to at least ``p`` stay possible; the best token always does."""
    ordered, order = scores.sort(dim=-1)                                # ascending
    below = ordered.softmax(dim=-1).cumsum(dim=-1) <= 1 - p
    below[:, -1] = False
    return scores.masked_fill(below.scatter(1, order, below), BANNED)
