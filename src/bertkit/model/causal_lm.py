"""BERT as a left-to-right language model: the decoder network plus the MLM head's transform
and the tied vocabulary projection, predicting each next token (``transformers``'
``BertLMHeadModel``). With ``add_cross_attention`` it is the decoder half of an
:class:`~bertkit.model.encoder_decoder.EncoderDecoderModel`.

Shape legend: B batch, T new tokens, P cached positions, S source tokens, V vocabulary.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Self

import torch
from torch import Tensor

from bertkit.checkpoints.huggingface import LoadReport
from bertkit.errors import InputError
from bertkit.model.base import MODEL_CLASSES, PreTrainedModel
from bertkit.model.config import BertConfig
from bertkit.model.decoder import BertDecoder, LayerCache
from bertkit.model.heads import MaskedLMHead
from bertkit.model.inputs import check_inputs, layer_head_masks
from bertkit.model.losses import token_cross_entropy
from bertkit.model.outputs import CausalLMOutput

logger = logging.getLogger("bertkit")


class BertLMHeadModel(PreTrainedModel):
    """Causal self-attention (and cross-attention, for a seq2seq decoder), then next-token
    logits through the word-embedding matrix. ``labels`` are the input ids themselves: the
    loss scores position t's logits against label t + 1, as ``transformers`` does.

    A checkpoint without cross-attention (an encoder, for a warm start) loads with those
    weights initialised fresh and named in the load report, like the head.
    """

    is_decoder = True

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertDecoder(config)
        self.mlm = MaskedLMHead(config)
        self.init_weights()
        cross = tuple(f"bert.layers.{index}.cross_attention"
                      for index in range(config.num_hidden_layers))
        self.optional_prefixes = ("mlm.", *(cross if config.add_cross_attention else ()))

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None, *,
                inputs_embeds: Tensor | None = None,
                encoder_hidden_states: Tensor | None = None,
                encoder_attention_mask: Tensor | None = None,
                past_key_values: tuple[LayerCache, ...] | None = None,
                use_cache: bool = False, output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False,
                head_mask: Sequence[Tensor] | Tensor | None = None) -> CausalLMOutput:
        """``attention_mask`` covers the cached and the new positions, (B, P + T);
        ``head_mask`` as for the encoder classes (:class:`~bertkit.model.base.EncodeOptions`),
        applied to self- and cross-attention alike."""
        if not torch.compiler.is_compiling():
            self.check_decoder_inputs(input_ids, inputs_embeds, token_type_ids, attention_mask,
                                      past_key_values)
        decoded = self.bert(
            input_ids, attention_mask, token_type_ids, inputs_embeds=inputs_embeds,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask, past_key_values=past_key_values,
            use_cache=use_cache, output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            head_mask=layer_head_masks(head_mask, self.config))
        logits = self.mlm(decoded.last_hidden_state, self.bert.embeddings.word.weight)
        loss = None
        if labels is not None:
            loss = token_cross_entropy(logits[:, :-1], labels[:, 1:])    # next-token targets
        return CausalLMOutput(loss, logits, decoded.past_key_values, decoded.hidden_states,
                              decoded.attentions, decoded.cross_attentions)

    def check_decoder_inputs(self, input_ids: Tensor | None, inputs_embeds: Tensor | None,
                             token_type_ids: Tensor | None, attention_mask: Tensor | None,
                             past_key_values: tuple[LayerCache, ...] | None) -> None:
        """The encoder's checks on the new tokens, and the position limit on cached plus
        new ones (a step past the position table would fail deep inside PyTorch)."""
        check_inputs(self.config, input_ids, token_type_ids, None, inputs_embeds)
        new = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        past = past_key_values[0][0][0].shape[1] if past_key_values else 0
        if past + new > self.config.max_tokens:
            raise InputError(f"the decoder reached {past + new} positions but "
                             f"max_position_embeddings is {self.config.max_position_embeddings}; "
                             "ask for fewer new tokens (max_new_tokens)")
        if attention_mask is not None and attention_mask.shape[-1] != past + new:
            raise InputError(f"the decoder's attention_mask covers {attention_mask.shape[-1]} "
                             f"positions but {past} are cached and {new} are new")

    def load_state(self, state: dict[str, Tensor], *, source: str,
                   ignore_mismatched_sizes: bool = False, take: bool = False) -> LoadReport:
        """As for every class; a checkpoint without cross-attention (an encoder's, for a
        warm start) is said so, naming the weights that start random."""
        report = super().load_state(state, source=source,
                                    ignore_mismatched_sizes=ignore_mismatched_sizes, take=take)
        fresh = [name for name in report.new if ".cross_attention" in name]
        if fresh:
            logger.warning("%s has no cross-attention weights: %d tensors start random and "
                           "must be trained before the decoder is of use (a warm start, Rothe "
                           "et al. 2020): %s", source, len(fresh), ", ".join(fresh))
        return report

    def prepare_for_inference(self) -> Self:
        """Eval mode only: the CPU fast form (:mod:`bertkit.inference.fastpath`) is the
        encoder's, and a decoder runs in its core form."""
        return self.eval()


MODEL_CLASSES["BertLMHeadModel"] = BertLMHeadModel
