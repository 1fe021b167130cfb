"""Task heads: hidden states in, logits out. Losses live with the objectives and tasks.

The families share these heads and differ only in facts from ``config.family``: the MLM
transform's width (E) and activation, and whether a sentence classifier reads the pooler or has
a hidden layer of its own on the first token (:class:`DenseClassificationHead`).

Shape legend: B batch, T tokens, E embedding width, H hidden, V vocabulary, C classes,
M masked positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bertkit.model.config import ACTIVATIONS, BertConfig, DenseHead


class MaskedLMHead(nn.Module):
    """Transform (dense H → E, activation, LayerNorm), then a decoder onto the vocabulary.

    The decoder matrix *is* the word-embedding matrix (passed in at call time, so the tie
    cannot come undone), plus an output bias of the head's own. E is the embedding width:
    H for BERT, RoBERTa and DistilBERT, smaller for ALBERT and the ELECTRA generator.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        width = config.embedding_dim
        self.dense = nn.Linear(config.hidden_size, width)
        self.act = ACTIVATIONS[config.family.mlm_activation or config.hidden_act]
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: Tensor, word_embeddings: Tensor) -> Tensor:
        """(B, T, H) or (M, H) hidden states → (…, V) logits (through (…, E)).

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


class DenseClassificationHead(nn.Module):
    """A hidden layer of the head's own, then C scores, on the first token's vector.

    RoBERTa (tanh) and ELECTRA (GELU) classify this way instead of through a pooler, DistilBERT
    (ReLU, its "pre-classifier") because it has no pooler at all.
    """

    def __init__(self, config: BertConfig, spec: DenseHead, num_outputs: int | None = None):
        super().__init__()
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.dropout_before = spec.dropout_before
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACTIVATIONS[spec.activation]
        self.out = nn.Linear(config.hidden_size, num_outputs or config.num_labels)

    def forward(self, first: Tensor) -> Tensor:
        if self.dropout_before:
            first = self.dropout(first)
        return self.out(self.dropout(self.act(self.dense(first))))  # (B, H) → (B, C)


class ReplacedTokenHead(nn.Module):
    """ELECTRA's discriminator: one score per token, "was this token replaced?"."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACTIVATIONS[config.hidden_act]
        self.linear = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.linear(self.act(self.dense(hidden))).squeeze(-1)  # (B, T, H) → (B, T)


class SpanHead(nn.Module):
    """Start and end scores for every token (extractive question answering); DistilBERT drops
    out the hidden states first (``qa_dropout``, 0 for the other families)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.qa_dropout)
        self.linear = nn.Linear(config.hidden_size, 2)

    def forward(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        start, end = self.linear(self.dropout(hidden)).unbind(dim=-1)  # (B, T) each
        return start, end

