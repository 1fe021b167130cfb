"""A BERT encoder and a BERT decoder joined by cross-attention: sequence-to-sequence models
(``transformers``' ``EncoderDecoderModel``, same checkpoint layout).

Rothe et al. (2020), "Leveraging Pre-trained Checkpoints for Sequence Generation Tasks",
warm-start both halves from BERT checkpoints
(:meth:`EncoderDecoderModel.from_encoder_decoder_pretrained`): everything but the
cross-attention comes from the checkpoints, the cross-attention starts random; BERTShare
ties the decoder's weights to the encoder's.

A saved model is one directory: ``config.json`` (``model_type: encoder-decoder``, the two
sub-configs under ``encoder`` and ``decoder``, the special token ids) and
``model.safetensors`` (``encoder.*`` as a bare ``BertModel``, ``decoder.bert.*`` and
``decoder.cls.*`` as a ``BertLMHeadModel``).

Shape legend: B batch, S source tokens, T target tokens, H hidden, V vocabulary.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import torch
from torch import Tensor, nn

from bertkit._fileio import read_json, write_json
from bertkit.checkpoints.huggingface import LoadReport, describe_load, read_weights, write_weights
from bertkit.errors import CheckpointError, ConfigError, DataFormatError, UsageError
from bertkit.generation import GenerationConfig, generate
from bertkit.inference.fastpath import to_fast_form
from bertkit.model.causal_lm import BertLMHeadModel
from bertkit.model.config import BertConfig
from bertkit.model.decoder import LayerCache
from bertkit.model.init import initialise_fresh, random_init_skipped
from bertkit.model.losses import IGNORE_INDEX, token_cross_entropy
from bertkit.model.outputs import EncoderOutput, Seq2SeqLMOutput
from bertkit.model.pretrained import BertModel

logger = logging.getLogger("bertkit")

MODEL_TYPE = "encoder-decoder"


@dataclass
class EncoderDecoderConfig:
    """The two halves' configs and the token ids that join them (``config.json`` keys as
    ``transformers`` writes them; other keys kept in :attr:`extra`)."""

    encoder: BertConfig
    decoder: BertConfig
    decoder_start_token_id: int | None = None  # the decoder's first input ([CLS] for BERT)
    pad_token_id: int | None = None
    eos_token_id: int | None = None            # where generation stops ([SEP] for BERT)
    tie_encoder_decoder: bool = False          # BERTShare
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def validate(self) -> Self:
        self.encoder.validate()
        self.decoder.validate()
        if self.encoder.is_decoder:
            raise ConfigError("the encoder's config has is_decoder=True")
        if not (self.decoder.is_decoder and self.decoder.add_cross_attention):
            raise ConfigError("the decoder's config needs is_decoder=True and "
                              "add_cross_attention=True")
        if self.encoder.hidden_size != self.decoder.hidden_size:
            raise ConfigError(f"encoder hidden_size ({self.encoder.hidden_size}) must equal the "
                              f"decoder's ({self.decoder.hidden_size}): cross-attention reads "
                              "the encoder's states directly")
        for name in ("decoder_start_token_id", "pad_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.decoder.vocab_size:
                raise ConfigError(f"{name} ({value}) must be in [0, decoder vocab_size="
                                  f"{self.decoder.vocab_size})")
        return self

    def to_dict(self) -> dict[str, Any]:
        data = {"model_type": MODEL_TYPE, "is_encoder_decoder": True,
                "encoder": self.encoder.to_dict(), "decoder": self.decoder.to_dict(),
                "decoder_start_token_id": self.decoder_start_token_id,
                "pad_token_id": self.pad_token_id, "eos_token_id": self.eos_token_id,
                "tie_encoder_decoder": self.tie_encoder_decoder}
        return {**self.extra, **{k: v for k, v in data.items() if v is not None}}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | Path | None = None) -> Self:
        if not isinstance(data, dict) or data.get("model_type") != MODEL_TYPE:
            found = data.get("model_type") if isinstance(data, dict) else type(data).__name__
            raise DataFormatError(f"expected an {MODEL_TYPE!r} config, got model_type "
                                  f"{found!r}", source)
        parts = {}
        for half in ("encoder", "decoder"):
            if not isinstance(data.get(half), dict):
                raise DataFormatError(f"the {half!r} sub-config is missing", source)
            parts[half] = BertConfig.from_dict(data[half], source=f"{source} ({half})")
        known = ("decoder_start_token_id", "pad_token_id", "eos_token_id", "tie_encoder_decoder")
        extra = {k: v for k, v in data.items()
                 if k not in {*known, "encoder", "decoder", "model_type", "is_encoder_decoder"}}
        try:
            return cls(**parts, **{k: data[k] for k in known if k in data}, extra=extra).validate()
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}" if source else str(err)) from None

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Self:
        path = Path(directory)
        file = path / "config.json" if path.is_dir() else path
        if not file.is_file():
            raise DataFormatError("no such model directory or config file", path)
        return cls.from_dict(read_json(file), source=file)

    def save_pretrained(self, directory: str | Path) -> None:
        write_json(Path(directory) / "config.json", self.to_dict())


class EncoderDecoderModel(nn.Module):
    """A :class:`BertModel` encoder and a :class:`BertLMHeadModel` decoder with cross-attention.

    ``labels`` (B, T) are the target ids; without ``decoder_input_ids`` the decoder reads them
    shifted right behind ``decoder_start_token_id`` (-100 read as padding, and masked unless
    a ``decoder_attention_mask`` is given), and the loss is the mean cross-entropy of the
    logits against the labels, as in ``transformers``.
    """

    def __init__(self, config: EncoderDecoderConfig, *, encoder: BertModel | None = None,
                 decoder: BertLMHeadModel | None = None):
        super().__init__()
        self.config = config.validate()
        self.encoder = encoder if encoder is not None else BertModel(config.encoder)
        self.decoder = decoder if decoder is not None else BertLMHeadModel(config.decoder)
        if config.tie_encoder_decoder:
            tie_weights(self.encoder.bert, self.decoder.bert)

    # ---- the forward pass ----------------------------------------------------------------

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                decoder_input_ids: Tensor | None = None,
                decoder_attention_mask: Tensor | None = None, *,
                encoder_outputs: EncoderOutput | None = None,
                past_key_values: tuple[LayerCache, ...] | None = None,
                labels: Tensor | None = None, token_type_ids: Tensor | None = None,
                use_cache: bool = False, output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False) -> Seq2SeqLMOutput:
        """Encode the source (unless ``encoder_outputs`` is given) and decode the target."""
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids, attention_mask, token_type_ids,
                                           output_hidden_states=output_hidden_states,
                                           output_attentions=output_attentions)
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = shift_tokens_right(labels, self.pad_token_id,
                                                   self.start_token_id)
            if decoder_attention_mask is None:
                decoder_attention_mask = decoder_input_ids.ne(self.pad_token_id).long()
        decoded = self.decoder(
            decoder_input_ids, decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=attention_mask, past_key_values=past_key_values,
            use_cache=use_cache, output_hidden_states=output_hidden_states,
            output_attentions=output_attentions)
        loss = token_cross_entropy(decoded.logits, labels) if labels is not None else None
        return Seq2SeqLMOutput(
            loss=loss, logits=decoded.logits, past_key_values=decoded.past_key_values,
            decoder_hidden_states=decoded.hidden_states, decoder_attentions=decoded.attentions,
            cross_attentions=decoded.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions)

    @property
    def pad_token_id(self) -> int:
        pad = self.config.pad_token_id
        return self.config.decoder.pad_token_id if pad is None else pad

    @property
    def start_token_id(self) -> int:
        start = self.config.decoder_start_token_id
        if start is None:
            raise UsageError("config.decoder_start_token_id is not set: the decoder needs a "
                             "first token ([CLS] for BERT) to read the targets behind")
        return start

    # ---- what generation calls (bertkit.generation.Seq2SeqModel) -------------------------

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None) -> Tensor:
        """The source's encoder states (B, S, H), once per source for a whole generation."""
        return self.encoder(input_ids, attention_mask).last_hidden_state

    def decode(self, tokens: Tensor, source: Tensor, source_mask: Tensor | None,
               cache: tuple[LayerCache, ...] | None) -> tuple[Tensor, tuple[LayerCache, ...]]:
        """The next-token logits (B, V) after ``tokens`` (B, T): the new tokens when ``cache``
        holds the earlier ones, else the whole prefix; and the cache after them."""
        out = self.decoder(tokens, encoder_hidden_states=source,
                           encoder_attention_mask=source_mask, past_key_values=cache,
                           use_cache=True)
        return out.logits[:, -1].float(), out.past_key_values

    @staticmethod
    def reorder_cache(cache: tuple[LayerCache, ...], rows: Tensor, *, sources_too: bool
                      ) -> tuple[LayerCache, ...]:
        """The cache with its batch rows taken in order ``rows``. Beam search only moves rows
        between hypotheses of one source, whose cross-attention keys and values are equal, so
        it passes ``sources_too=False`` and those stay as they are."""
        def take(pair: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
            return pair[0].index_select(0, rows), pair[1].index_select(0, rows)

        return tuple((take(own), take(cross) if sources_too and cross is not None else cross)
                     for own, cross in cache)

    def generate(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                 generation_config: GenerationConfig | None = None, *,
                 generator: torch.Generator | None = None, **options: Any) -> Tensor:
        """Target ids (B, 1 + new tokens), starting with the decoder start token, as
        ``transformers``' ``generate()`` returns them; ``options`` override
        ``generation_config`` fields (``num_beams=4``). See :mod:`bertkit.generation`."""
        config = (generation_config or GenerationConfig()).merged(
            options, decoder_start_token_id=self.config.decoder_start_token_id,
            eos_token_id=self.config.eos_token_id, pad_token_id=self.pad_token_id)
        return generate(self, input_ids, attention_mask, config, generator=generator)

    @property
    def vocab_size(self) -> int:
        return self.config.decoder.vocab_size

    @property
    def max_target_positions(self) -> int:
        return self.config.decoder.max_tokens

    # ---- checkpoints ---------------------------------------------------------------------

    def prepare_for_inference(self) -> Self:
        """Eval mode; the encoder takes its CPU fast form, the decoder stays in its core form
        (the fast form is the encoder's)."""
        self.eval()
        to_fast_form(self.encoder)
        return self

    def save_pretrained(self, directory: str | Path) -> None:
        """``config.json`` and ``model.safetensors`` in the ``transformers`` layout."""
        directory = Path(directory)
        state = {f"{half}.{name}": tensor
                 for half, part in (("encoder", self.encoder), ("decoder", self.decoder))
                 for name, tensor in part.checkpoint_state().items()}
        write_weights(state, directory)
        self.config.extra = {**self.config.extra, "architectures": [type(self).__name__]}
        self.config.save_pretrained(directory)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, output_loading_info: bool = False
                        ) -> Self | tuple[Self, LoadReport]:
        """Load a saved encoder-decoder directory (bertkit's or ``transformers``'), in eval
        mode; what was new or unused is logged, and returned with ``output_loading_info``."""
        config = EncoderDecoderConfig.from_pretrained(path)
        with random_init_skipped():  # the checkpoint overwrites them: no draws to discard
            model = cls(config)
        state = read_weights(path)
        report = LoadReport(unused=sorted(n for n in state
                                          if not n.startswith(("encoder.", "decoder."))))
        for half, part in (("encoder", model.encoder), ("decoder", model.decoder)):
            prefix = half + "."
            own = {n[len(prefix):]: t for n, t in state.items() if n.startswith(prefix)}
            if not own:
                raise CheckpointError(f"{path}: no {prefix}* weights: not an encoder-decoder "
                                      "checkpoint")
            loaded = part.load_state(own, source=f"{path} ({half})", take=True)
            initialise_fresh(part, loaded.new, part.config.initializer_range)
            merge_report(report, loaded, prefix)
        if config.tie_encoder_decoder:
            tie_weights(model.encoder.bert, model.decoder.bert)
        describe_load(report, cls.__name__, str(path))
        model.eval()
        return (model, report) if output_loading_info else model

    @classmethod
    def from_encoder_decoder_pretrained(
            cls, encoder_path: str | Path, decoder_path: str | Path, *,
            share_encoder_decoder: bool = False, decoder_start_token_id: int | None = None,
            eos_token_id: int | None = None, pad_token_id: int | None = None,
            output_loading_info: bool = False) -> Self | tuple[Self, LoadReport]:
        """Warm-start from two BERT checkpoints (the same one twice, usually), Rothe et al.
        2020: the decoder gets causal self-attention and a cross-attention that starts
        random (named in the load report); ``share_encoder_decoder`` (BERTShare) ties every
        decoder weight the encoder also has to the encoder's."""
        encoder, encoder_report = BertModel.from_pretrained(encoder_path,
                                                            output_loading_info=True)
        decoder, decoder_report = BertLMHeadModel.from_pretrained(
            decoder_path, output_loading_info=True, is_decoder=True, add_cross_attention=True)
        config = EncoderDecoderConfig(
            encoder.config, decoder.config, decoder_start_token_id=decoder_start_token_id,
            pad_token_id=decoder.config.pad_token_id if pad_token_id is None else pad_token_id,
            eos_token_id=eos_token_id, tie_encoder_decoder=share_encoder_decoder)
        model = cls(config, encoder=encoder, decoder=decoder)
        report = LoadReport()
        merge_report(report, encoder_report, "encoder.")
        merge_report(report, decoder_report, "decoder.")
        model.eval()
        return (model, report) if output_loading_info else model


def shift_tokens_right(labels: Tensor, pad_token_id: int, start_token_id: int) -> Tensor:
    """Decoder inputs from targets (B, T): the start token, then the targets but the last;
    ignored positions (-100) become padding."""
    shifted = labels.new_full(labels.shape, start_token_id)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == IGNORE_INDEX, pad_token_id)


def tie_weights(source: nn.Module, target: nn.Module) -> None:
    """Make each parameter of ``target`` that ``source`` has under the same name and shape the
    very same tensor (BERTShare: the decoder's embeddings, self-attention and feed-forward
    become the encoder's; the cross-attention, which the encoder lacks, stays its own)."""
    twins = dict(source.named_modules())
    for name, module in target.named_modules():
        twin = twins.get(name)
        if twin is None:
            continue
        for param_name, param in list(module.named_parameters(recurse=False)):
            other = twin._parameters.get(param_name)
            if other is not None and other.shape == param.shape:
                setattr(module, param_name, other)


def merge_report(report: LoadReport, part: LoadReport, prefix: str) -> None:
    """Add one half's load report to the whole model's, under the half's name prefix."""
    report.new += [prefix + name for name in part.new]
    report.unused += [prefix + name for name in part.unused]
    report.mismatched += [prefix + name for name in part.mismatched]
