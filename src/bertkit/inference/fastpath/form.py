"""Turning a core model into its fast form, in place: :func:`to_fast_form`."""

from __future__ import annotations

from typing import TypeVar

from torch import nn

from bertkit.inference.fastpath.layers import FastBert, FastEncoderLayer
from bertkit.inference.fastpath.prepacked import PrepackedLinear, prepack_linears
from bertkit.model.bert import Bert, EncoderLayer, FeedForward

M = TypeVar("M", bound=nn.Module)

FAST_FORMS: dict[type[nn.Module], type[nn.Module]] = {
    Bert: FastBert, EncoderLayer: FastEncoderLayer}
"""Each core module class and the fast subclass it becomes (same state, faster forward)."""


def to_fast_form(model: M, *, prepack: bool = True) -> M:
    """Turn ``model`` (a public model class, or a bare :class:`Bert`) into its fast form, in
    place, and return it.

    The encoder and its layers change class to their fast subclasses; with ``prepack`` every
    untied float32 CPU linear layer gets its weight laid out once for oneDNN and, where oneDNN
    has the exact activation, the feed-forward non-linearity joins the up-projection. Prepacked
    layers compute no gradients (``prepack=False`` keeps a model trainable); off CPU or
    float32 prepacking leaves the layers as they are. Parameters, state dict and saved
    checkpoints do not change.
    """
    for module in model.modules():
        fast = FAST_FORMS.get(type(module))
        if fast is not None:
            module.__class__ = fast
    if prepack:
        prepack_linears(model)
        for module in model.modules():
            if isinstance(module, FeedForward) and isinstance(module.up, PrepackedLinear):
                module.up.with_activation(module.hidden_act)
    return model
