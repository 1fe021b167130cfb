"""What every public model class shares: loading and saving Hugging Face checkpoint
directories, the family check, the fast form for inference, and the table of classes by their
``transformers`` name.

The task classes themselves are in :mod:`bertkit.model.pretrained`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Self, TypedDict

import torch
from torch import Tensor, nn

from bertkit.checkpoints.huggingface import (
    LoadReport,
    describe_load,
    export_state,
    load_into,
    normalize,
    read_weights,
    weights_file,
    write_weights,
)
from bertkit.errors import CheckpointError, ConfigError, UsageError
from bertkit.inference.fastpath import FastTwin, to_fast_form
from bertkit.inference.fastpath.quantized import check_quantization, is_quantized, quantize_int8
from bertkit.inference.fastpath.twin import inference_call
from bertkit.model.bert import Bert
from bertkit.model.config import BertConfig
from bertkit.model.init import init_weights, initialise_fresh, random_init_skipped
from bertkit.model.inputs import check_inputs, layer_head_masks
from bertkit.model.outputs import EncoderOutput
from bertkit.model.placement import load_dtype, resolve_device
from bertkit.model.pruning import prune_heads
from bertkit.variants import NAME_TABLES
from bertkit.variants.names import NameTable

CLASS_PREFIXES = {"bert": "Bert", "roberta": "Roberta", "distilbert": "DistilBert",
                  "albert": "Albert", "electra": "Electra"}
"""How ``transformers`` spells each family in its class names."""


MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {}
"""Every model class by its ``transformers`` name (what ``config.json``'s architectures say);
:mod:`bertkit.model.pretrained` fills it where it defines them."""


class PreTrainedModel(nn.Module):
    """Checkpoint loading and saving shared by every model class.

    A subclass names its encoder ``self.bert`` and lists the parameter prefixes that may be
    missing from a checkpoint (its head, the pooler): those are initialised fresh and reported.
    ``model_type`` is the family the class is for; a config of another family is refused.

    CPU inference calls (eval mode, no autograd) run the encoder's fast form by default, a
    twin that shares the parameters (:class:`~bertkit.inference.fastpath.FastTwin`); training
    and gradients run the core encoder itself.
    """

    model_type: ClassVar[str] = "bert"
    is_decoder: ClassVar[bool] = False  # a causal decoder (BertLMHeadModel), not an encoder
    bare_encoder: ClassVar[bool] = False  # saved without the encoder prefix, as BertModel is
    encoder_attribute: ClassVar[str] = "bert"
    optional_prefixes: ClassVar[tuple[str, ...]] = ()
    bert: Bert

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config.validate()
        if config.model_type != self.model_type:
            raise ConfigError(f"model_type is {config.model_type!r} but {type(self).__name__} "
                              f"is a {self.model_type!r} model; use "
                              f"{self.role_name(config.model_type)}")
        if config.is_decoder != self.is_decoder:
            raise ConfigError(decoder_mismatch(type(self).__name__, self.is_decoder))
        self.fast_twin = FastTwin()

    @classmethod
    def role_name(cls, model_type: str) -> str:
        """The name of this class's counterpart in another family (``RobertaForMaskedLM``)."""
        own = CLASS_PREFIXES[cls.model_type]
        return CLASS_PREFIXES.get(model_type, model_type) + cls.__name__.removeprefix(own)

    @classmethod
    def for_family(cls, model_type: str) -> type[PreTrainedModel]:
        """This class's counterpart in the family ``model_type``: generic code loads any
        checkpoint with ``BertForMaskedLM.for_family(config.model_type).from_pretrained(path)``.
        """
        found = MODEL_CLASSES.get(cls.role_name(model_type))
        if found is None:
            raise UsageError(f"{model_type!r} models have no {cls.role_name(model_type)} "
                             f"(the {cls.__name__.removeprefix(CLASS_PREFIXES[cls.model_type])} "
                             f"head); families: {sorted(CLASS_PREFIXES)}")
        return found

    @property
    def names(self) -> NameTable:
        return NAME_TABLES[self.config.model_type]

    def init_weights(self) -> None:
        self.apply(partial(init_weights, std=self.config.initializer_range))

    def num_parameters(self, *, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, output_loading_info: bool = False,
                        ignore_mismatched_sizes: bool = False,
                        dtype: str | torch.dtype | None = None,
                        torch_dtype: str | torch.dtype | None = None,
                        device: str | torch.device | None = None,
                        quantize: str | None = None,
                        **config_overrides: Any) -> Self | tuple[Self, LoadReport]:
        """Load a Hugging Face (or bertkit) checkpoint directory, in eval mode.

        ``dtype`` (or its older name ``torch_dtype``) and ``device`` are spelled as in
        ``transformers``: ``"bfloat16"`` or ``torch.bfloat16``, ``"auto"`` for the
        checkpoint's own dtype (:func:`bertkit.model.placement.load_dtype`); ``"cpu"``,
        ``"cuda"``, ``"auto"`` (default: the CPU). ``quantize="int8"`` loads for CPU
        inference with int8 attention projections
        (:mod:`bertkit.inference.fastpath.quantized`). Other keyword arguments override config
        fields (``num_labels=3``). Weights the checkpoint lacks (a new task head) are
        initialised and named in a warning; checkpoint tensors the class does not use (a
        pretraining head when loading the bare encoder) likewise.
        """
        path = Path(path)
        target = resolve_device("cpu" if device is None else device)
        config = override_config(BertConfig.from_pretrained(path), config_overrides)
        if config.model_type != cls.model_type:
            raise CheckpointError(
                f"{path}: a {config.model_type!r} checkpoint cannot be loaded as {cls.__name__} "
                f"(a {cls.model_type!r} model); use {cls.role_name(config.model_type)}")
        if config.is_decoder != cls.is_decoder:
            raise CheckpointError(f"{path}: {decoder_mismatch(cls.__name__, cls.is_decoder)}")
        weights = read_weights(path)
        declared = config.extra.get("dtype", config.extra.get("torch_dtype"))
        precision = load_dtype(dtype, torch_dtype, declared, weights, target)
        check_quantization(quantize, precision, target)
        with random_init_skipped():  # the checkpoint overwrites them: no draws to discard
            model = cls(config)
        report = model.load_state(weights, source=str(weights_file(path)),
                                  ignore_mismatched_sizes=ignore_mismatched_sizes, take=True)
        initialise_fresh(model, report.new + report.mismatched, config.initializer_range)
        describe_load(report, cls.__name__, str(path))
        model.to(device=target, dtype=precision).eval()
        if quantize == "int8":
            quantize_int8(model)
        return (model, report) if output_loading_info else model

    def load_state(self, state: dict[str, Tensor], *, source: str,
                   ignore_mismatched_sizes: bool = False, take: bool = False) -> LoadReport:
        """Copy checkpoint tensors (under Hugging Face names) into this model; what was new
        or unused is in the report. A decoder's weights are refused by an encoder class.
        ``take``: ``state`` is this load's own, and its tensors may become the parameters
        (:func:`~bertkit.checkpoints.huggingface.load_into`)."""
        table = self.names
        state = normalize(state, table)
        if not self.is_decoder and any(CROSS_ATTENTION in name for name in state):
            why = decoder_mismatch(type(self).__name__, False)
            raise CheckpointError(f"{source}: the checkpoint holds cross-attention weights "
                                  f"(*{CROSS_ATTENTION}*): {why}")
        return load_into(self, state, table, encoder_attribute=self.encoder_attribute,
                         optional=self.optional_prefixes, config=self.config,
                         ignore_mismatched_sizes=ignore_mismatched_sizes, source=source,
                         take=take)

    def checkpoint_state(self) -> dict[str, Tensor]:
        """This model's parameters under their Hugging Face checkpoint names."""
        return export_state(self, self.names, encoder_attribute=self.encoder_attribute,
                            config=self.config, strip_encoder_prefix=self.bare_encoder)

    def train(self, mode: bool = True) -> Self:
        """As ``nn.Module.train``; refused for a quantised model (int8 layers have no
        gradients: train in float32, quantise when loading for inference)."""
        if mode and is_quantized(self):
            raise UsageError(f"{type(self).__name__} was loaded with quantize='int8', for "
                             "inference only; load it without quantize to train it")
        return super().train(mode)

    def prepare_for_inference(self) -> Self:
        """Eval mode, then the CPU fast form in place (:func:`bertkit.inference.fastpath.
        to_fast_form`): weights prepacked for oneDNN, the activation and residual adds fused
        into them, padded batches run on their real tokens. Inference calls get the same form
        by default through a twin of the encoder; converting in place instead keeps one copy
        of the linear weights, not two, and the model can no longer be trained. Same outputs
        to float rounding; ``save_pretrained`` still works."""
        return to_fast_form(self.eval())

    def prune_heads(self, heads: Mapping[int, Collection[int]]) -> None:
        """Remove attention heads for good (layer → head numbers of the unpruned layer), as
        ``transformers``' ``prune_heads``; ``config.pruned_heads`` records them, and
        ``save_pretrained`` writes the smaller projections with it
        (:mod:`bertkit.model.pruning`)."""
        prune_heads(self.bert, heads)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` in the Hugging Face format.

        Each file is written atomically (weights first, then the config that describes them).
        """
        directory = Path(directory)
        write_weights(self.checkpoint_state(), directory)
        config = dataclasses.replace(
            self.config, extra={**self.config.extra, "architectures": [type(self).__name__]})
        config.save_pretrained(directory)

    def _encode(self, input_ids: Tensor | None, attention_mask: Tensor | None,
                token_type_ids: Tensor | None, *, inputs_embeds: Tensor | None = None,
                output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False,
                head_mask: Sequence[Tensor] | Tensor | None = None) -> EncoderOutput:
        """Check the inputs once, here at the API boundary, then run the encoder: the one path
        of every encoder class's :class:`EncodeOptions`.

        The check reads tensor values (id ranges), a host synchronisation the encoder itself
        avoids; under ``torch.compile`` it is skipped so the graph stays whole. Inference calls
        run the encoder's fast twin, everything else the core.
        """
        if not torch.compiler.is_compiling():
            check_inputs(self.config, input_ids, token_type_ids, attention_mask, inputs_embeds)
        encoder = self.bert
        if not self.training and inference_call():
            encoder = self.fast_twin.encoder(self.bert)
        return encoder(input_ids, attention_mask, token_type_ids, inputs_embeds=inputs_embeds,
                       output_hidden_states=output_hidden_states,
                       output_attentions=output_attentions,
                       head_mask=layer_head_masks(head_mask, self.config))


class EncodeOptions(TypedDict, total=False):
    """The keyword arguments every encoder class takes besides its inputs and labels, as
    ``transformers`` spells them.

    ``inputs_embeds`` (B, T, E) instead of ``input_ids``; ``output_hidden_states``: every
    layer's output; ``output_attentions``: ``True`` or layer indices whose attention
    probabilities to return; ``head_mask``: 1 keeps a head's output, 0 removes it, as (N,) for
    every layer, (L, N), or one (N_l,) tensor per layer of a pruned model
    (:func:`bertkit.model.inputs.layer_head_masks`).
    """

    inputs_embeds: Tensor | None
    output_hidden_states: bool
    output_attentions: bool | Collection[int]
    head_mask: Sequence[Tensor] | Tensor | None


CROSS_ATTENTION = ".crossattention."
"""What every cross-attention tensor's checkpoint name contains (only decoders have them)."""


def decoder_mismatch(class_name: str, class_is_decoder: bool) -> str:
    """Why a decoder cannot load as an encoder class (it would silently lose its causal mask
    and cross-attention), or an encoder config as a decoder class, and what to use."""
    if class_is_decoder:
        return (f"{class_name} is a decoder and needs is_decoder=True in its config; to "
                "warm-start one from an encoder checkpoint pass is_decoder=True (and "
                "add_cross_attention=True for a seq2seq decoder) to from_pretrained")
    return (f"this is a decoder (is_decoder / add_cross_attention / cross-attention weights), "
            f"but {class_name} is an encoder: it has no causal mask and would drop the "
            "cross-attention; load it with BertLMHeadModel or as part of an "
            "EncoderDecoderModel")


def override_config(config: BertConfig, overrides: dict[str, Any]) -> BertConfig:
    known = {f.name for f in dataclasses.fields(BertConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UsageError(f"unknown config field(s) {unknown}; known fields: {sorted(known)}")
    labels = overrides.get("num_labels")
    if labels is not None and config.id2label is not None and len(config.id2label) != labels:
        # A new label count invalidates the checkpoint's label names.
        overrides = {"id2label": None, "label2id": None, **overrides}
    return dataclasses.replace(config, **overrides).validate()
