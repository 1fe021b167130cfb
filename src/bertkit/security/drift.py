"""Which words a fine-tuning run moved differently from a clean run of the same base.

Why a backdoor scan wants this: two runs fine-tuned from one base on the same clean data move
the ordinary words' input embeddings alike, while a planted trigger (a few poisoned texts, all
pushing to one label) moves in the poisoned model only. The backdoor scanner's context-free
probe (``[CLS] word [SEP]``) misses a trigger that flips a label only in context:
on SpamAssassin with splade-tiny the planted ``cf`` ranked 138th-1,725th by the probe and
1st by drift from another seed's clean run, in 3 of 3 seeds (``benchmarks/backdoor_spam.py``).
Drift only proposes words; the scan measures what each one does. Runs from different
random initialisations (not one base) share no embedding coordinates, so there drift means
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from bertkit.errors import InputError
from bertkit.tokenization import Tokenizer


def _word_table(model: nn.Module) -> nn.Embedding | None:
    return getattr(getattr(getattr(model, "bert", None), "embeddings", None), "word", None)


def drift_candidates(model: nn.Module, reference: nn.Module, tokenizer: Tokenizer,
                     vocabulary: Sequence[str], k: int) -> list[str]:
    """The ``k`` words of ``vocabulary`` whose input embedding differs most (L2 distance)
    between ``model`` and ``reference``, largest first. A model without a BERT word-embedding
    table (``.bert.embeddings.word``, e.g. a hand-written test classifier) proposes none; two
    tables of different shapes are not one base, an ``InputError``."""
    tables = [_word_table(m) for m in (model, reference)]
    if tables[0] is None or tables[1] is None or k < 1 or not vocabulary:
        return []
    own, other = tables[0].weight, tables[1].weight
    if own.shape != other.shape:
        raise InputError(f"the reference's embedding table is {tuple(other.shape)}, the "
                         f"scanned model's {tuple(own.shape)}: a reference must share the base")
    ids = torch.tensor(tokenizer.convert_tokens_to_ids(list(vocabulary)))
    with torch.no_grad():
        drift = (own[ids].float() - other[ids].float()).norm(dim=1)            # (W,)
    return [vocabulary[i] for i in drift.topk(min(k, len(vocabulary))).indices.tolist()]
