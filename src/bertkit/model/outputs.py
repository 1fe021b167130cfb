"""Output records of the encoder and the task models.

Attribute access is the main interface (``out.last_hidden_state``); integer indexing is kept
for code moved over from ``transformers`` (``out[0]``), skipping fields that are ``None`` as
``transformers`` does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import Tensor


@dataclass
class ModelOutput:
    def to_tuple(self) -> tuple[Any, ...]:
        values = (getattr(self, f.name) for f in dataclasses.fields(self))
        return tuple(v for v in values if v is not None)

    def __getitem__(self, key: int | slice | str) -> Any:
        if isinstance(key, str):
            return getattr(self, key)
        return self.to_tuple()[key]


@dataclass
class EncoderOutput(ModelOutput):
    """What the encoder returns.

    ``hidden_states`` holds the embedding output and every layer's output (L + 1 tensors of
    shape (B, T, H)) when asked for. ``attentions`` holds one (B, N, T, T) probability tensor
    per layer when asked for; layers that were not asked for hold ``None``.
    """

    last_hidden_state: Tensor
    pooler_output: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor | None, ...] | None = None


@dataclass
class HeadOutput(ModelOutput):
    """A task model's output: classification, token classification, MLM, NSP, multiple choice."""

    loss: Tensor | None = None
    logits: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor | None, ...] | None = None


@dataclass
class PreTrainingOutput(ModelOutput):
    """MLM + NSP pretraining output; the loss is the sum of both."""

    loss: Tensor | None = None
    prediction_logits: Tensor | None = None
    seq_relationship_logits: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor | None, ...] | None = None


@dataclass
class SentenceOrderOutput(ModelOutput):
    """ALBERT's pretraining output: MLM + sentence-order prediction; the loss is their sum."""

    loss: Tensor | None = None
    prediction_logits: Tensor | None = None
    sop_logits: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor | None, ...] | None = None


@dataclass
class SpanOutput(ModelOutput):
    """Extractive question answering: a start and an end score per token."""

    loss: Tensor | None = None
    start_logits: Tensor | None = None
    end_logits: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor | None, ...] | None = None


@dataclass
class DecoderOutput(ModelOutput):
    """What the decoder network returns: the encoder's fields, plus each layer's cached keys
    and values (``past_key_values``, when ``use_cache``) and cross-attention probabilities."""

    last_hidden_state: Tensor
    past_key_values: tuple[Any, ...] | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor | None, ...] | None = None
    cross_attentions: tuple[Tensor | None, ...] | None = None


@dataclass
class CausalLMOutput(ModelOutput):
    """A decoder with its language-model head: next-token logits (B, T, V)."""

    loss: Tensor | None = None
    logits: Tensor | None = None
    past_key_values: tuple[Any, ...] | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor | None, ...] | None = None
    cross_attentions: tuple[Tensor | None, ...] | None = None


@dataclass
class Seq2SeqLMOutput(ModelOutput):
    """An encoder-decoder model's output, field for field as ``transformers`` names it."""

    loss: Tensor | None = None
    logits: Tensor | None = None
    past_key_values: tuple[Any, ...] | None = None
    decoder_hidden_states: tuple[Tensor, ...] | None = None
    decoder_attentions: tuple[Tensor | None, ...] | None = None
    cross_attentions: tuple[Tensor | None, ...] | None = None
    encoder_last_hidden_state: Tensor | None = None
    encoder_hidden_states: tuple[Tensor, ...] | None = None
    encoder_attentions: tuple[Tensor | None, ...] | None = None
