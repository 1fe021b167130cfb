"""The distillation run driver: a BERT masked-LM teacher + raw text → a DistilBERT student
directory that ``transformers.DistilBertForMaskedLM`` (and
:class:`~bertkit.model.pretrained.DistilBertForMaskedLM`) loads, with the tokenizer beside it.

Everything but the model is the pretraining run's (:func:`bertkit.runs.pretrain.run_training`):
the same corpus reading, packed sequences with dynamic masking (the RoBERTa regime — DistilBERT
dropped NSP and segment embeddings and masks afresh each draw), held-out evaluation, trainer,
resumable checkpoints and output layout. What this module adds is the teacher: loading and
checking it, deriving the student's config from it, and initialising the student from its
layers (:mod:`bertkit.objectives.distillation` holds the initialisation and the loss).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from bertkit.checkpoints.provenance import state_digest
from bertkit.errors import CheckpointError, ConfigError
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import BertForMaskedLM, DistilBertForMaskedLM, PreTrainedModel
from bertkit.objectives.distillation import (
    DistillationLoss,
    DistillationObjective,
    check_student,
    init_student,
    student_config,
    summarize_distillation,
    teacher_layers,
)
from bertkit.runs.pretrain import (
    PretrainResult,
    PretrainSettings,
    Regime,
    load_tokenizer,
    run_training,
)
from bertkit.tokenization import Tokenizer
from bertkit.training.settings import accepts_old_names

#: Families a teacher may come from (the student's embeddings copy a BERT position table).
TEACHER_FAMILIES = ("bert",)


@accepts_old_names
@dataclass(kw_only=True)
class DistillSettings(PretrainSettings):
    """A pretraining run's settings (corpus, data, budget, evaluation, checkpoints) plus the
    teacher and the loss. The student's shape comes from the teacher — its width, half its
    depth — changed by ``config_path`` (a DistilBERT ``config.json``) or ``model_overrides``
    (e.g. ``{"num_hidden_layers": 4}``), never by a preset."""

    teacher: str | Path  # a BERT masked-LM or pretraining checkpoint directory
    preset: str | None = None
    regime: Regime = "roberta"
    teacher_layers: list[int] | None = None  # default: evenly spaced (teacher_layers())
    loss: DistillationLoss = field(default_factory=DistillationLoss)

    def validate(self) -> DistillSettings:
        if self.regime != "roberta":
            raise ConfigError(f"distillation setting regime must be 'roberta' (single packed "
                              f"segments: a DistilBERT student has no segment embeddings and "
                              f"no NSP head), got {self.regime!r}")
        self.loss.validate()
        super().validate()
        return self

    def _check_model_source(self) -> None:
        if self.preset is not None:
            raise ConfigError(f"distillation setting preset must be None: the student's shape "
                              f"comes from the teacher (change it with config_path or "
                              f"model_overrides), got {self.preset!r}")


def load_teacher(path: str | Path) -> BertForMaskedLM:
    """A BERT checkpoint with its masked-LM head, in eval mode.

    Raises:
        CheckpointError: the directory holds another family's model, or a BERT without MLM
            head weights (a fine-tuned classifier, a bare encoder) — naming the checkpoint and
            what distillation needs.
    """
    config = BertConfig.from_pretrained(path)
    if config.model_type not in TEACHER_FAMILIES:
        kind = ", ".join(config.extra.get("architectures") or []) or config.model_type
        raise CheckpointError(
            f"teacher {path} is a {config.model_type!r} checkpoint ({kind}); bertkit distills "
            f"a BERT masked-LM teacher (model_type 'bert', e.g. from `bertkit pretrain`) into "
            f"a DistilBERT student")
    teacher, report = BertForMaskedLM.from_pretrained(path, output_loading_info=True)
    missing = [name for name in report.new if name.startswith("mlm.")]
    if missing:
        raise CheckpointError(
            f"teacher {path} is a BERT without masked-LM head weights (missing {missing[0]} "
            f"and {len(missing) - 1} more); distillation needs the teacher's MLM predictions: "
            "give a pretraining or masked-LM checkpoint")
    return teacher


def distill_config(settings: DistillSettings, teacher: BertConfig,
                   tokenizer: Tokenizer) -> BertConfig:
    """The student's config: derived from the teacher (or read from ``config_path``), with
    ``model_overrides`` applied, checked against the teacher and the tokenizer."""
    base = (BertConfig.from_pretrained(settings.config_path) if settings.config_path
            else student_config(teacher))
    try:
        config = dataclasses.replace(base, **settings.model_overrides).validate()
    except TypeError as err:  # an unknown field name
        raise ConfigError(f"model override: {err}") from None
    check_student(config, teacher, f"teacher {settings.teacher}")
    if tokenizer.vocab_size != teacher.vocab_size:
        raise ConfigError(f"tokenizer {settings.tokenizer} has a vocabulary of "
                          f"{tokenizer.vocab_size} tokens but teacher {settings.teacher} has "
                          f"vocab_size={teacher.vocab_size}; use the teacher's tokenizer")
    if config.max_position_embeddings < settings.seq_len:
        raise ConfigError(f"seq_len={settings.seq_len} exceeds the student's "
                          f"max_position_embeddings={config.max_position_embeddings}")
    return config


def distill(settings: DistillSettings, *, resume: bool = False) -> PretrainResult:
    """Distil ``settings.teacher`` into a DistilBERT student on ``settings.corpus``; returns
    when a budget is spent or on Ctrl-C. ``result.eval`` holds the student's held-out MLM
    figures and its agreement with the teacher (:func:`summarize_distillation`).

    Raises:
        BertkitError subclasses: a teacher that is not a BERT masked LM, a student whose width
        differs from the teacher's, a tokenizer of another vocabulary, and every error of
        :func:`~bertkit.runs.pretrain.pretrain` (corpus, resume, save).
    """
    settings.validate()
    teacher = load_teacher(settings.teacher)
    tokenizer = load_tokenizer(settings.tokenizer)
    config = distill_config(settings, teacher.config, tokenizer)
    layers = settings.teacher_layers or teacher_layers(teacher.config.num_hidden_layers,
                                                       config.num_hidden_layers)

    def build() -> tuple[PreTrainedModel, DistillationObjective]:
        student = DistilBertForMaskedLM(config)
        init_student(student, teacher, layers)
        return student, DistillationObjective(student, teacher, settings.loss)

    return run_training(settings, tokenizer, config, build, resume=resume,
                        summarize_eval=partial(summarize_distillation, loss=settings.loss),
                        identity={"teacher_sha256": state_digest(teacher)})
