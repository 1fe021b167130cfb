"""The model classes users load, train and save, named as ``transformers`` names them.

Each is the encoder (:class:`bertkit.model.Bert`) plus a head and the head's standard loss,
and reads and writes Hugging Face checkpoint directories, so existing code moves over by
changing an import: ``bertkit.BertForSequenceClassification.from_pretrained(path)``.

The other families' classes (``RobertaForMaskedLM``, ``AlbertForPreTraining``, …) are the same
classes bound to another ``model_type``: the encoder and heads read the family's switches from
the config, and the family's name table maps the checkpoint. Every class keeps its encoder
under ``.bert``, so code written against one family runs on all of them.

These classes are the architecture only; their CPU inference form (prepacked weights, fused
kernels, packed batches) is made by :func:`bertkit.inference.fastpath.to_fast_form`, a later
layer, so nothing here depends on it.

Shape legend: B batch, T tokens, H hidden, V vocabulary, C labels or choices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
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
from bertkit.errors import CheckpointError, ConfigError, UsageError
from bertkit.inference.fastpath import to_fast_form
from bertkit.model.bert import Bert, init_weights
from bertkit.model.config import BertConfig, DenseHead
from bertkit.model.heads import (
    ClassificationHead,
    DenseClassificationHead,
    MaskedLMHead,
    PairHead,
    ReplacedTokenHead,
    SpanHead,
)
from bertkit.model.inputs import check_inputs
from bertkit.model.losses import (
    replaced_token_loss,
    sequence_classification_loss,
    span_loss,
    token_cross_entropy,
)
from bertkit.model.outputs import (
    EncoderOutput,
    HeadOutput,
    PreTrainingOutput,
    SentenceOrderOutput,
    SpanOutput,
)
from bertkit.variants import NAME_TABLES
from bertkit.variants.names import NameTable

CLASS_PREFIXES = {"bert": "Bert", "roberta": "Roberta", "distilbert": "DistilBert",
                  "albert": "Albert", "electra": "Electra"}
"""How ``transformers`` spells each family in its class names."""


class PreTrainedModel(nn.Module):
    """Checkpoint loading and saving shared by every model class.

    A subclass names its encoder ``self.bert`` and lists the parameter prefixes that may be
    missing from a checkpoint (its head, the pooler): those are initialised fresh and reported.
    ``model_type`` is the family the class is for; a config of another family is refused.
    """

    model_type: ClassVar[str] = "bert"
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
                        **config_overrides: Any) -> Self | tuple[Self, LoadReport]:
        """Load a Hugging Face (or bertkit) checkpoint directory, in eval mode.

        Keyword arguments override config fields (``num_labels=3``). Weights the checkpoint
        lacks (a new task head) are initialised and named in a warning; checkpoint tensors the
        class does not use (a pretraining head when loading the bare encoder) likewise.
        """
        path = Path(path)
        config = _override(BertConfig.from_pretrained(path), config_overrides)
        if config.model_type != cls.model_type:
            raise CheckpointError(
                f"{path}: a {config.model_type!r} checkpoint cannot be loaded as {cls.__name__} "
                f"(a {cls.model_type!r} model); use {cls.role_name(config.model_type)}")
        model = cls(config)
        table = model.names
        state = normalize(read_weights(path), table)
        report = load_into(model, state, table, encoder_attribute=cls.encoder_attribute,
                           optional=cls.optional_prefixes, config=config,
                           ignore_mismatched_sizes=ignore_mismatched_sizes, source=str(path))
        describe_load(report, cls.__name__, str(path))
        model.eval()
        return (model, report) if output_loading_info else model

    def prepare_for_inference(self) -> Self:
        """Eval mode, then the CPU fast form (:func:`bertkit.inference.fastpath.to_fast_form`):
        weights prepacked for oneDNN, the activation and residual adds fused into them, padded
        batches run on their real tokens. Same outputs to float rounding, ``save_pretrained``
        still works; the model can no longer be trained. The core itself never runs this."""
        return to_fast_form(self.eval())

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` in the Hugging Face format.

        Each file is written atomically (weights first, then the config that describes them).
        """
        directory = Path(directory)
        state = export_state(self, self.names, encoder_attribute=self.encoder_attribute,
                             config=self.config, strip_encoder_prefix=isinstance(self, BertModel))
        write_weights(state, directory)
        config = dataclasses.replace(
            self.config, extra={**self.config.extra, "architectures": [type(self).__name__]})
        config.save_pretrained(directory)

    def _encode(self, input_ids: Tensor | None, attention_mask: Tensor | None,
                token_type_ids: Tensor | None, inputs_embeds: Tensor | None,
                output_hidden_states: bool,
                output_attentions: bool | Collection[int]) -> EncoderOutput:
        """Check the inputs once, here at the API boundary, then run the encoder.

        The check reads tensor values (id ranges), a host synchronisation the encoder itself
        avoids; under ``torch.compile`` it is skipped so the graph stays whole.
        """
        if not torch.compiler.is_compiling():
            check_inputs(self.config, input_ids, token_type_ids, attention_mask, inputs_embeds)
        return self.bert(input_ids, attention_mask, token_type_ids, inputs_embeds=inputs_embeds,
                         output_hidden_states=output_hidden_states,
                         output_attentions=output_attentions)


def sentence_head(config: BertConfig, spec: DenseHead | None,
                  num_outputs: int | None = None) -> ClassificationHead | DenseClassificationHead:
    """The family's sentence classifier: linear on the pooler (``spec`` None) or a hidden
    layer of its own on the first token."""
    if spec is None:
        return ClassificationHead(config, num_outputs)
    return DenseClassificationHead(config, spec, num_outputs)


def sentence_vector(head: nn.Module, encoded: EncoderOutput) -> Tensor:
    """What ``head`` reads: the pooled vector, or the first token's hidden state."""
    if isinstance(head, DenseClassificationHead):
        return encoded.last_hidden_state[:, 0]                            # (B, H)
    return encoded.pooler_output


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
        return PreTrainingOutput(*self._pretrain(
            input_ids, attention_mask, token_type_ids, labels, next_sentence_label,
            inputs_embeds, output_hidden_states, output_attentions))

    def _pretrain(self, input_ids: Tensor | None, attention_mask: Tensor | None,
                  token_type_ids: Tensor | None, labels: Tensor | None,
                  pair_labels: Tensor | None, inputs_embeds: Tensor | None,
                  output_hidden_states: bool, output_attentions: bool | Collection[int]
                  ) -> tuple[Any, ...]:
        """Loss, MLM logits, pair logits, hidden states, attentions: the fields of both
        pretraining outputs (NSP for BERT, sentence order for ALBERT)."""
        encoded = self._encode(input_ids, attention_mask, token_type_ids, inputs_embeds,
                               output_hidden_states, output_attentions)
        token_logits = self.mlm(encoded.last_hidden_state, self.bert.embeddings.word.weight)
        pair_logits = self.nsp(encoded.pooler_output)                     # (B, 2)
        loss = None
        if labels is not None and pair_labels is not None:
            loss = (token_cross_entropy(token_logits, labels)
                    + token_cross_entropy(pair_logits, pair_labels))
        return loss, token_logits, pair_logits, encoded.hidden_states, encoded.attentions


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
        spec = config.family.sequence_head
        self.bert = Bert(config, add_pooler=spec is None)
        self.classifier = sentence_head(config, spec)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None, *,
                inputs_embeds: Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False) -> HeadOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, inputs_embeds,
                               output_hidden_states, output_attentions)
        logits = self.classifier(sentence_vector(self.classifier, encoded))  # (B, C)
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
        spec = config.family.choice_head
        self.bert = Bert(config, add_pooler=spec is None)
        self.classifier = sentence_head(config, spec, num_outputs=1)
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
        logits = self.classifier(sentence_vector(self.classifier, encoded))
        logits = logits.view(-1, num_choices)                             # (B, C)
        loss = token_cross_entropy(logits, labels) if labels is not None else None
        return HeadOutput(loss, logits, encoded.hidden_states, encoded.attentions)


# ---- the other families: the same classes, bound to another model_type ----------------------


class RobertaModel(BertModel):
    """RoBERTa's bare encoder (positions counted past the padding index, one segment)."""

    model_type = "roberta"


class RobertaForMaskedLM(BertForMaskedLM):
    """RoBERTa's masked-LM head (``lm_head``, GELU transform, tied decoder)."""

    model_type = "roberta"


class RobertaForSequenceClassification(BertForSequenceClassification):
    """RoBERTa's classifier: dense + tanh on ``<s>``, then the output projection."""

    model_type = "roberta"


class RobertaForTokenClassification(BertForTokenClassification):
    """A label per token on RoBERTa."""

    model_type = "roberta"


class RobertaForQuestionAnswering(BertForQuestionAnswering):
    """Start and end scores per token on RoBERTa."""

    model_type = "roberta"


class RobertaForMultipleChoice(BertForMultipleChoice):
    """One score per choice from RoBERTa's pooled vector."""

    model_type = "roberta"


class DistilBertModel(BertModel):
    """DistilBERT's bare encoder: no segment embeddings, no pooler."""

    model_type = "distilbert"


class DistilBertForMaskedLM(BertForMaskedLM):
    """DistilBERT's masked-LM head (``vocab_transform``, ``vocab_projector`` tied)."""

    model_type = "distilbert"


class DistilBertForSequenceClassification(BertForSequenceClassification):
    """DistilBERT's classifier: ReLU pre-classifier on ``[CLS]``, then the classifier."""

    model_type = "distilbert"


class DistilBertForTokenClassification(BertForTokenClassification):
    """A label per token on DistilBERT."""

    model_type = "distilbert"


class DistilBertForQuestionAnswering(BertForQuestionAnswering):
    """Start and end scores per token on DistilBERT (``qa_dropout`` before the scores)."""

    model_type = "distilbert"


class DistilBertForMultipleChoice(BertForMultipleChoice):
    """One score per choice from DistilBERT's pre-classifier on ``[CLS]``."""

    model_type = "distilbert"


class AlbertModel(BertModel):
    """ALBERT's bare encoder: factorised embeddings, layers shared across depth."""

    model_type = "albert"


class AlbertForPreTraining(BertForPreTraining):
    """ALBERT's pretraining heads: masked LM (at the embedding width) and sentence order;
    the loss is their sum."""

    model_type = "albert"

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                sentence_order_label: Tensor | None = None, *,
                inputs_embeds: Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False) -> SentenceOrderOutput:
        return SentenceOrderOutput(*self._pretrain(
            input_ids, attention_mask, token_type_ids, labels, sentence_order_label,
            inputs_embeds, output_hidden_states, output_attentions))


class AlbertForMaskedLM(BertForMaskedLM):
    """ALBERT's masked-LM head (dense to the embedding width E, tied decoder)."""

    model_type = "albert"


class AlbertForSequenceClassification(BertForSequenceClassification):
    """A classifier on ALBERT's pooled vector."""

    model_type = "albert"


class AlbertForTokenClassification(BertForTokenClassification):
    """A label per token on ALBERT."""

    model_type = "albert"


class AlbertForQuestionAnswering(BertForQuestionAnswering):
    """Start and end scores per token on ALBERT."""

    model_type = "albert"


class AlbertForMultipleChoice(BertForMultipleChoice):
    """One score per choice from ALBERT's pooled vector."""

    model_type = "albert"


class ElectraModel(BertModel):
    """ELECTRA's bare encoder (embeddings projected to H when narrower, no pooler)."""

    model_type = "electra"


class ElectraForPreTraining(PreTrainedModel):
    """The ELECTRA discriminator: for every token, was it replaced by the generator?

    ``labels`` are 1 for replaced tokens, 0 for original ones; the loss is binary
    cross-entropy over the real (unpadded) tokens.
    """

    model_type = "electra"
    optional_prefixes = ("discriminator.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = Bert(config)
        self.discriminator = ReplacedTokenHead(config)
        self.init_weights()

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None, *,
                inputs_embeds: Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool | Collection[int] = False) -> HeadOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, inputs_embeds,
                               output_hidden_states, output_attentions)
        logits = self.discriminator(encoded.last_hidden_state)             # (B, T)
        loss = (replaced_token_loss(logits, labels, attention_mask) if labels is not None
                else None)
        return HeadOutput(loss, logits, encoded.hidden_states, encoded.attentions)


class ElectraForMaskedLM(BertForMaskedLM):
    """The ELECTRA generator: a masked-LM head at the embedding width, tied decoder."""

    model_type = "electra"


class ElectraForSequenceClassification(BertForSequenceClassification):
    """ELECTRA's classifier: dense + GELU on ``[CLS]``, then the output projection."""

    model_type = "electra"


class ElectraForTokenClassification(BertForTokenClassification):
    """A label per token on ELECTRA."""

    model_type = "electra"


class ElectraForQuestionAnswering(BertForQuestionAnswering):
    """Start and end scores per token on ELECTRA."""

    model_type = "electra"


class ElectraForMultipleChoice(BertForMultipleChoice):
    """One score per choice from ELECTRA's summary layer (dense + GELU) on ``[CLS]``."""

    model_type = "electra"


MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {
    cls.__name__: cls for cls in (
        BertModel, BertForPreTraining, BertForMaskedLM, BertForNextSentencePrediction,
        BertForSequenceClassification, BertForTokenClassification, BertForQuestionAnswering,
        BertForMultipleChoice,
        RobertaModel, RobertaForMaskedLM, RobertaForSequenceClassification,
        RobertaForTokenClassification, RobertaForQuestionAnswering, RobertaForMultipleChoice,
        DistilBertModel, DistilBertForMaskedLM, DistilBertForSequenceClassification,
        DistilBertForTokenClassification, DistilBertForQuestionAnswering,
        DistilBertForMultipleChoice,
        AlbertModel, AlbertForPreTraining, AlbertForMaskedLM, AlbertForSequenceClassification,
        AlbertForTokenClassification, AlbertForQuestionAnswering, AlbertForMultipleChoice,
        ElectraModel, ElectraForPreTraining, ElectraForMaskedLM,
        ElectraForSequenceClassification, ElectraForTokenClassification,
        ElectraForQuestionAnswering, ElectraForMultipleChoice)
}
"""Every model class by its ``transformers`` name (what ``config.json``'s architectures say)."""


