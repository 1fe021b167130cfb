"""BERT's weight initialisation, apart from the architecture it initialises: N(0, std) weights,
zero biases, unit LayerNorm, a zero padding row, and DistilBERT's fixed sinusoidal positions."""

from __future__ import annotations

import torch
from torch import nn


def init_weights(module: nn.Module, std: float) -> None:
    """Initialise one module as BERT does (``model.apply(partial(init_weights, std=...))``);
    an embeddings module whose config asks for sinusoidal positions gets them, frozen."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, 0.0, std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif getattr(module, "sinusoidal", False) and isinstance(getattr(module, "position", None),
                                                             nn.Embedding):
        sinusoidal_positions(module.position.weight)


def sinusoidal_positions(table: torch.Tensor) -> None:
    """Fill a (P, E) position table with sine/cosine positions (Vaswani et al.) and freeze it
    (``sinusoidal_pos_embds``: DistilBERT's positions are not trained)."""
    rows, width = table.shape
    position = torch.arange(rows, dtype=torch.float64)[:, None]
    exponent = 2 * (torch.arange(width, dtype=torch.float64) // 2) / width
    angle = position / 10000 ** exponent                               # (P, E)
    with torch.no_grad():
        table[:, 0::2] = angle[:, 0::2].sin().to(table.dtype)
        table[:, 1::2] = angle[:, 1::2].cos().to(table.dtype)
    table.requires_grad_(False)
