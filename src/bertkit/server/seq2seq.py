"""Serving an encoder–decoder: ``POST /v1/generate`` translates texts with the model's
``generate`` (greedy or beam search), through the same dynamic batcher as every endpoint.

Kept in its own module so the encoder-only serving code stays as it is: a model directory whose
``config.json`` says ``model_type: encoder-decoder`` is loaded here, and the
:class:`~bertkit.server.models.ServedModel` holding it answers ``generate`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bertkit._fileio import read_json
from bertkit.tasks.translation import translate
from bertkit.tokenization import Tokenizer

__all__ = ["Seq2SeqRunner", "is_seq2seq"]

MAX_BEAMS = 8


def is_seq2seq(directory: Path) -> bool:
    """Whether a model directory holds an encoder–decoder (by its ``config.json``)."""
    config = read_json(directory / "config.json")
    return isinstance(config, dict) and config.get("model_type") == "encoder-decoder"


@dataclass
class Seq2SeqRunner:
    """A loaded encoder–decoder, its tokenizer and device; :meth:`run` is one batch."""

    model: nn.Module
    tokenizer: Tokenizer
    device: torch.device
    batch_size: int

    @classmethod
    def load(cls, directory: Path, device: torch.device, batch_size: int) -> Seq2SeqRunner:
        from bertkit.model.encoder_decoder import EncoderDecoderModel

        model = EncoderDecoderModel.from_pretrained(directory).to(device).eval()
        return cls(model, Tokenizer.from_pretrained(directory), device, batch_size)

    @property
    def max_source_tokens(self) -> int:
        return int(self.model.config.encoder.max_position_embeddings)

    @property
    def max_new_tokens(self) -> int:
        """The most tokens one answer may have: the decoder's positions less its start."""
        return int(self.model.config.decoder.max_position_embeddings) - 1

    def run(self, options: Sequence[Any], texts: list[str]) -> list[dict[str, Any]]:
        num_beams, max_new_tokens = options
        outputs = translate(self.model, self.tokenizer, texts,
                            max_source_length=self.max_source_tokens,
                            max_new_tokens=max_new_tokens, num_beams=num_beams,
                            batch_size=self.batch_size, device=self.device)
        return [{"text": text} for text in outputs]
