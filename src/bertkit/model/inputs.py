"""Validation of encoder inputs, done once where a public model class is called.

It reads tensor values (the id ranges), which waits for the device; the encoder itself never
does, so its forward pass runs without host synchronisation and compiles as one graph. Also
here: :func:`attention_layers` and :func:`layer_head_masks`, which resolve the
``output_attentions`` and ``head_mask`` arguments, and :func:`padding_bias` and
:func:`causal_bias`, which turn masks into additive attention biases.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
from torch import Tensor

from bertkit.errors import InputError
from bertkit.model.config import BertConfig


def check_inputs(config: BertConfig, input_ids: Tensor | None, token_type_ids: Tensor | None,
                 attention_mask: Tensor | None, inputs_embeds: Tensor | None) -> None:
    """Reject inputs the model cannot embed with a message that says what to change,
    instead of the opaque ``index out of range in self`` from deep inside PyTorch."""
    if (input_ids is None) == (inputs_embeds is None):
        raise InputError("pass exactly one of input_ids or inputs_embeds")
    reference = input_ids if input_ids is not None else inputs_embeds
    if reference.dim() != (2 if input_ids is not None else 3):
        raise InputError(f"input_ids must have shape (batch, tokens), got {tuple(reference.shape)}")
    batch, length = reference.shape[:2]
    if length > config.max_tokens:
        reserved = config.max_position_embeddings - config.max_tokens
        below = f" less the {reserved} rows before the first position" if reserved else ""
        raise InputError(
            f"sequence length {length} exceeds max_position_embeddings="
            f"{config.max_position_embeddings}{below}; truncate the input (truncation=True, "
            f"max_length={config.max_tokens}) or use a sliding window")
    if input_ids is not None:
        _check_id_range("input_ids", input_ids, config.vocab_size, "vocab_size",
                        "the tokenizer's vocabulary does not match the model")
    for name, tensor in (("token_type_ids", token_type_ids), ("attention_mask", attention_mask)):
        if tensor is not None and tuple(tensor.shape) != (batch, length):
            raise InputError(f"{name} has shape {tuple(tensor.shape)} but input_ids has "
                             f"{(batch, length)}")
    if token_type_ids is not None and config.type_vocab_size > 0:
        # A model without segment embeddings (DistilBERT) ignores the ids a tokenizer made.
        _check_id_range("token_type_ids", token_type_ids, max(config.type_vocab_size, 1),
                        "type_vocab_size", "this model has no such segment")


def _check_id_range(name: str, ids: Tensor, limit: int, limit_name: str, hint: str) -> None:
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise InputError(f"{name} must be an integer tensor, got {ids.dtype}")
    bad = out_of_range(ids, limit)
    if bad is None:
        return
    row, col = (ids == bad).nonzero()[0].tolist()
    raise InputError(f"{name} holds {bad} at (batch {row}, position {col}) but {limit_name} "
                     f"is {limit}: {hint}")


def out_of_range(ids: Tensor, limit: int) -> int | None:
    """A value of ``ids`` outside ``[0, limit)`` (the largest if one is too large, else the
    smallest), or ``None`` when all are ids of a table of ``limit`` rows."""
    if ids.numel() == 0:
        return None
    low, high = int(ids.min()), int(ids.max())
    if low >= 0 and high < limit:
        return None
    return high if high >= limit else low


def attention_layers(request: bool | Collection[int], num_layers: int) -> frozenset[int]:
    """Resolve ``output_attentions`` to a set of layer indices, checking the range."""
    if request is True:
        return frozenset(range(num_layers))
    if request is False or request is None:
        return frozenset()
    resolved = set()
    for index in request:
        if not -num_layers <= index < num_layers:
            raise InputError(f"attention layer index {index} is out of range for a model "
                             f"with {num_layers} layers")
        resolved.add(index % num_layers)
    return frozenset(resolved)


def layer_head_masks(head_mask: Sequence[Tensor] | Tensor | None, config: BertConfig
                     ) -> Sequence[Tensor] | None:
    """``head_mask`` as one (N_l,) mask per layer, the form the encoder and decoder take.

    ``transformers`` 4's spellings: (N,) is the same mask for every layer, (L, N) one row per
    layer; a model with pruned heads takes a sequence of L tensors, each as long as its layer's
    heads. Only shapes are read, never values, so this runs inside a compiled graph too.
    """
    if head_mask is None:
        return None
    layers = config.num_hidden_layers
    if isinstance(head_mask, Tensor) and head_mask.dim() == 1:
        head_mask = [head_mask] * layers
    if (isinstance(head_mask, Tensor) and head_mask.dim() != 2) or len(head_mask) != layers:
        shape = tuple(head_mask.shape) if isinstance(head_mask, Tensor) else len(head_mask)
        raise InputError(f"head_mask must be (heads,), (layers, heads) or one mask per layer "
                         f"for the model's {layers} layers, got {shape}")
    for layer, mask in enumerate(head_mask):
        if mask.shape != (config.kept_heads(layer),):
            raise InputError(f"head_mask of layer {layer} has shape {tuple(mask.shape)} but "
                             f"the layer has {config.kept_heads(layer)} heads")
    return head_mask


def padding_bias(attention_mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """Turn a (B, T) 1/0 mask into an additive (B, 1, 1, T) bias on attention scores, whatever
    its values: asking whether anything is padded would stall the forward pass on a host
    synchronisation and break ``torch.compile`` graphs."""
    if attention_mask is None:
        return None
    keep = attention_mask.bool()[:, None, None, :]
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(
        ~keep, torch.finfo(dtype).min)


def causal_bias(bias: Tensor | None, queries: int, keys: int, dtype: torch.dtype,
                device: torch.device) -> Tensor:
    """``bias`` with every key after its query hidden: (·, T, S), the last T of S positions
    being the queries (earlier keys come from a cache)."""
    allowed = torch.ones(queries, keys, dtype=torch.bool, device=device).tril(keys - queries)
    if bias is None:
        bias = torch.zeros(queries, keys, dtype=dtype, device=device)
    return bias.masked_fill(~allowed, torch.finfo(dtype).min)
