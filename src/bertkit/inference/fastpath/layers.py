"""The fast forms of the encoder and its layers: the same parameters, the same function, laid
out for CPU inference.

Three tricks, none of which changes what is computed (up to float rounding):

* packing (:mod:`.packing`): the position-wise work runs on the real tokens of a padded batch,
  attention in buckets of similar length (:mod:`.buckets`);
* bounded intermediates (:data:`BUFFER_BYTES`): Q/K/V projections split in three and the
  feed-forward network run in row blocks once their outputs would be large;
* fused kernels (:mod:`.prepacked`): with prepacked linears, residual adds and the activation
  become oneDNN post-ops of the matrix multiplies.

The classes subclass the core ones and add no state, so :func:`bertkit.inference.fastpath.
to_fast_form` turns a core module into its fast form by changing its class in place; state
dicts, shared (ALBERT) layers and tied weights are untouched.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from bertkit.inference.fastpath.packing import Packing, packing_for
from bertkit.inference.fastpath.prepacked import PrepackedLinear, residual_projection
from bertkit.model.bert import Bert, EncoderLayer, FeedForward
from bertkit.model.inputs import attention_layers, padding_bias
from bertkit.model.outputs import EncoderOutput

BUFFER_BYTES = 24 * 2**20
"""Largest intermediate tensor a layer creates at once (bytes).

glibc serves every allocation above 32 MiB (its largest mmap threshold) with fresh pages from
the kernel, and touching them costs page faults on every call: measured on the project's 2-core
VM, filling a fresh 33 MiB tensor takes ~25 ms, a 31 MiB one ~1 ms (heap memory, re-used).
A bert-base layer on 4,096 tokens would create two 48 MiB feed-forward tensors and a 36 MiB
fused Q/K/V tensor; below this limit the same work is done in pieces that stay on the heap.
"""


class FastBert(Bert):
    """:class:`Bert` that runs its layers on the real tokens only when that pays."""

    unpad_min_padding: float = 0.1
    """Share of padded positions from which the layers run on real tokens only (see
    :class:`Packing` and :func:`packing_for`). Set above 1 to always run padded."""

    unpad_min_saved_flops: float = 1e7
    """Least matrix-multiply work per layer (FLOPs) that packing must save to be used."""

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, *, inputs_embeds: Tensor | None = None,
                output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False,
                head_mask: Sequence[Tensor] | Tensor | None = None) -> EncoderOutput:
        """As :meth:`Bert.forward`; packed, padded positions of ``last_hidden_state`` and the
        layer ``hidden_states`` hold zeros and the attention rows of padded queries spread
        evenly over the real keys (no reader should use those: the reference implementation
        fills them with values computed from pad tokens)."""
        h, i = self.config.hidden_size, self.config.intermediate_size
        packing = packing_for(attention_mask, self.unpad_min_padding,
                              2.0 * (4 * h * h + 2 * h * i), self.unpad_min_saved_flops)
        if packing is None:
            return super().forward(input_ids, attention_mask, token_type_ids,
                                   inputs_embeds=inputs_embeds,
                                   output_hidden_states=output_hidden_states,
                                   output_attentions=output_attentions, head_mask=head_mask)
        probe_layers = attention_layers(output_attentions, len(self.layers))
        x = self.embeddings(input_ids, token_type_ids, inputs_embeds)       # (B, T, H)
        bias = padding_bias(attention_mask, x.dtype)                         # (B, 1, 1, T)
        hidden_states = [x] if output_hidden_states else None
        attentions: list[Tensor | None] | None = [] if probe_layers else None
        x = packing.pack(x)                                                  # (R, H)
        for index, layer in enumerate(self.layers):
            x, probs = layer(x, bias, return_probs=index in probe_layers, packing=packing,
                             head_mask=None if head_mask is None else head_mask[index])
            if hidden_states is not None:
                hidden_states.append(packing.unpack(x))
            if attentions is not None:
                attentions.append(probs)
        x = hidden_states[-1] if hidden_states is not None else packing.unpack(x)
        return self.output(x, hidden_states, attentions)


class FastEncoderLayer(EncoderLayer):
    """:class:`EncoderLayer` on padded (B, T, H) or packed (R, H) rows, with bounded
    intermediates and fused residual adds."""

    def forward(self, x: Tensor, bias: Tensor | None, return_probs: bool = False,
                head_mask: Tensor | None = None, *,
                packing: Packing | None = None) -> tuple[Tensor, Tensor | None]:
        """(B, T, H) → (B, T, H), or packed (R, H) → (R, H): everything but attention is
        position-wise, so only attention sees the (B, T, ·) layout."""
        attention = self.attention
        q, k, v = split_projection(attention.qkv, self.attention_norm(x) if self.pre_norm else x)
        probs = None
        if packing is None:
            context, probs = attention.attend(q, k, v, bias, return_probs, head_mask)
        elif not return_probs:
            context = packing.attend(attention.attend, q, k, v, head_mask)      # (R, H)
        else:  # the probabilities are returned (B, N, T, T): attend on the padded layout
            q, k, v = packing.unpack(q), packing.unpack(k), packing.unpack(v)  # (B, T, H)
            context, probs = attention.attend(q, k, v, bias, True, head_mask)
            context = packing.pack(context)                                     # (R, H)
        x = residual_projection(attention.output, context, x, self.dropout)
        if self.pre_norm:  # x + FFN(LN(x)); post-LN: LN(x + FFN(x)), after LN(x + Attn(x))
            return feed_forward_blocks(self.feed_forward, x, self.dropout,
                                       self.feed_forward_norm), probs
        x = feed_forward_blocks(self.feed_forward, self.attention_norm(x), self.dropout)
        return self.feed_forward_norm(x), probs


def split_projection(qkv: torch.nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Query, key and value of every row: one matrix multiply while the (…, 3H) result fits
    :data:`BUFFER_BYTES` (fewer, larger calls are faster on short inputs), three beyond it (a
    larger result would be page-faulted in afresh on every call). H is the projection's own
    width, not the hidden size: a layer with pruned heads projects to fewer features."""
    H = qkv.out_features // 3
    whole = not isinstance(qkv, (torch.nn.Linear, PrepackedLinear))  # int8: no float weight
    if whole or x.numel() // x.shape[-1] * 3 * H * x.element_size() <= BUFFER_BYTES:
        q, k, v = qkv(x).split(H, dim=-1)
        return q, k, v
    pairs = zip(qkv.weight.split(H), qkv.bias.split(H), strict=True)
    q, k, v = (F.linear(x, w, b) for w, b in pairs)
    return q, k, v


def feed_forward_blocks(ffn: FeedForward, x: Tensor, dropout: torch.nn.Dropout,
                        norm: torch.nn.Module | None = None) -> Tensor:
    """x + dropout(FFN(x)), or x + dropout(FFN(norm(x))) in a pre-LN layer: (…, H) → (…, H),
    in row blocks whose (rows, I) intermediates fit :data:`BUFFER_BYTES`: the rows are
    independent, and a larger intermediate would be page-faulted in afresh twice per call (the
    up-projection and the activation)."""
    rows = x.numel() // x.shape[-1]
    pieces = -(-rows * ffn.up.out_features * x.element_size() // BUFFER_BYTES)
    if pieces <= 1:
        return _feed_forward_block(ffn, x, dropout, norm)
    flat = x.reshape(rows, x.shape[-1])
    return torch.cat([_feed_forward_block(ffn, block, dropout, norm)
                      for block in flat.tensor_split(pieces)]).view(x.shape)


def _feed_forward_block(ffn: FeedForward, x: Tensor, dropout: torch.nn.Dropout,
                        norm: torch.nn.Module | None) -> Tensor:
    hidden = ffn.up(x if norm is None else norm(x))               # (…, H) → (…, I)
    if not (isinstance(ffn.up, PrepackedLinear) and ffn.up.post_op[0] != "none"):
        hidden = ffn.act(hidden)                                  # not fused into ``up``
    return residual_projection(ffn.down, hidden, x, dropout)     # (…, I) → (…, H)
