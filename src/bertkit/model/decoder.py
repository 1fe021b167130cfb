"""The BERT decoder: the encoder's layers made causal, each with an optional second attention
over an encoder's output (the Transformer decoder of Vaswani et al. 2017, built from BERT's
parts so that Rothe et al. 2020 can warm-start it from a BERT checkpoint).

Embeddings → N × (causal self-attention, add & norm, [cross-attention, add & norm],
feed-forward, add & norm). Post-LN like the encoder (:mod:`bertkit.model.bert`), whose
modules it reuses. Incremental decoding passes each layer's keys and values back in
(``past_key_values``): self-attention keys grow by one position a step, cross-attention keys
are the source's, projected once.

Shape legend: B batch, T new target tokens, P cached target positions, S source tokens,
H hidden.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import partial

from torch import Tensor, nn

from bertkit.errors import ConfigError
from bertkit.model.bert import Attention, Embeddings, FeedForward, KeyValue
from bertkit.model.config import BertConfig
from bertkit.model.init import init_weights
from bertkit.model.inputs import attention_layers, padding_bias
from bertkit.model.outputs import DecoderOutput

LayerCache = tuple[KeyValue, KeyValue | None]
"""One layer's cache: self-attention keys and values (B, P, H) each, and cross-attention
keys and values (B, S, H) each (``None`` without cross-attention)."""


class DecoderLayer(nn.Module):
    """x = LN(x + CausalAttn(x)); x = LN(x + CrossAttn(x, source)); x = LN(x + FFN(x))."""

    def __init__(self, config: BertConfig):
        super().__init__()
        width, eps = config.hidden_size, config.layer_norm_eps
        self.attention = Attention(config)
        self.attention_norm = nn.LayerNorm(width, eps=eps)
        cross = config.add_cross_attention
        self.cross_attention = Attention(config) if cross else None
        self.cross_attention_norm = nn.LayerNorm(width, eps=eps) if cross else None
        self.feed_forward = FeedForward(config)
        self.feed_forward_norm = nn.LayerNorm(width, eps=eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor, bias: Tensor | None, source: Tensor | None,
                source_bias: Tensor | None, cache: LayerCache | None = None,
                return_probs: bool = False, head_mask: Tensor | None = None
                ) -> tuple[Tensor, LayerCache, Tensor | None, Tensor | None]:
        """(B, T, H) → (B, T, H), this layer's cache after these positions, and the self- and
        cross-attention probabilities when asked. Without ``source`` (a decoder-only language
        model) the cross-attention is skipped, as in ``transformers``; ``head_mask`` (N,) masks
        the heads of both attentions, as there too."""
        past_self, past_cross = cache if cache is not None else (None, None)
        attended, probs, self_kv = self.attention(
            x, bias=bias, causal=True, return_probs=return_probs, past_key_value=past_self,
            head_mask=head_mask)
        x = self.attention_norm(x + self.dropout(attended))                  # (B, T, H)
        cross_probs, cross_kv = None, None
        if self.cross_attention is not None and source is not None:
            attended, cross_probs, cross_kv = self.cross_attention(
                x, source, source_bias, return_probs=return_probs, past_key_value=past_cross,
                head_mask=head_mask)
            x = self.cross_attention_norm(x + self.dropout(attended))        # (B, T, H)
        x = self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))   # (B, T, H)
        return x, (self_kv, cross_kv), probs, cross_probs


class BertDecoder(nn.Module):
    """Embeddings and ``num_hidden_layers`` decoder layers (no pooler): the ``bert`` part of
    :class:`bertkit.model.causal_lm.BertLMHeadModel`."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config.validate()
        if not config.is_decoder:
            raise ConfigError("the decoder needs is_decoder=True in its config")
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.apply(partial(init_weights, std=config.initializer_range))

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, *, inputs_embeds: Tensor | None = None,
                encoder_hidden_states: Tensor | None = None,
                encoder_attention_mask: Tensor | None = None,
                past_key_values: tuple[LayerCache, ...] | None = None, use_cache: bool = False,
                output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False,
                head_mask: Sequence[Tensor] | None = None) -> DecoderOutput:
        """Decode the new positions (B, T) given the cached earlier ones (P of them).

        ``attention_mask`` (B, P + T) masks target padding; ``encoder_attention_mask`` (B, S)
        the source's; ``head_mask``: one (N,) mask per layer.
        """
        probe_layers = attention_layers(output_attentions, len(self.layers))
        past_length = past_key_values[0][0][0].shape[1] if past_key_values else 0
        x = self.embeddings(input_ids, token_type_ids, inputs_embeds, past_length)  # (B, T, H)
        bias = padding_bias(attention_mask, x.dtype)                         # (B, 1, 1, P+T)
        source_bias = padding_bias(encoder_attention_mask, x.dtype)          # (B, 1, 1, S)
        hidden_states = [x] if output_hidden_states else None
        caches, attentions, cross_attentions = [], [], []
        for index, layer in enumerate(self.layers):
            cache = past_key_values[index] if past_key_values else None
            x, cache, probs, cross_probs = layer(
                x, bias, encoder_hidden_states, source_bias, cache, index in probe_layers,
                None if head_mask is None else head_mask[index])
            caches.append(cache)
            attentions.append(probs)
            cross_attentions.append(cross_probs)
            if hidden_states is not None:
                hidden_states.append(x)
        crossed = encoder_hidden_states is not None and self.config.add_cross_attention
        return DecoderOutput(
            last_hidden_state=x,
            past_key_values=tuple(caches) if use_cache else None,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
            attentions=tuple(attentions) if probe_layers else None,
            cross_attentions=tuple(cross_attentions) if probe_layers and crossed else None,
        )
