"""The model classes users load, train and save, named as ``transformers`` names them.

Each is the encoder (:class:`bertkit.model.Bert`) plus a head and the head's standard loss,
and reads and writes Hugging Face checkpoint directories, so existing code moves over by
changing an import: ``bertkit.BertForSequenceClassification.from_pretrained(path)``.

The other families' classes (``RobertaForMaskedLM``, ``AlbertForPreTraining``, …) are the same
classes bound to another ``model_type``: the encoder and heads read the family's switches from
the config, and the family's name table maps the checkpoint. Every class keeps its encoder
under ``.bert``, so code written against one family runs on all of them.

What the classes share (loading, saving, the family check, the CPU fast form behind
``prepare_for_inference``) is :class:`~bertkit.model.base.PreTrainedModel`.

Shape legend: B batch, T tokens, H hidden, V vocabulary, C labels or choices.
"""

from __future__ import annotations

from typing import Any, Unpack

from torch import Tensor, nn

from bertkit.errors import UsageError
from bertkit.model.base import MODEL_CLASSES, EncodeOptions, PreTrainedModel
from bertkit.model.bert import Bert
from bertkit.model.config import BertConfig, DenseHead
from bertkit.model.heads import (
    ClassificationHead,
    DenseClassificationHead,
    MaskedLMHead,
    PairHead,
    ReplacedTokenHead,
    SpanHead,
)
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


class BertModel(PreTrainedModel):
    """The bare encoder: hidden states and the pooled ``[CLS]`` vector."""

    optional_prefixes = ("bert.pooler.",)
    bare_encoder = True

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.bert = Bert(config, add_pooler=add_pooling_layer)

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None,
                **options: Unpack[EncodeOptions]) -> EncoderOutput:
        return self._encode(input_ids, attention_mask, token_type_ids, **options)


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
                next_sentence_label: Tensor | None = None,
                **options: Unpack[EncodeOptions]) -> PreTrainingOutput:
        return PreTrainingOutput(*self._pretrain(
            input_ids, attention_mask, token_type_ids, labels, next_sentence_label, options))

    def _pretrain(self, input_ids: Tensor | None, attention_mask: Tensor | None,
                  token_type_ids: Tensor | None, labels: Tensor | None,
                  pair_labels: Tensor | None, options: EncodeOptions) -> tuple[Any, ...]:
        """Loss, MLM logits, pair logits, hidden states, attentions: the fields of both
        pretraining outputs (NSP for BERT, sentence order for ALBERT)."""
        encoded = self._encode(input_ids, attention_mask, token_type_ids, **options)
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
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                **options: Unpack[EncodeOptions]) -> HeadOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, **options)
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
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                **options: Unpack[EncodeOptions]) -> HeadOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, **options)
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
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                **options: Unpack[EncodeOptions]) -> HeadOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, **options)
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
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                **options: Unpack[EncodeOptions]) -> HeadOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, **options)
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
                end_positions: Tensor | None = None,
                **options: Unpack[EncodeOptions]) -> SpanOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, **options)
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
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                **options: Unpack[EncodeOptions]) -> HeadOutput:
        inputs_embeds = options.pop("inputs_embeds", None)
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference is None:
            raise UsageError("pass input_ids or inputs_embeds")
        num_choices = reference.shape[1]

        def flat(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.reshape(-1, *t.shape[2:])    # (B·C, T, …)

        encoded = self._encode(flat(input_ids), flat(attention_mask), flat(token_type_ids),
                               inputs_embeds=flat(inputs_embeds), **options)
        logits = self.classifier(sentence_vector(self.classifier, encoded))
        logits = logits.view(-1, num_choices)                             # (B, C)
        loss = token_cross_entropy(logits, labels) if labels is not None else None
        return HeadOutput(loss, logits, encoded.hidden_states, encoded.attentions)


# ---- the other families: the same classes, bound to another model_type ----------------------


def family_class(base: type[PreTrainedModel], model_type: str, doc: str) -> type[PreTrainedModel]:
    """``base`` bound to the family ``model_type``, under the name ``transformers`` gives it
    (``family_class(BertForMaskedLM, "roberta", …)`` is ``RobertaForMaskedLM``): the encoder
    and heads read the family's switches from the config, the name table maps its checkpoint."""
    name = base.role_name(model_type)
    return type(name, (base,), {"model_type": model_type, "__doc__": doc,
                                "__module__": __name__, "__qualname__": name})


RobertaModel = family_class(
    BertModel, "roberta",
    "RoBERTa's bare encoder (positions counted past the padding index, one segment).")
RobertaForMaskedLM = family_class(
    BertForMaskedLM, "roberta",
    "RoBERTa's masked-LM head (``lm_head``, GELU transform, tied decoder).")
RobertaForSequenceClassification = family_class(
    BertForSequenceClassification, "roberta",
    "RoBERTa's classifier: dense + tanh on ``<s>``, then the output projection.")
RobertaForTokenClassification = family_class(
    BertForTokenClassification, "roberta", "A label per token on RoBERTa.")
RobertaForQuestionAnswering = family_class(
    BertForQuestionAnswering, "roberta", "Start and end scores per token on RoBERTa.")
RobertaForMultipleChoice = family_class(
    BertForMultipleChoice, "roberta", "One score per choice from RoBERTa's pooled vector.")
DistilBertModel = family_class(
    BertModel, "distilbert", "DistilBERT's bare encoder: no segment embeddings, no pooler.")
DistilBertForMaskedLM = family_class(
    BertForMaskedLM, "distilbert",
    "DistilBERT's masked-LM head (``vocab_transform``, ``vocab_projector`` tied).")
DistilBertForSequenceClassification = family_class(
    BertForSequenceClassification, "distilbert",
    "DistilBERT's classifier: ReLU pre-classifier on ``[CLS]``, then the classifier.")
DistilBertForTokenClassification = family_class(
    BertForTokenClassification, "distilbert", "A label per token on DistilBERT.")
DistilBertForQuestionAnswering = family_class(
    BertForQuestionAnswering, "distilbert",
    "Start and end scores per token on DistilBERT (``qa_dropout`` before the scores).")
DistilBertForMultipleChoice = family_class(
    BertForMultipleChoice, "distilbert",
    "One score per choice from DistilBERT's pre-classifier on ``[CLS]``.")
AlbertModel = family_class(
    BertModel, "albert",
    "ALBERT's bare encoder: factorised embeddings, layers shared across depth.")


class AlbertForPreTraining(BertForPreTraining):
    """ALBERT's pretraining heads: masked LM (at the embedding width) and sentence order;
    the loss is their sum."""

    model_type = "albert"

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                sentence_order_label: Tensor | None = None,
                **options: Unpack[EncodeOptions]) -> SentenceOrderOutput:
        return SentenceOrderOutput(*self._pretrain(
            input_ids, attention_mask, token_type_ids, labels, sentence_order_label, options))


AlbertForMaskedLM = family_class(
    BertForMaskedLM, "albert",
    "ALBERT's masked-LM head (dense to the embedding width E, tied decoder).")
AlbertForSequenceClassification = family_class(
    BertForSequenceClassification, "albert", "A classifier on ALBERT's pooled vector.")
AlbertForTokenClassification = family_class(
    BertForTokenClassification, "albert", "A label per token on ALBERT.")
AlbertForQuestionAnswering = family_class(
    BertForQuestionAnswering, "albert", "Start and end scores per token on ALBERT.")
AlbertForMultipleChoice = family_class(
    BertForMultipleChoice, "albert", "One score per choice from ALBERT's pooled vector.")
ElectraModel = family_class(
    BertModel, "electra",
    "ELECTRA's bare encoder (embeddings projected to H when narrower, no pooler).")


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
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                **options: Unpack[EncodeOptions]) -> HeadOutput:
        encoded = self._encode(input_ids, attention_mask, token_type_ids, **options)
        logits = self.discriminator(encoded.last_hidden_state)             # (B, T)
        loss = (replaced_token_loss(logits, labels, attention_mask) if labels is not None
                else None)
        return HeadOutput(loss, logits, encoded.hidden_states, encoded.attentions)


ElectraForMaskedLM = family_class(
    BertForMaskedLM, "electra",
    "The ELECTRA generator: a masked-LM head at the embedding width, tied decoder.")
ElectraForSequenceClassification = family_class(
    BertForSequenceClassification, "electra",
    "ELECTRA's classifier: dense + GELU on ``[CLS]``, then the output projection.")
ElectraForTokenClassification = family_class(
    BertForTokenClassification, "electra", "A label per token on ELECTRA.")
ElectraForQuestionAnswering = family_class(
    BertForQuestionAnswering, "electra", "Start and end scores per token on ELECTRA.")
ElectraForMultipleChoice = family_class(
    BertForMultipleChoice, "electra",
    "One score per choice from ELECTRA's summary layer (dense + GELU) on ``[CLS]``.")


MODEL_CLASSES.update({
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
})
