"""Sequence-to-sequence data and evaluation: pairs → padded teacher-forcing batches, a model's
translations of many sources, and their BLEU / chrF.

Targets follow BERT2BERT (Rothe et al. 2020) as ``transformers`` trains it: the target is
tokenised as ``[CLS] t1 … tn [SEP]``; the labels are ``t1 … tn [SEP]`` and the decoder reads
``[CLS] t1 … tn`` (the labels shifted right behind the decoder start token, ``[CLS]``), so it
learns to end a translation with ``[SEP]``, where generation stops. Padded label positions are
``-100``: the loss ignores them (:func:`seq2seq_loss`).

Shape legend: B batch, S source tokens, T target tokens, V vocabulary.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from bertkit.data.readers import TextPair
from bertkit.errors import UsageError
from bertkit.tasks.metrics.translation import TranslationScores, detokenize, translation_scores

if TYPE_CHECKING:
    from bertkit.tokenization import Tokenizer

__all__ = ["IGNORE_INDEX", "MAX_NEW_TOKENS", "Seq2SeqFeatures", "collate_seq2seq",
           "evaluate_translations", "seq2seq_features", "seq2seq_loss", "translate"]

logger = logging.getLogger(__name__)
IGNORE_INDEX = -100
#: The token cap of a translation wherever none is given: ``translate()``, a run's dev
#: translations, ``seq2seq evaluate | generate`` and the server's ``/v1/generate``.
MAX_NEW_TOKENS = 48


@dataclass
class Seq2SeqFeatures:
    """Token ids per pair: the encoder's source (with ``[CLS]``/``[SEP]``) and the target
    labels (``t1 … tn [SEP]``); how many of each were truncated."""

    sources: list[list[int]]
    labels: list[list[int]]
    truncated_sources: int = 0
    truncated_targets: int = 0


def seq2seq_features(tokenizer: Tokenizer, pairs: Sequence[TextPair], *,
                     max_source_length: int, max_target_length: int) -> Seq2SeqFeatures:
    """Tokenise ``pairs``; a source or target longer than its limit is cut (keeping its final
    ``[SEP]``) and counted, with one warning per kind, never an index error inside the model.

    ``max_target_length`` counts the labels (the target tokens plus ``[SEP]``).
    """
    if max_source_length < 3 or max_target_length < 2:
        raise UsageError(f"max_source_length={max_source_length}, max_target_length="
                         f"{max_target_length}: expected at least 3 and 2 tokens")
    features = Seq2SeqFeatures([], [])
    sep = tokenizer.sep_token_id
    for pair in pairs:
        source = tokenizer.encode(pair.source)
        if len(source) > max_source_length:
            source = [*source[:max_source_length - 1], sep]
            features.truncated_sources += 1
        labels = tokenizer.encode(pair.target)[1:]  # drop [CLS]: it is the decoder's start
        if len(labels) > max_target_length:
            labels = [*labels[:max_target_length - 1], sep]
            features.truncated_targets += 1
        features.sources.append(source)
        features.labels.append(labels)
    for kind, count, limit in (("source", features.truncated_sources, max_source_length),
                               ("target", features.truncated_targets, max_target_length)):
        if count:
            logger.warning("%d of %d %ss are longer than %d tokens and were truncated", count,
                           len(pairs), kind, limit)
    return features


def _pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([[*row, *([value] * (width - len(row)))] for row in rows],
                        dtype=torch.long)


def _mask(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """1 on real tokens, 0 on padding (from the lengths: a pad id inside a text stays real)."""
    return _pad([[1] * len(row) for row in rows], 0)


def collate_seq2seq(features: Seq2SeqFeatures, indices: Sequence[int], *, pad_id: int,
                    start_id: int) -> dict[str, torch.Tensor]:
    """A teacher-forcing batch: ``input_ids``/``attention_mask`` (B, S), ``decoder_input_ids``
    /``decoder_attention_mask`` (B, T) and ``labels`` (B, T, padding ``-100``)."""
    sources = [features.sources[i] for i in indices]
    labels = [features.labels[i] for i in indices]
    return {"input_ids": _pad(sources, pad_id), "attention_mask": _mask(sources),
            "decoder_input_ids": _pad([[start_id, *row[:-1]] for row in labels], pad_id),
            "decoder_attention_mask": _mask(labels),
            "labels": _pad(labels, IGNORE_INDEX)}


def seq2seq_loss(logits: torch.Tensor, labels: torch.Tensor, *,
                 label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean token cross-entropy over real (non-``-100``) label positions, with label
    smoothing, and the plain (unsmoothed) negative log-likelihood for reporting.

    logits (B, T, V), labels (B, T). Computed in float32 whatever the autocast dtype: a bf16
    log-softmax over a 30k vocabulary loses the small probabilities smoothing spreads.
    """
    flat = logits.float().reshape(-1, logits.shape[-1])  # (B·T, V)
    target = labels.reshape(-1)
    loss = F.cross_entropy(flat, target, ignore_index=IGNORE_INDEX,
                           label_smoothing=label_smoothing)
    if label_smoothing == 0.0:
        return loss, loss.detach()
    with torch.no_grad():
        nll = F.cross_entropy(flat, target, ignore_index=IGNORE_INDEX)
    return loss, nll


@torch.no_grad()
def translate(model: nn.Module, tokenizer: Tokenizer, sources: Sequence[str], *,
              max_source_length: int = 128, max_new_tokens: int = MAX_NEW_TOKENS,
              num_beams: int = 1, batch_size: int = 32, device: torch.device | str = "cpu",
              **generation: Any) -> list[str]:
    """Detokenised translations of ``sources`` by an encoder–decoder model's ``generate``.

    Sources are sorted by length and batched (less padding), then put back in order; a source
    longer than ``max_source_length`` tokens is truncated with a warning.
    """
    pairs = [TextPair(text, "-") for text in sources]
    features = seq2seq_features(tokenizer, pairs, max_source_length=max_source_length,
                                max_target_length=2)
    order = sorted(range(len(sources)), key=lambda i: len(features.sources[i]))
    was_training = model.training
    model.eval()
    out: list[str] = [""] * len(sources)
    pad = tokenizer.pad_token_id
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            input_ids = _pad([features.sources[i] for i in chunk], pad).to(device)
            mask = _mask([features.sources[i] for i in chunk]).to(device)
            generated = model.generate(input_ids, mask, max_new_tokens=max_new_tokens,
                                       num_beams=num_beams, **generation)
            for i, text in zip(chunk, tokenizer.batch_decode(generated.cpu()), strict=True):
                out[i] = detokenize(text)
    finally:
        model.train(was_training)
    return out


def evaluate_translations(model: nn.Module, tokenizer: Tokenizer, pairs: Sequence[TextPair],
                          *, lowercase: bool | None = None, **options: Any
                          ) -> tuple[TranslationScores, list[dict[str, Any]]]:
    """BLEU / chrF of the model's translations of ``pairs``' sources against their targets,
    and one record per pair (source, reference, hypothesis, file line). ``lowercase=None``
    scores case-blind exactly when the tokenizer lower-cases (an uncased model cannot produce
    capitals; the signature then says ``case:lc``)."""
    if lowercase is None:
        lowercase = bool(tokenizer.do_lower_case)
    hypotheses = translate(model, tokenizer, [p.source for p in pairs], **options)
    scores = translation_scores(hypotheses, [p.target for p in pairs], lowercase=lowercase)
    records = [{"source": p.source, "reference": p.target, "hypothesis": h,
                **({"line": p.line} if p.line is not None else {})}
               for p, h in zip(pairs, hypotheses, strict=True)]
    return scores, records
