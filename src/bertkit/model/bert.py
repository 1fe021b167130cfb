"""The BERT encoder, read top to bottom as in the paper's figure.

Embeddings → N × (self-attention, add & norm, feed-forward, add & norm) → pooler.
No tokenization, no task logic, no losses, no speed tricks: tensors in, an
:class:`EncoderOutput` out. (The CPU fast form of these modules, for inference, is
:mod:`bertkit.inference.fastpath`; it computes the same function.)

The other families are switches on this one network (``config.family``): RoBERTa counts
positions from past the padding index, DistilBERT has no segments and no pooler, ALBERT and
ELECTRA embed into E < H dimensions and project up, ALBERT reuses layer groups across depth.

Shape legend: B batch, T tokens (queries), S keys, E embedding width, H hidden, N heads,
D head dim (H / N), I intermediate, V vocabulary, L layers.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bertkit.model.config import ACTIVATIONS, BertConfig
from bertkit.model.init import init_weights
from bertkit.model.inputs import attention_layers, causal_bias, padding_bias
from bertkit.model.outputs import EncoderOutput

KeyValue = tuple[Tensor, Tensor]
"""Projected keys and values of the positions attended so far, (B, S, H) each."""


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
        types = config.type_vocab_size
        self.token_type = nn.Embedding(types, width) if types > 0 else None
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        projects = config.projects_embeddings
        self.projection = nn.Linear(width, config.hidden_size) if projects else None

    def forward(self, input_ids: Tensor | None, token_type_ids: Tensor | None,
                inputs_embeds: Tensor | None = None, past_length: int = 0) -> Tensor:
        """``past_length``: positions already decoded (their keys are cached); the tokens
        given continue from there."""
        x = self.word(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, E)
        if not self.after_padding:
            x = x + self.position.weight[past_length: past_length + x.shape[1]]
        elif input_ids is None:  # no ids to find padding in: every position is real
            start = self.pad_token_id + 1 + past_length
            x = x + self.position.weight[start: start + x.shape[1]]
        else:
            # RoBERTa: real tokens count from pad_token_id + 1, pad tokens sit at pad_token_id.
            real = input_ids.ne(self.pad_token_id).long()                 # (B, T)
            x = x + self.position((real.cumsum(dim=1) + past_length) * real + self.pad_token_id)
        if self.token_type is not None:
            # Without segment ids every token is in segment 0, as in the reference models.
            x = x + (self.token_type.weight[0] if token_type_ids is None
                     else self.token_type(token_type_ids))
        x = self.dropout(self.norm(x))
        return x if self.projection is None else self.projection(x)  # (B, T, H)


class Attention(nn.Module):
    """Multi-head scaled dot-product attention with its output projection.

    Self-attention by default; cross-attention when ``key_value_states`` is given (queries
    from one sequence, keys and values from another); causal on request. ``past_key_value``
    carries keys and values from earlier decoding steps: self-attention prepends them to the
    new positions' own; cross-attention uses them as they are, since the source does not change
    between steps (it is projected once). Query, key and value share one fused (3H, H)
    projection; checkpoints store them apart and the name table splits and joins them.
    """

    def __init__(self, config: BertConfig, num_heads: int | None = None):
        super().__init__()  # num_heads: fewer than the config's after pruning (model.pruning)
        self.num_heads = config.num_attention_heads if num_heads is None else num_heads
        self.head_dim = config.head_dim
        width = self.num_heads * self.head_dim                          # N·D: H unless pruned
        self.qkv = nn.Linear(config.hidden_size, 3 * width)
        self.output = nn.Linear(width, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, query_states: Tensor, key_value_states: Tensor | None = None,
                bias: Tensor | None = None, causal: bool = False, return_probs: bool = False,
                past_key_value: KeyValue | None = None, head_mask: Tensor | None = None,
                ) -> tuple[Tensor, Tensor | None, KeyValue]:
        """Attention output (B, T, H), probabilities (B, N, T, S) if asked, and the keys and
        values attended (B, S, H) each, to pass back as ``past_key_value`` next step.
        ``head_mask`` (N,) scales each head's output (see :meth:`attend`)."""
        if key_value_states is not None and past_key_value is not None:
            q, (k, v) = self.project_query(query_states), past_key_value
        else:
            q, k, v = self.project(query_states, key_value_states)
        if past_key_value is not None and key_value_states is None:
            k = torch.cat([past_key_value[0], k], dim=1)                # (B, S, H)
            v = torch.cat([past_key_value[1], v], dim=1)
        if causal:
            bias = causal_bias(bias, q.shape[1], k.shape[1], q.dtype, q.device)
        context, probs = self.attend(q, k, v, bias, return_probs, head_mask)  # (B, T, H)
        return self.output(context), probs, (k, v)

    def project(self, query_states: Tensor, key_value_states: Tensor | None
                ) -> tuple[Tensor, Tensor, Tensor]:
        """Queries (B, T, H), keys and values (B, S, H): one matrix multiply for
        self-attention, the fused weight's query rows and key/value rows otherwise."""
        H = self.num_heads * self.head_dim
        if key_value_states is None:
            q, k, v = self.qkv(query_states).split(H, dim=-1)
            return q, k, v
        k, v = F.linear(key_value_states, self.qkv.weight[H:], self.qkv.bias[H:]).split(H, dim=-1)
        return self.project_query(query_states), k, v

    def project_query(self, query_states: Tensor) -> Tensor:
        """Queries alone (B, T, H): the fused weight's first H rows."""
        H = self.num_heads * self.head_dim
        return F.linear(query_states, self.qkv.weight[:H], self.qkv.bias[:H])

    def attend(self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None,
               return_probs: bool, head_mask: Tensor | None = None
               ) -> tuple[Tensor, Tensor | None]:
        """softmax(q·kᵀ / √D + bias)·v per head: (B, T, H), (B, S, H) → (B, T, H).

        ``scaled_dot_product_attention`` computes it fused; with ``return_probs`` the same
        steps run explicitly so the probabilities can be returned. ``head_mask`` (N,) scales
        each head's context (``transformers`` 4 scales its probabilities: the same product; the
        probabilities returned are unmasked); its gradient is the head's importance."""
        B, T, H = q.shape
        q, k, v = (t.view(B, -1, self.num_heads, self.head_dim).transpose(1, 2)
                   for t in (q, k, v))                                  # (B, N, ·, D)
        dropout_p = self.dropout_p if self.training else 0.0
        probs = None
        if return_probs:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, N, T, S)
            if bias is not None:
                scores = scores + bias
            probs = scores.softmax(dim=-1)
            context = F.dropout(probs, dropout_p, self.training) @ v       # (B, N, T, D)
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p)
        if head_mask is not None:
            context = context * head_mask.to(context.dtype).view(1, -1, 1, 1)
        return context.transpose(1, 2).reshape(B, T, H), probs


class FeedForward(nn.Module):
    """Position-wise up-projection, non-linearity, down-projection: (…, H) → (…, H)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)
        self.hidden_act = config.hidden_act  # by name: a fused kernel may compute it instead
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, x: Tensor) -> Tensor:
        return self.down(self.act(self.up(x)))                        # (…, I) in between


class EncoderLayer(nn.Module):
    """One Transformer block. Post-LN (BERT): x = LN(x + Attn(x)); x = LN(x + FFN(x)).
    Pre-LN (``pre_layer_norm``; Xiong et al. 2020): x = x + Attn(LN(x)); x = x + FFN(LN(x))."""

    def __init__(self, config: BertConfig, num_heads: int | None = None):
        super().__init__()
        self.attention = Attention(config, num_heads)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.pre_norm = config.pre_layer_norm

    def forward(self, x: Tensor, bias: Tensor | None, return_probs: bool = False,
                head_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(B, T, H) → (B, T, H), and the attention probabilities when asked."""
        if self.pre_norm:
            attended, probs, _ = self.attention(self.attention_norm(x), bias=bias,
                                                return_probs=return_probs, head_mask=head_mask)
            x = x + self.dropout(attended)                                      # (B, T, H)
            return x + self.dropout(self.feed_forward(self.feed_forward_norm(x))), probs
        attended, probs, _ = self.attention(x, bias=bias, return_probs=return_probs,
                                            head_mask=head_mask)
        x = self.attention_norm(x + self.dropout(attended))                # (B, T, H)
        x = self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))  # (B, T, H)
        return x, probs


class Pooler(nn.Module):
    """tanh(dense(h[CLS])): the sentence vector the NSP and classification heads read."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))  # (B, H)


class Bert(nn.Module):
    """The BERT network: embeddings, ``num_hidden_layers`` encoder layers, optional pooler.

    ``layers`` holds one entry per depth step. With ALBERT's sharing several entries are the
    same module (``parameters()`` counts it once; ``state_dict()`` names it at every step it
    runs, and the checkpoint name table sends all of them to the one stored group).
    """

    def __init__(self, config: BertConfig, *, add_pooler: bool = True):
        super().__init__()
        self.config = config.validate()
        self.embeddings = Embeddings(config)
        order = config.layer_order()
        distinct = [EncoderLayer(config, config.kept_heads(index))
                    for index in range(max(order) + 1)]
        self.layers = nn.ModuleList(distinct[index] for index in order)
        # Pre-LN leaves the residual stream unnormalised: one LayerNorm after the last layer.
        self.final_norm = (nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
                           if config.pre_layer_norm else None)
        self.pooler = Pooler(config) if add_pooler and config.family.pooler else None
        self.apply(partial(init_weights, std=config.initializer_range))

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, *, inputs_embeds: Tensor | None = None,
                output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False,
                head_mask: Sequence[Tensor] | None = None) -> EncoderOutput:
        """Encode a batch (arguments in the order ``transformers`` uses). ``output_attentions``:
        ``True``, or the layers (negative counts from the end) that take the explicit attention
        path and return probabilities; ``head_mask``: one (N,) mask per layer, 1 keeps a head.
        The public classes check the inputs before (it reads tensor values)."""
        probe_layers = attention_layers(output_attentions, len(self.layers))
        x = self.embeddings(input_ids, token_type_ids, inputs_embeds)       # (B, T, H)
        bias = padding_bias(attention_mask, x.dtype)                         # (B, 1, 1, T)
        hidden_states = [x] if output_hidden_states else None
        attentions: list[Tensor | None] | None = [] if probe_layers else None
        for index, layer in enumerate(self.layers):
            x, probs = layer(x, bias, return_probs=index in probe_layers,
                             head_mask=None if head_mask is None else head_mask[index])
            if hidden_states is not None:
                hidden_states.append(x)
            if attentions is not None:
                attentions.append(probs)
        return self.output(x, hidden_states, attentions)

    def output(self, x: Tensor, hidden_states: list[Tensor] | None,
               attentions: list[Tensor | None] | None) -> EncoderOutput:
        """The encoder's result from the last layer's states (B, T, H) and what was kept (the
        last hidden state after the final LayerNorm of a pre-LN encoder, as Megatron-BERT's)."""
        if self.final_norm is not None:
            x = self.final_norm(x)
            if hidden_states is not None:
                hidden_states[-1] = x
        return EncoderOutput(
            last_hidden_state=x,
            pooler_output=self.pooler(x) if self.pooler is not None else None,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
            attentions=tuple(attentions) if attentions is not None else None,
        )
