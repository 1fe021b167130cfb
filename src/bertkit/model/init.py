"""BERT's weight initialisation, apart from the architecture it initialises: N(0, std) weights,
zero biases, unit LayerNorm, a zero padding row, and DistilBERT's fixed sinusoidal positions.

Loading a checkpoint skips the random draws for the weights it then overwrites
(:func:`random_init_skipped`, :func:`initialise_fresh`): drawing MiniLM's 23M normal and
uniform numbers twice (PyTorch's default, then BERT's) was most of ``from_pretrained``'s time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


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


_RANDOM_FILLS = frozenset({
    nn.init.normal_, nn.init.uniform_, nn.init.trunc_normal_, nn.init.kaiming_uniform_,
    nn.init.kaiming_normal_, nn.init.xavier_uniform_, nn.init.xavier_normal_,
    torch.Tensor.normal_, torch.Tensor.uniform_})
"""The random fills PyTorch's layers and :func:`init_weights` draw with. A mode sees the
outermost call only (``kaiming_uniform_``, not the ``uniform_`` inside it)."""


class _ParameterDrawsSkipped(TorchFunctionMode):
    """A random fill of an ``nn.Parameter`` does nothing; everything else runs. A torch
    function mode is local to its thread, so a model built at the same time elsewhere is
    initialised as usual."""

    def __torch_function__(self, func: Callable[..., Any], types: Collection[type],
                           args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
                           ) -> Any:
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor")
        if func in _RANDOM_FILLS and isinstance(target, nn.Parameter):
            return target
        return func(*args, **kwargs)


@contextmanager
def random_init_skipped() -> Iterator[None]:
    """Build a model whose random weights are left as allocated (uninitialised memory), for a
    checkpoint to overwrite. Every parameter not then loaded must go through
    :func:`initialise_fresh`. Constant fills (LayerNorm's ones, zero biases, the MLM bias,
    sinusoidal positions) and buffers are made as usual."""
    with _ParameterDrawsSkipped():
        yield


def initialise_fresh(model: nn.Module, names: Collection[str], std: float) -> None:
    """Initialise the parameters ``names`` (``state_dict`` names) of a model built under
    :func:`random_init_skipped` as construction would have: the layer's own
    ``reset_parameters``, then :func:`init_weights`. Other parameters of the same layers (loaded
    from the checkpoint) keep their values."""
    owners: dict[str, list[str]] = {}
    for name in names:
        owner, _, leaf = name.rpartition(".")
        owners.setdefault(owner, []).append(leaf)
    for owner, leaves in owners.items():
        module = model.get_submodule(owner)
        kept = {leaf: p.detach().clone() for leaf, p in module.named_parameters(recurse=False)
                if leaf not in leaves}
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
        init_weights(module, std)
        with torch.no_grad():
            for leaf, value in kept.items():
                getattr(module, leaf).copy_(value)
