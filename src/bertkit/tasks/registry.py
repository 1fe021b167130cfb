"""Every task bertkit knows, declared once: :data:`TASKS`, one :class:`TaskSpec` each.

A task is a model class with what the layers above need to use it: the graph head and output
names that ONNX export writes, the HTTP route the server answers, and — for the fine-tuned
tasks — the parts that predict on files and in-memory inputs (:mod:`bertkit.tasks.parts`),
its default window and its command-line help. Fine-tuning, ``bertkit predict``/``evaluate``,
:class:`~bertkit.tasks.predictor.Predictor`, the server and export all look tasks up here, so
adding a task is one entry below plus its parts (features, collate, metrics, predictor
functions; a run driver and its CLI options in :mod:`bertkit.runs.finetune` /
:mod:`bertkit.cli.finetune`).

Names: a fine-tuned task goes by its short command name (``classify``, ``ner``, ``qa``), a bare
head by its export name (``encoder``, ``masked-lm`` …); :func:`task_spec` accepts the export
name of any task too (``sequence-classification``).

Shape legend: B batch, T tokens, H hidden, V vocabulary, K labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from bertkit.errors import UsageError
from bertkit.model.config import BertConfig
from bertkit.model.outputs import (
    EncoderOutput,
    HeadOutput,
    ModelOutput,
    PreTrainingOutput,
    SpanOutput,
)
from bertkit.model.pretrained import (
    MODEL_CLASSES,
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    PreTrainedModel,
)
from bertkit.tasks import parts
from bertkit.tasks.parts import Loaded, Records, Source

__all__ = ["FINETUNED", "HEADS", "ROUTES", "TASKS", "TaskSpec", "checkpoint_task",
           "finetuned_spec", "route_spec", "spec_of_class", "task_spec"]

GraphHead = Callable[[Any, Tensor, "Tensor | None"], tuple[Tensor, ...]]
"""``(model, hidden (B, T, H), pooled (B, H) or None) → the graph's outputs``."""


@dataclass(frozen=True)
class TaskSpec:
    """One task. ``outputs`` are named as the fields of ``output_class``; ``per_token`` lists
    the outputs with a token axis (compared at real positions only by export's ``verify``);
    ``choices``: inputs carry a choice axis ``(B, C, T)``. ``route`` is the server endpoint
    (None: not served). ``predict``/``serve`` are None for heads that are not fine-tuned;
    ``paired``: a served payload is a pair (text + pair, question + context); ``reads_texts``:
    raw texts are a valid input besides a file (QA needs contexts: no)."""

    name: str
    model_class: type[PreTrainedModel]
    head: str
    outputs: tuple[str, ...]
    output_class: type[ModelOutput]
    graph: GraphHead
    per_token: frozenset[str] = frozenset()
    choices: bool = False
    route: str | None = None
    predict: Callable[[Loaded, Source, bool], Records] | None = None
    serve: Callable[[Loaded, list[Any]], list[dict[str, Any]]] | None = None
    paired: bool = False
    reads_texts: bool = True
    max_length: int = 128
    help: str = ""


def _word(model: Any) -> Tensor:
    return model.bert.embeddings.word.weight                                    # (V, H)


def _serve_classify(loaded: Loaded, payloads: list[Any]) -> list[dict[str, Any]]:
    pairs = [p[1] for p in payloads]  # (text, pair or None)
    return parts.classify_texts(loaded, [p[0] for p in payloads],
                                pairs if pairs[0] is not None else None)


def _serve_qa(loaded: Loaded, payloads: list[Any]) -> list[dict[str, Any]]:
    return parts.qa_texts(loaded, [p[0] for p in payloads], [p[1] for p in payloads])


def _serve_choice(loaded: Loaded, payloads: list[Any]) -> list[dict[str, Any]]:
    return parts.choice_texts(loaded, [p[0] for p in payloads], [p[1] for p in payloads])


TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (
    TaskSpec("encoder", BertModel, "encoder", ("last_hidden_state", "pooler_output"),
             EncoderOutput, lambda m, h, p: (h,) if p is None else (h, p),     # (B,T,H), (B,H)
             frozenset({"last_hidden_state"}), route="embeddings"),
    TaskSpec("pretraining", BertForPreTraining, "pretraining",
             ("prediction_logits", "seq_relationship_logits"), PreTrainingOutput,
             lambda m, h, p: (m.mlm(h, _word(m)), m.nsp(p)),                   # (B,T,V), (B,2)
             frozenset({"prediction_logits"}), route="fill-mask"),
    TaskSpec("masked-lm", BertForMaskedLM, "masked-lm", ("logits",), HeadOutput,
             lambda m, h, p: (m.mlm(h, _word(m)),),                            # (B, T, V)
             frozenset({"logits"}), route="fill-mask"),
    TaskSpec("next-sentence", BertForNextSentencePrediction, "next-sentence", ("logits",),
             HeadOutput, lambda m, h, p: (m.nsp(p),)),                         # (B, 2)
    TaskSpec("classify", BertForSequenceClassification, "sequence-classification",
             ("logits",), HeadOutput, lambda m, h, p: (m.classifier(p),),      # (B, K)
             route="classify", predict=parts.predict_classify, serve=_serve_classify,
             paired=True, help="sequence classification / regression"),
    TaskSpec("ner", BertForTokenClassification, "token-classification", ("logits",),
             HeadOutput, lambda m, h, p: (m.classifier(h),),                   # (B, T, K)
             frozenset({"logits"}), route="ner", predict=parts.predict_ner,
             serve=lambda loaded, payloads: parts.ner_texts(loaded, payloads),
             help="token classification on CoNLL-style BIO files"),
    TaskSpec("qa", BertForQuestionAnswering, "question-answering",
             ("start_logits", "end_logits"), SpanOutput, lambda m, h, p: m.qa(h),  # (B, T) × 2
             frozenset({"start_logits", "end_logits"}), route="qa", predict=parts.predict_qa,
             serve=_serve_qa, paired=True, reads_texts=False, max_length=384,
             help="extractive QA on SQuAD 1.1 / 2.0 JSON"),
    TaskSpec("multiple-choice", BertForMultipleChoice, "multiple-choice", ("logits",),
             HeadOutput, lambda m, h, p: (m.classifier(p),), choices=True,     # (B·C, 1)
             route="multiple-choice", predict=parts.predict_choice, serve=_serve_choice,
             reads_texts=False, help="multiple choice on JSONL {context, choices, label}"),
)}
HEADS: dict[str, TaskSpec] = {spec.head: spec for spec in TASKS.values()}
"""The same tasks by export (graph head) name, in the same order."""
FINETUNED: tuple[str, ...] = tuple(name for name, spec in TASKS.items()
                                   if spec.predict is not None)
ROUTES: tuple[str, ...] = tuple(dict.fromkeys(spec.route for spec in TASKS.values()
                                              if spec.route is not None))
_BY_CLASS = {spec.model_class: spec for spec in TASKS.values()}


def task_spec(name: str) -> TaskSpec:
    """The task called ``name`` (its short name or its export name); a clear error otherwise."""
    spec = TASKS.get(name) or HEADS.get(name)
    if spec is None:
        raise UsageError(f"unknown task {name!r}; expected one of {sorted(TASKS)} (or an "
                         f"export name: {sorted(set(HEADS) - set(TASKS))})")
    return spec


def finetuned_spec(name: str) -> TaskSpec:
    """A task that fine-tuned models predict (``classify``, ``ner``, ``qa``)."""
    spec = TASKS.get(name)
    if spec is None or spec.predict is None:
        raise UsageError(f"task {name!r}; expected one of {list(FINETUNED)}")
    return spec


def route_spec(route: str) -> TaskSpec:
    """The first task the server answers on ``route`` (fill-mask: pretraining and masked-LM
    checkpoints both)."""
    for spec in TASKS.values():
        if spec.route == route:
            return spec
    raise UsageError(f"task {route!r}; expected auto or one of {list(ROUTES)}")


def spec_of_class(cls: type) -> TaskSpec | None:
    """The task of a model class (exact class: a family subclass is not one of these)."""
    return _BY_CLASS.get(cls)


def checkpoint_task(directory: str | Path) -> TaskSpec:
    """The task of a checkpoint, from ``architectures`` in its ``config.json`` (a bare encoder
    when absent or unknown)."""
    config = BertConfig.from_pretrained(Path(directory))
    for name in config.extra.get("architectures") or ():
        spec = spec_of_class(MODEL_CLASSES.get(name))  # type: ignore[arg-type]
        if spec is not None:
            return spec
    return TASKS["encoder"]
