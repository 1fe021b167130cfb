"""The BERT encoder, read top to bottom as in the paper's figure.

Embeddings → N × (self-attention, add & norm, feed-forward, add & norm) → pooler.
No tokenization, no task logic, no losses: tensors in, an :class:`EncoderOutput` out.

The other families are switches on this one network (``config.family``): RoBERTa counts
positions from past the padding index, DistilBERT has no segments and no pooler, ALBERT and
ELECTRA embed into E < H dimensions and project up, ALBERT reuses layer groups across depth.

Shape legend: B batch, T tokens, E embedding width, H hidden, N heads, D head dim (H / N),
I intermediate, V vocabulary, L layers.
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
from bertkit.model.prepacked import PrepackedLinear, residual_projection

BUFFER_BYTES = 24 * 2**20
"""Largest intermediate tensor a layer creates at once (bytes).

glibc serves every allocation above 32 MiB (its largest mmap threshold) with fresh pages from
the kernel, and touching them costs page faults on every call: measured on the project's 2-core
VM, filling a fresh 33 MiB tensor takes ~25 ms, a 31 MiB one ~1 ms (heap memory, re-used).
A bert-base layer on 4,096 tokens would create two 48 MiB feed-forward tensors and a 36 MiB
fused Q/K/V tensor; below this limit the same work is done in pieces that stay on the heap.
"""


def activation(name: str) -> Callable[[Tensor], Tensor]:
    """The feed-forward non-linearity named in a config (``hidden_act``)."""
    functions: dict[str, Callable[[Tensor], Tensor]] = {
        "gelu": F.gelu,  # exact erf form
        "gelu_new": partial(F.gelu, approximate="tanh"),
        "gelu_pytorch_tanh": partial(F.gelu, approximate="tanh"),
        "relu": F.relu,
        "silu": F.silu,
        "swish": F.silu,
        "tanh": torch.tanh,
    }
    return functions[name]


class Embeddings(nn.Module):
    """Sum of token, learned absolute position and segment embeddings, then LayerNorm; then,
    for ALBERT and ELECTRA, a projection from the embedding width E up to H."""

    def __init__(self, config: BertConfig):
        super().__init__()
        width = config.embedding_dim
        self.word = nn.Embedding(config.vocab_size, width, config.pad_token_id)
        self.after_padding = config.family.positions_after_padding
        self.pad_token_id = config.pad_token_id
        self.position = nn.Embedding(config.max_position_embeddings, width,
                                     config.pad_token_id if self.after_padding else None)
        self.sinusoidal = config.sinusoidal_pos_embds
        self.token_type = (
            nn.Embedding(config.type_vocab_size, width) if config.type_vocab_size > 0 else None
        )
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.projection = (nn.Linear(width, config.hidden_size)
                           if config.projects_embeddings else None)

    def forward(self, input_ids: Tensor | None, token_type_ids: Tensor | None,
                inputs_embeds: Tensor | None = None) -> Tensor:
        x = self.word(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, E)
        if not self.after_padding:
            x = x + self.position.weight[: x.shape[1]]
        elif input_ids is None:  # no ids to find padding in: every position is real
            start = self.pad_token_id + 1
            x = x + self.position.weight[start: start + x.shape[1]]
        else:
            # RoBERTa: real tokens count from pad_token_id + 1, pad tokens sit at pad_token_id.
            real = input_ids.ne(self.pad_token_id).long()                 # (B, T)
            x = x + self.position(real.cumsum(dim=1) * real + self.pad_token_id)
        if self.token_type is not None:
            # Without segment ids every token is in segment 0, as in the reference models.
            x = x + (self.token_type.weight[0] if token_type_ids is None
                     else self.token_type(token_type_ids))
        x = self.dropout(self.norm(x))
        return x if self.projection is None else self.projection(x)  # (B, T, H)

    def reset_sinusoidal(self) -> None:
        """DistilBERT's fixed sine/cosine positions (``sinusoidal_pos_embds``), not trained."""
        table = self.position.weight
        rows, width = table.shape
        position = torch.arange(rows, dtype=torch.float64)[:, None]
        exponent = 2 * (torch.arange(width, dtype=torch.float64) // 2) / width
        angle = position / 10000 ** exponent                               # (P, E)
        with torch.no_grad():
            table[:, 0::2] = angle[:, 0::2].sin().to(table.dtype)
            table[:, 1::2] = angle[:, 1::2].cos().to(table.dtype)
        table.requires_grad_(False)


class SelfAttention(nn.Module):
    """Multi-head bidirectional self-attention with the output projection.

    Query, key and value come from one fused projection (one matrix multiply instead of
    three, which matters for short sequences; see :meth:`project` for long inputs);
    checkpoints store them apart and the name table splits and joins them. The fast path is
    ``scaled_dot_product_attention``; the explicit path computes the same thing step by step
    and returns the probabilities.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor, bias: Tensor | None, return_probs: bool = False, *,
                packing: Packing | None = None) -> tuple[Tensor, Tensor | None]:
        """x + dropout(attention(x)): (B, T, H) → (B, T, H); or, with ``packing``, real
        tokens (R, H) → (R, H).

        Packed, only the projections run on the R real tokens: attention needs each sequence
        whole, so the projected q, k, v are laid out as (B, T, ·) around it (zeros at padding,
        which the padding bias hides from every real query).
        """
        H = self.num_heads * self.head_dim
        q, k, v = self.project(x)                                # (B, T, H) or (R, H) each
        if packing is not None:
            q, k, v = packing.unpack(q), packing.unpack(k), packing.unpack(v)  # (B, T, H)
        B, T, _ = q.shape
        q, k, v = (t.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
                   for t in (q, k, v))                           # (B, N, T, D) each
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
        if packing is not None:
            context = packing.pack(context)                      # (R, H)
        return residual_projection(self.output, context, x, self.dropout), probs

    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Query, key and value of every row: one matrix multiply while the (…, 3H) result
        fits :data:`BUFFER_BYTES` (fewer, larger calls are faster on short inputs), three
        beyond it (a larger result would be page-faulted in afresh on every call)."""
        H = self.num_heads * self.head_dim
        if x.numel() * 3 * x.element_size() <= BUFFER_BYTES:
            return self.qkv(x).split(H, dim=-1)
        weight, bias = self.qkv.weight.split(H), self.qkv.bias.split(H)
        q, k, v = (F.linear(x, w, b) for w, b in zip(weight, bias, strict=True))
        return q, k, v


class FeedForward(nn.Module):
    """Position-wise up-projection, non-linearity, down-projection; like
    :class:`SelfAttention`, it returns its input plus its (dropped-out) output."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)
        self.hidden_act = config.hidden_act
        self.act: Callable[[Tensor], Tensor] | None = activation(config.hidden_act)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor) -> Tensor:
        """x + dropout(FFN(x)): (…, H) → (…, H), in row blocks whose (rows, I) intermediates
        fit :data:`BUFFER_BYTES`: the rows are independent, and a larger intermediate would be
        page-faulted in afresh twice per call (the up-projection and the activation)."""
        rows = x.numel() // x.shape[-1]
        pieces = -(-rows * self.up.out_features * x.element_size() // BUFFER_BYTES)
        if pieces <= 1:
            return self._block(x)
        flat = x.reshape(rows, x.shape[-1])
        return torch.cat([self._block(block) for block in flat.tensor_split(pieces)]
                         ).view(x.shape)

    def _block(self, x: Tensor) -> Tensor:
        hidden = self.up(x)                                       # (…, H) → (…, I)
        if self.act is not None:
            hidden = self.act(hidden)
        return residual_projection(self.down, hidden, x, self.dropout)  # (…, I) → (…, H)

    def fuse_activation(self) -> bool:
        """Move the non-linearity into a prepacked up-projection as a oneDNN post-op (one
        pass over the (…, I) intermediate fewer); False when ``up`` is not prepacked or
        oneDNN has no exact post-op for ``hidden_act``."""
        if self.act is None:
            return True
        if isinstance(self.up, PrepackedLinear) and self.up.with_activation(self.hidden_act):
            self.act = None
            return True
        return False


class EncoderLayer(nn.Module):
    """One post-LN Transformer block: x = LN(x + Attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = SelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: Tensor, bias: Tensor | None, return_probs: bool = False, *,
                packing: Packing | None = None) -> tuple[Tensor, Tensor | None]:
        """(B, T, H) → (B, T, H), or packed real tokens (R, H) → (R, H) (see :class:`Packing`):
        everything but attention is position-wise, so it runs on whichever rows it is given."""
        attended, probs = self.attention(x, bias, return_probs, packing=packing)  # x + Attn(x)
        x = self.attention_norm(attended)
        x = self.feed_forward_norm(self.feed_forward(x))                      # x + FFN(x)
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

    The bias is built whenever a mask is given, whatever its values: asking the tensor whether
    anything is padded would stall the forward pass on a host synchronisation and break
    ``torch.compile`` graphs.
    """
    if attention_mask is None:
        return None
    keep = attention_mask.bool()[:, None, None, :]
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(
        ~keep, torch.finfo(dtype).min)


class Packing:
    """Where the real tokens of a padded batch are, to run position-wise work on them alone.

    A padded batch spends most of its time on rows nobody reads: the Q/K/V and output
    projections, the feed-forward network, residual adds and LayerNorms all work position by
    position, so with 66 % padding (64 real sentences of 10..128 tokens padded to the longest)
    two thirds of every layer's matrix multiplies are waste. Packed, those run on a (R, ·)
    matrix of the R real tokens; only attention, which needs each sequence whole, sees the
    (B, T, ·) layout. Real positions get the same values as on the padded path (up to float
    rounding); padded positions of the outputs hold zeros instead of the padded path's
    (meaningless) values.
    """

    def __init__(self, keep: Tensor):
        self.batch, self.length = keep.shape
        self.index = keep.flatten().nonzero().squeeze(1)  # (R,) flat positions b·T + t

    def pack(self, x: Tensor) -> Tensor:
        """(B, T, C) → (R, C): the rows of real tokens, in batch-major order."""
        return x.reshape(self.batch * self.length, x.shape[-1]).index_select(0, self.index)

    def unpack(self, x: Tensor) -> Tensor:
        """(R, C) → (B, T, C), zeros at padded positions."""
        out = x.new_zeros(self.batch * self.length, x.shape[-1])
        return out.index_copy_(0, self.index, x).view(self.batch, self.length, x.shape[-1])


def packing_for(attention_mask: Tensor | None, min_padding: float,
                flops_per_token: float, min_saved_flops: float) -> Packing | None:
    """A :class:`Packing` when it pays, else ``None``.

    It pays when at least ``min_padding`` of the batch is padding (a conservative share: the
    gather and scatters are memory-bound copies costing a few per cent of a layer, the saved
    matrix multiplies are that share of it) and the padded positions carry at least
    ``min_saved_flops`` of a layer's position-wise matrix multiplies (``flops_per_token``
    each): packing adds a few small operations per layer, tens of µs, which three padded tokens
    of MiniLM repay but hundreds of a toy model (hidden 32) would not.
    Batches whose position 0 is padded (left padding) stay on the padded path: the pooler
    reads position 0 of every row, and there the padded path's value is what the reference
    implementation returns.
    """
    if (attention_mask is None or min_padding > 1.0
            or attention_mask.numel() * flops_per_token < min_saved_flops):
        return None
    keep = attention_mask.bool()                                           # (B, T)
    padded = keep.numel() - int(keep.sum())
    if padded == 0 or padded < min_padding * keep.numel() \
            or padded * flops_per_token < min_saved_flops:
        return None
    if not bool(keep[:, 0].all()):
        return None
    return Packing(keep)


def init_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation: N(0, std) weights, zero biases, unit LayerNorm, zero pad row
    (and DistilBERT's sinusoidal positions where the config asks for them)."""
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
    elif isinstance(module, Embeddings) and module.sinusoidal:
        module.reset_sinusoidal()


class Bert(nn.Module):
    """The BERT network: embeddings, ``num_hidden_layers`` encoder layers, optional pooler.

    ``layers`` holds one entry per depth step. With ALBERT's sharing several entries are the
    same module (``parameters()`` counts it once; ``state_dict()`` names it at every step it
    runs, and the checkpoint name table sends all of them to the one stored group).
    """

    unpad_min_padding: float = 0.1
    """Share of padded positions from which the layers run on real tokens only (see
    :class:`Packing` and :func:`packing_for`). Set above 1 to always run padded."""

    unpad_min_saved_flops: float = 1e7
    """Least matrix-multiply work per layer (FLOPs) that packing must save to be used."""

    def __init__(self, config: BertConfig, *, add_pooler: bool = True):
        super().__init__()
        self.config = config.validate()
        self.embeddings = Embeddings(config)
        order = config.layer_order()
        distinct = [EncoderLayer(config) for _ in range(max(order) + 1)]
        self.layers = nn.ModuleList(distinct[index] for index in order)
        self.pooler = Pooler(config) if add_pooler and config.family.pooler else None
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

        When a large share of the batch is padding (``unpad_min_padding``), the layers run on
        the real tokens only (:class:`Packing`): outputs at real positions are unchanged, and
        at padded positions ``last_hidden_state`` and the layer ``hidden_states`` hold zeros,
        the attention rows of padded queries spread evenly over the real keys. (No reader
        should use those: the reference implementation fills them with values computed from
        pad tokens.)
        """
        probe_layers = attention_layers(output_attentions, len(self.layers))
        x = self.embeddings(input_ids, token_type_ids, inputs_embeds)       # (B, T, H)
        bias = padding_bias(attention_mask, x.dtype)                         # (B, 1, 1, T)
        packing = None
        if bias is not None and self.unpad_min_padding <= 1.0:
            h, i = self.config.hidden_size, self.config.intermediate_size
            packing = packing_for(attention_mask, self.unpad_min_padding,
                                  2.0 * (4 * h * h + 2 * h * i), self.unpad_min_saved_flops)
        hidden_states = [x] if output_hidden_states else None
        attentions: list[Tensor | None] | None = [] if probe_layers else None
        if packing is not None:
            x = packing.pack(x)                                              # (R, H)
        for index, layer in enumerate(self.layers):
            x, probs = layer(x, bias, return_probs=index in probe_layers, packing=packing)
            if hidden_states is not None:
                hidden_states.append(x if packing is None else packing.unpack(x))
            if attentions is not None:
                attentions.append(probs)
        if packing is not None:
            x = hidden_states[-1] if hidden_states is not None else packing.unpack(x)
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
    if ids.numel() == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low >= 0 and high < limit:
        return
    bad = high if high >= limit else low
    row, col = (ids == bad).nonzero()[0].tolist()
    raise InputError(f"{name} holds {bad} at (batch {row}, position {col}) but {limit_name} "
                     f"is {limit}: {hint}")
