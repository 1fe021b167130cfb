"""AdamW with the parameters that must not decay left out of weight decay.

Weight decay pulls weights towards zero. That regularises matrices, but for a bias or the gain
of a normalisation layer zero is not a neutral value (a LayerNorm with gain 0 outputs nothing),
so BERT's recipe exempts them. The rule here, the same as BERT's and Hugging Face's in effect:

* a parameter with fewer than 2 dimensions (every bias, every LayerNorm/RMSNorm gain and
  shift) does not decay;
* nor does one whose name contains ``bias`` or ``norm`` (any case), which catches
  multi-dimensional biases and norms that keep their weights in a matrix;
* everything else (linear weights, embedding tables) decays.

Parameters with ``requires_grad=False`` are left out of the optimizer altogether.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def is_no_decay(name: str, param: torch.Tensor) -> bool:
    """Whether weight decay must skip this parameter (see the module docstring)."""
    lowered = name.lower()
    return param.ndim < 2 or "bias" in lowered or "norm" in lowered


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW parameter groups, decayed then not, each with a ``names`` list for inspection.

    ``named_parameters`` lists a tied parameter (the MLM decoder sharing the word embedding)
    once, so no tensor is optimised twice.
    """
    decay: list[tuple[str, nn.Parameter]] = []
    no_decay: list[tuple[str, nn.Parameter]] = []
    for name, param in module.named_parameters():
        if param.requires_grad:
            (no_decay if is_no_decay(name, param) else decay).append((name, param))
    return [
        {"params": [p for _, p in decay], "names": [n for n, _ in decay],
         "weight_decay": weight_decay},
        {"params": [p for _, p in no_decay], "names": [n for n, _ in no_decay],
         "weight_decay": 0.0},
    ]


def build_optimizer(
    module: nn.Module,
    *,
    learning_rate: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-6,
) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`; the fused CUDA kernel when the module lives on a GPU."""
    params = list(module.parameters())
    fused = bool(params) and all(p.device.type == "cuda" for p in params)
    return torch.optim.AdamW(
        param_groups(module, weight_decay),
        lr=learning_rate,
        betas=tuple(betas),
        eps=eps,
        fused=fused or None,
    )
