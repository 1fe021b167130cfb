"""The model classes users load, train and save, named as ``transformers`` names them.

Each is the encoder (:class:`bertkit.model.Bert`) plus a head and the head's standard loss,
and reads and writes Hugging Face checkpoint directories, so existing code moves over by
changing an import: ``bertkit.BertForSequenceClassification.from_pretrained(path)``.

Shape legend: B batch, T tokens, H hidden, V vocabulary, C labels or choices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Self

from torch import Tensor, nn

from bertkit.checkpoints.huggingface import (
    LoadReport,
    describe_load,
    export_state,
    load_into,
    normalize,
    read_weights,
    write_weights,
)
from bertkit.errors import CheckpointError, UsageError
from bertkit.heads import ClassificationHead, MaskedLMHead, PairHead, SpanHead
from bertkit.losses import sequence_classification_loss, span_loss, token_cross_entropy
from bertkit.model.bert import Bert, init_weights
from bertkit.model.config import BertConfig
from bertkit.model.outputs import EncoderOutput, HeadOutput, PreTrainingOutput, SpanOutput
from bertkit.variants import NAME_TABLES
from bertkit.variants.names import NameTable


class PreTrainedModel(nn.Module):
    """Checkpoint loading and saving shared by every model class.

    A subclass names its encoder ``self.bert`` and lists the parameter prefixes that may be
    missing from a checkpoint (its head, the pooler): those are initialised fresh and reported.
    """

    encoder_attribute: ClassVar[str] = "bert"
    optional_prefixes: ClassVar[tuple[str, ...]] = ()
    bert: Bert

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config.validate()

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
                        **config_overrides: Any) -> Self | tuple[Self, LoadReport]:
        """Load a Hugging Face (or bertkit) checkpoint directory, in eval mode.

        Keyword arguments override config fields (``num_labels=3``). Weights the checkpoint
        lacks (a new task head) are initialised and named in a warning; checkpoint tensors the
        class does not use (a pretraining head when loading the bare encoder) likewise.
        """
        path = Path(path)
        config = _override(BertConfig.from_pretrained(path), config_overrides)
        if config.model_type not in NAME_TABLES:
            raise CheckpointError(f"{path}: a {config.model_type!r} checkpoint cannot be loaded "
                                  f"as {cls.__name__} (model_type 'bert')")
        model = cls(config)
        table = model.names
        head_prefixes = tuple(r.checkpoint[0].split(".")[0] + "." for r in table.head_rules)
        state = normalize(read_weights(path), table, head_prefixes)
        report = load_into(model, state, table, encoder_attribute=cls.encoder_attribute,
                           optional=cls.optional_prefixes,
                           ignore_mismatched_sizes=ignore_mismatched_sizes, source=str(path))
        describe_load(report, cls.__name__, str(path))
        model.eval()
        return (model, report) if output_loading_info else model

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` in the Hugging Face format.

        Each file is written atomically (weights first, then the config that describes them).
        """
        directory = Path(directory)
        state = export_state(self, self.names, encoder_attribute=self.encoder_attribute,
                             strip_encoder_prefix=type(self) is BertModel)
        write_weights(state, directory)
        config = dataclasses.replace(
            self.config, extra={**self.config.extra, "architectures": [type(self).__name__]})
        config.save_pretrained(directory)

    def _encode(self, input_ids: Tensor | None, attention_mask: Tensor | None,
                token_type_ids: Tensor | None, inputs_embeds: Tensor | None,
                output_hidden_states: bool,
                output_attentions: bool | Collection[int]) -> EncoderOutput:
        return self.bert(input_ids, attention_mask, token_type_ids, inputs_embeds=inputs_embeds,
                         output_hidden_states=output_hidden_states,
                         output_attentions=output_attentions)


def _override(config: BertConfig, overrides: dict[str, Any]) -> BertConfig:
    known = {f.name for f in dataclasses.fields(BertConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UsageError(f"unknown config field(s) {unknown}; known fields: {sorted(known)}")
    labels = overrides.get("num_labels")
    if labels is not None and config.id2label is not None and len(config.id2label) != labels:
        # A new label count invalidates the checkpoint's label names.
        overrides = {"id2label": None, "label2id": None, **overrides}
    return dataclasses.replace(config, **overrides).validate()


class BertModel(PreTrainedModel):
    """The bare encoder: hidden states and the pooled ``[CLS]`` vector."""

    optional_prefixes = ("bert.pooler.",)

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.bert = Bert(config, add_pooler=add_pooling_layer)

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, *, inputs_embeds: Tensor | None = None,
                output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False) -> EncoderOutput:
        return self._encode(input_ids, attention_mask, token_type_ids, inputs_embeds,
                            output_hidden_states, output_attentions)


class BertForPreTraining(PreTrainedModel):
    """Masked-LM and next-sentence heads; the loss is their sum."""

    optional_prefixes = ("bert.pooler.", "mlm.", "nsp.")

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = Bert(config)
        self.mlm = MaskedLMHead(config)
        self.nsp = PairHead(config)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                next_sentence_label: Tensor | None = None, *,
                inputs_embeds: Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False) -> PreTrainingOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, inputs_embeds,
                               output_hidden_states, output_attentions)
        token_logits = self.mlm(encoded.last_hidden_state, self.bert.embeddings.word.weight)
        pair_logits = self.nsp(encoded.pooler_output)                     # (B, 2)
        loss = None
        if labels is not None and next_sentence_label is not None:
            loss = (token_cross_entropy(token_logits, labels)
                    + token_cross_entropy(pair_logits, next_sentence_label))
        return PreTrainingOutput(loss, token_logits, pair_logits, encoded.hidden_states,
                                 encoded.attentions)


class BertForMaskedLM(PreTrainedModel):
    """The masked-LM head over every position (no pooler, as in the reference)."""

    optional_prefixes = ("mlm.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = Bert(config, add_pooler=False)
        self.mlm = MaskedLMHead(config)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None, *,
                inputs_embeds: Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False) -> HeadOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, inputs_embeds,
                               output_hidden_states, output_attentions)
        logits = self.mlm(encoded.last_hidden_state, self.bert.embeddings.word.weight)  # (B,T,V)
        loss = token_cross_entropy(logits, labels) if labels is not None else None
        return HeadOutput(loss, logits, encoded.hidden_states, encoded.attentions)


class BertForNextSentencePrediction(PreTrainedModel):
    """Is segment B the continuation of segment A? (label 0 = yes, 1 = random)."""

    optional_prefixes = ("bert.pooler.", "nsp.")

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = Bert(config)
        self.nsp = PairHead(config)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None, *,
                inputs_embeds: Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False) -> HeadOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, inputs_embeds,
                               output_hidden_states, output_attentions)
        logits = self.nsp(encoded.pooler_output)                          # (B, 2)
        loss = token_cross_entropy(logits, labels) if labels is not None else None
        return HeadOutput(loss, logits, encoded.hidden_states, encoded.attentions)


class BertForSequenceClassification(PreTrainedModel):
    """A classifier (or regressor) on the pooled vector: single-label, multi-label or
    regression, by ``config.problem_type``."""

    optional_prefixes = ("bert.pooler.", "classifier.")

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = Bert(config)
        self.classifier = ClassificationHead(config)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None, *,
                inputs_embeds: Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False) -> HeadOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, inputs_embeds,
                               output_hidden_states, output_attentions)
        logits = self.classifier(encoded.pooler_output)                   # (B, C)
        loss = None
        if labels is not None:
            loss = sequence_classification_loss(logits, labels, self.config.problem_type,
                                                self.config.num_labels)
        return HeadOutput(loss, logits, encoded.hidden_states, encoded.attentions)


class BertForTokenClassification(PreTrainedModel):
    """A label per token (named entities, part of speech)."""

    optional_prefixes = ("classifier.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = Bert(config, add_pooler=False)
        self.classifier = ClassificationHead(config)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None, *,
                inputs_embeds: Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False) -> HeadOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, inputs_embeds,
                               output_hidden_states, output_attentions)
        logits = self.classifier(encoded.last_hidden_state)               # (B, T, C)
        loss = token_cross_entropy(logits, labels) if labels is not None else None
        return HeadOutput(loss, logits, encoded.hidden_states, encoded.attentions)


class BertForQuestionAnswering(PreTrainedModel):
    """Start and end scores per token for extractive question answering."""

    optional_prefixes = ("qa.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = Bert(config, add_pooler=False)
        self.qa = SpanHead(config)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, start_positions: Tensor | None = None,
                end_positions: Tensor | None = None, *, inputs_embeds: Tensor | None = None,
                output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False) -> SpanOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, inputs_embeds,
                               output_hidden_states, output_attentions)
        start, end = self.qa(encoded.last_hidden_state)                  # (B, T) each
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start, end, start_positions, end_positions)
        return SpanOutput(loss, start, end, encoded.hidden_states, encoded.attentions)


class BertForMultipleChoice(PreTrainedModel):
    """One score per choice: inputs are (B, C, T), each choice encoded as its own sequence."""

    optional_prefixes = ("bert.pooler.", "classifier.")

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = Bert(config)
        self.classifier = ClassificationHead(config, num_outputs=1)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None, *,
                inputs_embeds: Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False) -> HeadOutput:
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference is None:
            raise UsageError("pass input_ids or inputs_embeds")
        num_choices = reference.shape[1]

        def flat(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.reshape(-1, *t.shape[2:])    # (B·C, T, …)

        encoded = self._encode(flat(input_ids), flat(attention_mask), flat(token_type_ids),
                               flat(inputs_embeds), output_hidden_states, output_attentions)
        logits = self.classifier(encoded.pooler_output).view(-1, num_choices)  # (B, C)
        loss = token_cross_entropy(logits, labels) if labels is not None else None
        return HeadOutput(loss, logits, encoded.hidden_states, encoded.attentions)


MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {
    cls.__name__: cls for cls in (
        BertModel, BertForPreTraining, BertForMaskedLM, BertForNextSentencePrediction,
        BertForSequenceClassification, BertForTokenClassification, BertForQuestionAnswering,
        BertForMultipleChoice)
}


