"""Greedy decoding, sampling and beam search over a batch of (padded) sources.

The source is encoded once; the decoder's first step runs once per source, which projects
the cross-attention keys and values once per source (beam search then copies them to each
beam). Later steps feed only the newest token and the cache (:meth:`Seq2SeqModel.decode`);
beam search reorders the self-attention cache as beams trade places.

Beam search follows ``transformers``' algorithm step for step, so the same weights and
settings give the same tokens: each step keeps the 2K best continuations of the K running
beams; those ending in the end token (or at the length limit) join a pool of K finished
hypotheses scored ``sum(log p) / length ** length_penalty``; the best K others run on. The
search stops when no running beam can still beat the pool (``early_stopping``: False uses the
current length in that estimate, ``"never"`` the longest possible; True stops once K
hypotheses are finished).

Shape legend: B sources, K beams, V vocabulary, L target positions so far.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor

from bertkit.errors import InputError
from bertkit.generation.config import GenerationConfig
from bertkit.generation.logits import process

NEVER = -1.0e9
"""The score that keeps a candidate from being chosen (``transformers`` uses the same)."""


class Seq2SeqModel(Protocol):
    """What generation needs of a model (:class:`bertkit.EncoderDecoderModel` has it)."""

    @property
    def vocab_size(self) -> int: ...

    @property
    def max_target_positions(self) -> int: ...

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None) -> Tensor: ...

    def decode(self, tokens: Tensor, source: Tensor, source_mask: Tensor | None,
               cache: Any) -> tuple[Tensor, Any]: ...

    def reorder_cache(self, cache: Any, rows: Tensor, *, sources_too: bool) -> Any: ...


@torch.no_grad()
def generate(model: Seq2SeqModel, input_ids: Tensor, attention_mask: Tensor | None,
             config: GenerationConfig, *, generator: torch.Generator | None = None) -> Tensor:
    """Target ids (B · num_return_sequences, 1 + new tokens), the start token first; rows
    that ended early are padded with ``pad_token_id``."""
    config.validate(model.vocab_size)
    attention_mask = check_source(input_ids, attention_mask, config)
    if 1 + config.max_new_tokens > model.max_target_positions:
        raise InputError(f"max_new_tokens={config.max_new_tokens} needs "
                         f"{1 + config.max_new_tokens} decoder positions (with the start "
                         f"token) but the decoder has {model.max_target_positions}")
    source = model.encode(input_ids, attention_mask)                     # (B, S, H)
    start = input_ids.new_full((input_ids.shape[0], 1), config.decoder_start_token_id)
    logits, cache = model.decode(start, source, attention_mask, None)    # (B, V)
    if config.num_beams == 1:
        return sample(model, source, attention_mask, start, logits, cache, config, generator)
    return beam_search(model, source, attention_mask, start, logits, cache, config)


def check_source(input_ids: Tensor, attention_mask: Tensor | None,
                 config: GenerationConfig) -> Tensor | None:
    """Refuse a source generation cannot start from; the padding mask to use (as
    ``transformers``: without one, positions holding the pad id are padding)."""
    if input_ids.dim() != 2:
        raise InputError(f"input_ids must have shape (batch, tokens), got "
                         f"{tuple(input_ids.shape)}")
    if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
        raise InputError(f"the source is empty (input_ids of shape {tuple(input_ids.shape)}): "
                         "tokenize at least one token per source ([CLS] [SEP] for BERT)")
    pad = config.pad_token_id
    if attention_mask is None and pad is not None and pad != config.eos_token_id:
        attention_mask = input_ids.ne(pad).long()
    if attention_mask is not None:
        empty = (attention_mask.sum(dim=1) == 0).nonzero().flatten().tolist()
        if empty:
            raise InputError(f"source row(s) {empty} have no tokens (attention_mask is all 0 "
                             "there): each source needs at least one")
    return attention_mask


def next_logits(model: Seq2SeqModel, tokens: Tensor, source: Tensor, mask: Tensor | None,
                cache: Any, config: GenerationConfig) -> tuple[Tensor, Any]:
    """The next step's logits: the newest token against the cache, or (``use_cache=False``)
    the whole prefix from scratch."""
    if config.use_cache:
        return model.decode(tokens[:, -1:], source, mask, cache)
    return model.decode(tokens, source, mask, None)


def sample(model: Seq2SeqModel, source: Tensor, mask: Tensor | None, tokens: Tensor,
           logits: Tensor, cache: Any, config: GenerationConfig,
           generator: torch.Generator | None) -> Tensor:
    """Greedy decoding, or sampling with ``do_sample`` (drawn from ``generator``)."""
    finished = torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    for step in range(config.max_new_tokens):
        scores = process(logits, tokens, config)                          # (B, V)
        if config.do_sample:
            chosen = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator)[:, 0]
        else:
            chosen = scores.argmax(dim=-1)
        if config.eos_token_id is not None:
            if config.pad_token_id is not None:
                chosen = chosen.masked_fill(finished, config.pad_token_id)
            finished = finished | chosen.eq(config.eos_token_id)
        tokens = torch.cat([tokens, chosen[:, None]], dim=1)
        if step + 1 == config.max_new_tokens or bool(finished.all()):
            break
        logits, cache = next_logits(model, tokens, source, mask, cache, config)
    return tokens


def take(tensor: Tensor, index: Tensor) -> Tensor:
    """Per source, the entries ``index`` (B, J) of ``tensor`` (B, K, …) along the beams."""
    index = index.view(*index.shape, *([1] * (tensor.dim() - 2)))
    return tensor.take_along_dim(index, dim=1)


def beam_search(model: Seq2SeqModel, source: Tensor, mask: Tensor | None, start: Tensor,
                logits: Tensor, cache: Any, config: GenerationConfig) -> Tensor:
    """Beam search with ``config.num_beams`` beams (the module docstring has the rules)."""
    B, K, V = start.shape[0], config.num_beams, logits.shape[-1]
    limit = 1 + config.max_new_tokens
    fill = config.pad_token_id if config.pad_token_id is not None else 0
    device = start.device
    rows = torch.arange(B, device=device).repeat_interleave(K)          # each source K times
    cache = model.reorder_cache(cache, rows, sources_too=True)
    source, logits = source[rows], logits[rows]
    mask = mask[rows] if mask is not None else None

    running = start.new_full((B, K, limit), fill)
    running[:, :, 0] = config.decoder_start_token_id
    running_scores = torch.zeros(B, K, device=device)
    running_scores[:, 1:] = NEVER           # at first every beam is the same: use one
    pool = running.clone()
    pool_scores = torch.full((B, K), NEVER, device=device)
    pool_lengths = torch.ones(B, K, dtype=torch.long, device=device)
    pool_done = torch.zeros(B, K, dtype=torch.bool, device=device)
    improvable = torch.ones(B, 1, dtype=torch.bool, device=device)
    in_top_k = torch.arange(2 * K, device=device) < K
    length = 1
    while True:
        log_probs = process(logits.log_softmax(dim=-1), running.view(B * K, limit)[:, :length],
                            config)
        totals = (log_probs.view(B, K, V) + running_scores[:, :, None]).view(B, K * V)
        scores, index = totals.topk(2 * K, dim=-1)                       # (B, 2K)
        beam, token = index // V, index % V
        candidates = take(running, beam).clone()                         # (B, 2K, limit)
        candidates[:, :, length] = token
        stops = torch.full_like(token, length + 1 >= limit, dtype=torch.bool)
        if config.eos_token_id is not None:
            stops = stops | token.eq(config.eos_token_id)

        alive = scores + stops.float() * NEVER
        keep = alive.topk(K, dim=-1).indices                             # (B, K)
        running, running_scores = take(candidates, keep), take(alive, keep)
        parent = take(beam, keep)                                        # (B, K) beam index

        finished = stops & in_top_k
        normalized = scores / (length ** config.length_penalty)     # length new tokens
        full = pool_done.all(dim=-1, keepdim=True) & (config.early_stopping is True)
        normalized = (normalized + full.float() * NEVER + (~improvable).float() * NEVER
                      + (~finished).float() * NEVER)
        best = torch.cat([pool_scores, normalized], dim=1).topk(K, dim=-1).indices
        pool = take(torch.cat([pool, candidates], dim=1), best)
        pool_scores = take(torch.cat([pool_scores, normalized], dim=1), best)
        pool_lengths = take(torch.cat([pool_lengths, torch.full_like(token, length + 1)], dim=1),
                            best)
        pool_done = take(torch.cat([pool_done, finished], dim=1), best)

        length += 1
        improvable = improvable & can_improve(running_scores, pool_scores, pool_done, length,
                                              limit, config)
        if (not bool(improvable.any()) or bool(stops.all())
                or (config.early_stopping is True and bool(pool_done.all()))):
            break
        order = (torch.arange(B, device=device)[:, None] * K + parent).view(-1)
        cache = model.reorder_cache(cache, order, sources_too=False)
        logits, cache = next_logits(model, running.view(B * K, limit)[:, :length], source, mask,
                                    cache, config)
    R = config.num_return_sequences
    return pool[:, :R, :int(pool_lengths[:, :R].max())].reshape(B * R, -1)


def can_improve(running_scores: Tensor, pool_scores: Tensor, pool_done: Tensor, length: int,
                limit: int, config: GenerationConfig) -> Tensor:
    """(B, 1): could the best running beam still beat the worst finished hypothesis? With a
    positive length penalty and ``early_stopping="never"`` it is credited the longest length
    it could reach, otherwise its current one (``transformers``' heuristic)."""
    penalty = config.length_penalty
    hypothetical = (limit if config.early_stopping == "never" and penalty > 0 else length) - 1
    best_running = running_scores[:, :1] / (hypothetical ** penalty)
    worst_pool = torch.where(pool_done, pool_scores.min(dim=1, keepdim=True).values,
                             torch.full_like(pool_scores, NEVER))
    return (best_running > worst_pool).any(dim=-1, keepdim=True)
