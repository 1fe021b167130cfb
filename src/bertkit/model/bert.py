"""The BERT encoder, read top to bottom as in the paper's figure.

Embeddings → N × (self-attention, add & norm, feed-forward, add & norm) → pooler.
No tokenization, no task logic, no losses: tensors in, an :class:`EncoderOutput` out.

Shape legend: B batch, T tokens, H hidden, N heads, D head dim (H / N), I intermediate,
V vocabulary, L layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bertkit.errors import InputError
from bertkit.model.config import BertConfig
from bertkit.model.outputs import EncoderOutput


def activation(name: str) -> Callable[[Tensor], Tensor]:
    """The feed-forward non-linearity named in a config (``hidden_act``)."""
    functions: dict[str, Callable[[Tensor], Tensor]] = {
        "gelu": F.gelu,  # exact erf form
        "gelu_new": partial(F.gelu, approximate="tanh"),
        "gelu_pytorch_tanh": partial(F.gelu, approximate="tanh"),
        "relu": F.relu,
        "silu": F.silu,
        "swish": F.silu,
    }
    return functions[name]


class Embeddings(nn.Module):
    """Sum of token, learned absolute position and segment embeddings, then LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.position = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type = (
            nn.Embedding(config.type_vocab_size, config.hidden_size)
            if config.type_vocab_size > 0 else None
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor | None, token_type_ids: Tensor | None,
                inputs_embeds: Tensor | None = None) -> Tensor:
        x = self.word(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, H)
        x = x + self.position.weight[: x.shape[1]]
        if self.token_type is not None:
            # Without segment ids every token is in segment 0, as in the reference models.
            x = x + (self.token_type.weight[0] if token_type_ids is None
                     else self.token_type(token_type_ids))
        return self.dropout(self.norm(x))


class SelfAttention(nn.Module):
    """Multi-head bidirectional self-attention with the output projection.

    Query, key and value come from one fused projection (one matrix multiply instead of
    three, which matters for short sequences); checkpoints store them apart and the name
    table splits and joins them. The fast path is ``scaled_dot_product_attention``; the
    explicit path computes the same thing step by step and returns the probabilities.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: Tensor, bias: Tensor | None,
                return_probs: bool = False) -> tuple[Tensor, Tensor | None]:
        B, T, H = x.shape
        q, k, v = (self.qkv(x)                                   # (B, T, 3H)
                   .view(B, T, 3, self.num_heads, self.head_dim)
                   .permute(2, 0, 3, 1, 4)                       # (3, B, N, T, D)
                   .unbind(0))
        dropout_p = self.dropout_p if self.training else 0.0
        probs = None
        if return_probs:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, N, T, T)
            if bias is not None:
                scores = scores + bias
            probs = scores.softmax(dim=-1)
            context = F.dropout(probs, dropout_p, self.training) @ v       # (B, N, T, D)
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p)
        context = context.transpose(1, 2).reshape(B, T, H)
        return self.output(context), probs


class FeedForward(nn.Module):
    """Position-wise up-projection, non-linearity, down-projection."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)
        self.act = activation(config.hidden_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(self.act(self.up(x)))  # (B, T, H) → (B, T, I) → (B, T, H)


class EncoderLayer(nn.Module):
    """One post-LN Transformer block: x = LN(x + Attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = SelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor, bias: Tensor | None,
                return_probs: bool = False) -> tuple[Tensor, Tensor | None]:
        attended, probs = self.attention(x, bias, return_probs)
        x = self.attention_norm(x + self.dropout(attended))
        x = self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))
        return x, probs


class Pooler(nn.Module):
    """tanh(dense(h[CLS])): the sentence vector the NSP and classification heads read."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))  # (B, H)


def padding_bias(attention_mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """Turn a (B, T) 1/0 mask into an additive (B, 1, 1, T) bias on attention scores.

    Returns ``None`` when nothing is padded, so attention takes its unmasked fast path.
    """
    if attention_mask is None or bool(attention_mask.all()):
        return None
    keep = attention_mask.bool()[:, None, None, :]
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(
        ~keep, torch.finfo(dtype).min)


def init_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation: N(0, std) weights, zero biases, unit LayerNorm, zero pad row."""
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


class Bert(nn.Module):
    """The BERT network: embeddings, ``num_hidden_layers`` encoder layers, optional pooler."""

    def __init__(self, config: BertConfig, *, add_pooler: bool = True):
        super().__init__()
        self.config = config.validate()
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = Pooler(config) if add_pooler else None
        self.apply(partial(init_weights, std=config.initializer_range))

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        *,
        inputs_embeds: Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool | Collection[int] = False,
    ) -> EncoderOutput:
        """Encode a batch (arguments in the order ``transformers`` uses).

        ``output_attentions`` is ``True`` for every layer's attention probabilities, or a
        collection of layer indices (negative counts from the end): only those layers take the
        explicit attention path, the rest stay on the fast one.
        """
        check_inputs(self.config, input_ids, token_type_ids, attention_mask, inputs_embeds)
        probe_layers = attention_layers(output_attentions, len(self.layers))
        x = self.embeddings(input_ids, token_type_ids, inputs_embeds)       # (B, T, H)
        bias = padding_bias(attention_mask, x.dtype)                         # (B, 1, 1, T)
        hidden_states = [x] if output_hidden_states else None
        attentions: list[Tensor | None] | None = [] if probe_layers else None
        for index, layer in enumerate(self.layers):
            x, probs = layer(x, bias, return_probs=index in probe_layers)
            if hidden_states is not None:
                hidden_states.append(x)
            if attentions is not None:
                attentions.append(probs)
        return EncoderOutput(
            last_hidden_state=x,
            pooler_output=self.pooler(x) if self.pooler is not None else None,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
            attentions=tuple(attentions) if attentions is not None else None,
        )


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
    if length > config.max_position_embeddings:
        raise InputError(
            f"sequence length {length} exceeds max_position_embeddings="
            f"{config.max_position_embeddings}; truncate the input (truncation=True, "
            f"max_length={config.max_position_embeddings}) or use a sliding window")
    if input_ids is not None:
        _check_id_range("input_ids", input_ids, config.vocab_size, "vocab_size",
                        "the tokenizer's vocabulary does not match the model")
    for name, tensor in (("token_type_ids", token_type_ids), ("attention_mask", attention_mask)):
        if tensor is not None and tuple(tensor.shape) != (batch, length):
            raise InputError(f"{name} has shape {tuple(tensor.shape)} but input_ids has "
                             f"{(batch, length)}")
    if token_type_ids is not None:
        _check_id_range("token_type_ids", token_type_ids, max(config.type_vocab_size, 1),
                        "type_vocab_size", "this model has no such segment")


def _check_id_range(name: str, ids: Tensor, limit: int, limit_name: str, hint: str) -> None:
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise InputError(f"{name} must be an integer tensor, got {ids.dtype}")
    if ids.numel() == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low >= 0 and high < limit:
        return
    bad = high if high >= limit else low
    row, col = (ids == bad).nonzero()[0].tolist()
    raise InputError(f"{name} holds {bad} at (batch {row}, position {col}) but {limit_name} "
                     f"is {limit}: {hint}")
