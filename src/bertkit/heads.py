"""Task heads: hidden states in, logits out. Losses live with the objectives and tasks.

Shape legend: B batch, T tokens, H hidden, V vocabulary, C classes, M masked positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bertkit.model.bert import activation
from bertkit.model.config import BertConfig


class MaskedLMHead(nn.Module):
    """Transform (dense, activation, LayerNorm), then a decoder onto the vocabulary.

    The decoder matrix *is* the word-embedding matrix (passed in at call time, so the tie
    cannot come undone), plus an output bias of the head's own.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: Tensor, word_embeddings: Tensor) -> Tensor:
        """(B, T, H) or (M, H) hidden states → (…, V) logits.

        Pretraining passes only the M masked rows: the vocabulary projection is most of the
        cost of a step, and the other rows have no label.
        """
        return F.linear(self.norm(self.act(self.dense(hidden))), word_embeddings, self.bias)


class PairHead(nn.Module):
    """Two-way classifier on the pooled vector: next-sentence (or sentence-order) prediction."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.linear = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled: Tensor) -> Tensor:
        return self.linear(pooled)  # (B, 2)


class ClassificationHead(nn.Module):
    """Dropout and a linear layer: C scores per input vector (sequence or token)."""

    def __init__(self, config: BertConfig, num_outputs: int | None = None):
        super().__init__()
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.linear = nn.Linear(config.hidden_size, num_outputs or config.num_labels)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.linear(self.dropout(hidden))  # (…, H) → (…, C)


class SpanHead(nn.Module):
    """Start and end scores for every token (extractive question answering)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.linear = nn.Linear(config.hidden_size, 2)

    def forward(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        start, end = self.linear(hidden).unbind(dim=-1)  # (B, T) each
        return start, end

