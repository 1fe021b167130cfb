"""Knowledge distillation of a BERT teacher into a DistilBERT student (Sanh et al. 2019).

Two pieces, both from the DistilBERT paper and its reference scripts (Hugging Face
``research_projects/distillation``):

**Initialisation** (:func:`init_student`). The student has the teacher's width and half its
depth; it starts from the teacher's own weights rather than at random, which the paper's
ablation found worth more than any loss term. Student layer ``i`` copies teacher layer
:func:`teacher_layers` ``[i]`` (one layer out of two for the usual 12 → 6), and the word and
position embeddings, the embedding LayerNorm and the whole MLM head are copied.

DistilBERT has no segment embeddings. Hugging Face's extraction script drops the teacher's;
bertkit instead *folds* the teacher's segment-0 vector into every position row. Every token a
distillation run feeds the teacher is in segment 0 (single packed segments, no NSP), where the
teacher's embedding is ``word + position + type[0]``; with the fold the student's embedding
layer computes exactly that, so the copied first layer starts on the inputs it was trained on
(dropping ``type[0]`` shifts every input vector before the LayerNorm, an error the student must
first train away). A student with all of the teacher's layers reproduces the teacher exactly.

**The loss** (:class:`DistillationObjective`), on a dynamically masked batch that the teacher
(eval mode, no gradient) and the student both read::

    loss = α_ce · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T))   mean over masked positions
         + α_mlm · CE(z_s, labels)                                 mean over masked positions
         + α_cos · (1 − cos(h_s, h_t))                             mean over real tokens

with ``z`` the MLM logits, ``h`` the last hidden states. The T² keeps the soft-target
gradients on the scale of the hard-target ones as T changes (Hinton et al. 2015). Defaults
are the reference training command's: T = 2, α_ce = 5, α_mlm = 2, α_cos = 1. The KL term is
taken at the masked positions (the reference script's ``--restrict_ce_to_mask``), which lets
both models decode only those M rows (sparse prediction, as in pretraining).

Legend: B batch, T tokens, H hidden, V vocabulary, V' padded vocabulary, M masked positions,
R real (unpadded) tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bertkit.data.batch import Batch
from bertkit.errors import ConfigError, UsageError
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import PreTrainedModel
from bertkit.objectives.masked_lm import masked_lm_logits, sparse_masked_lm, summarize
from bertkit.variants.distilbert import distilbert_base

#: Fields in which a student must equal its teacher for the teacher's layers to be copied.
SHARED_FIELDS = ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size",
                 "hidden_act")


@dataclass
class DistillationLoss:
    """Temperature and weights of the three loss terms (defaults: the DistilBERT recipe)."""

    temperature: float = 2.0
    alpha_ce: float = 5.0   # soft-target KL
    alpha_mlm: float = 2.0  # the student's own masked-LM cross-entropy
    alpha_cos: float = 1.0  # cosine between student and teacher last hidden states

    def validate(self) -> DistillationLoss:
        """Raise :class:`ConfigError` naming the first setting that cannot work."""
        if not self.temperature > 0:
            raise ConfigError(f"distillation temperature must be > 0, got {self.temperature!r}")
        weights = {"alpha_ce": self.alpha_ce, "alpha_mlm": self.alpha_mlm,
                   "alpha_cos": self.alpha_cos}
        for name, value in weights.items():
            if not value >= 0:
                raise ConfigError(f"distillation weight {name} must be >= 0, got {value!r}")
        if not any(weights.values()):
            raise ConfigError("distillation weights alpha_ce, alpha_mlm and alpha_cos are all 0: "
                              "nothing to train")
        return self


# --------------------------------------------------------------------------- the student


def teacher_layers(teacher_depth: int, student_depth: int) -> list[int]:
    """Which teacher layer each student layer copies: ``floor(i · L_t / L_s)``.

    Evenly spaced from the first layer: one out of two for 12 → 6 (0, 2, 4, 6, 8, 10, the
    paper's "one layer out of two"), one out of three for 12 → 4, every layer when the depths
    are equal. (Hugging Face's extraction script hard-codes 0, 2, 4, 7, 9, 11, which keeps
    the last layer; pass such a list to :func:`init_student` to use it.)
    """
    if not 1 <= student_depth <= teacher_depth:
        raise ConfigError(f"the student's num_hidden_layers ({student_depth}) must be between 1 "
                          f"and the teacher's ({teacher_depth})")
    return [i * teacher_depth // student_depth for i in range(student_depth)]


def student_config(teacher: BertConfig, **overrides: Any) -> BertConfig:
    """A DistilBERT config of the teacher's width and half its depth (``overrides`` change
    any field, e.g. ``num_hidden_layers=3`` or dropout), checked against the teacher."""
    shape = {name: getattr(teacher, name) for name in (
        *SHARED_FIELDS, "max_position_embeddings", "hidden_dropout_prob",
        "attention_probs_dropout_prob", "initializer_range", "pad_token_id")}
    config = distilbert_base(**{**shape, "num_hidden_layers": max(teacher.num_hidden_layers // 2,
                                                                  1), **overrides})
    check_student(config, teacher)
    return config


def check_student(student: BertConfig, teacher: BertConfig, teacher_name: str = "teacher"
                  ) -> None:
    """Refuse a student the teacher's weights cannot initialise, naming both values."""
    if student.model_type != "distilbert":
        raise ConfigError(f"the student config has model_type={student.model_type!r}; "
                          "distillation trains a 'distilbert' student")
    for name in SHARED_FIELDS:
        mine, theirs = getattr(student, name), getattr(teacher, name)
        if mine != theirs:
            raise ConfigError(f"the student's {name}={mine!r} differs from {teacher_name}'s "
                              f"{name}={theirs!r}; a DistilBERT student keeps its teacher's "
                              "width to copy its layers (change the depth only)")
    if student.max_position_embeddings > teacher.max_position_embeddings:
        raise ConfigError(
            f"the student's max_position_embeddings={student.max_position_embeddings} exceeds "
            f"{teacher_name}'s {teacher.max_position_embeddings}: positions are copied from it")
    if student.sinusoidal_pos_embds:
        raise ConfigError("the student has sinusoidal_pos_embds=True, but its positions are "
                          "copied from the teacher's learned table; set it to false")
    teacher_layers(teacher.num_hidden_layers, student.num_hidden_layers)


@torch.no_grad()
def init_student(student: PreTrainedModel, teacher: PreTrainedModel,
                 layers: Sequence[int] | None = None) -> list[int]:
    """Copy the teacher's weights into the student; returns the teacher layer of each student
    layer (``layers``, default :func:`teacher_layers`).

    Both models carry an encoder ``.bert`` and an MLM head ``.mlm`` (e.g. a
    :class:`~bertkit.model.pretrained.BertForMaskedLM` or ``BertForPreTraining`` teacher and a
    :class:`~bertkit.model.pretrained.DistilBertForMaskedLM` student). The teacher's segment-0
    embedding is added to every copied position row (see the module docstring).
    """
    check_student(student.config, teacher.config)
    depth = len(teacher.bert.layers)
    chosen = list(layers) if layers is not None else teacher_layers(depth, len(student.bert.layers))
    if len(chosen) != len(student.bert.layers) or not all(0 <= j < depth for j in chosen):
        raise ConfigError(f"teacher layers {chosen} must name one layer in [0, {depth}) for each "
                          f"of the student's {len(student.bert.layers)} layers")
    source, target = teacher.bert.embeddings, student.bert.embeddings
    target.word.weight.copy_(source.word.weight)
    positions = source.position.weight[: target.position.weight.shape[0]]  # (P, H)
    if source.token_type is not None:
        positions = positions + source.token_type.weight[0]
    target.position.weight.copy_(positions)
    target.norm.load_state_dict(source.norm.state_dict())
    for mine, theirs in zip(student.bert.layers, chosen, strict=True):
        mine.load_state_dict(teacher.bert.layers[theirs].state_dict())
    student.mlm.load_state_dict(teacher.mlm.state_dict())
    return chosen


# --------------------------------------------------------------------------- the loss


def soft_target_loss(student_logits: Tensor, teacher_logits: Tensor,
                     temperature: float) -> Tensor:
    """Σ over rows of ``T² · KL(softmax(teacher / T) ‖ softmax(student / T))`` (float32).

    (M, V) logits each; divide by M for the mean. The KL is computed from log-probabilities on
    both sides, so padded vocabulary columns (probability exactly 0) add exactly 0.
    """
    log_student = F.log_softmax(student_logits.float() / temperature, dim=-1)   # (M, V)
    log_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)   # (M, V)
    kl = F.kl_div(log_student, log_teacher, reduction="sum", log_target=True)
    return kl * temperature**2


def cosine_loss(student_hidden: Tensor, teacher_hidden: Tensor,
                attention_mask: Tensor) -> tuple[Tensor, int]:
    """Σ over real tokens of ``1 − cos(h_s, h_t)``, and the number of real tokens.

    (B, T, H) hidden states and a (B, T) mask; padded positions are left out (their hidden
    states mean nothing, and bertkit's packed path leaves them zero).
    """
    keep = attention_mask.reshape(-1).nonzero().squeeze(1)                         # (R,)
    width = student_hidden.shape[-1]
    s = student_hidden.reshape(-1, width).index_select(0, keep).float()           # (R, H)
    t = teacher_hidden.reshape(-1, width).index_select(0, keep).float()           # (R, H)
    return (1.0 - F.cosine_similarity(s, t, dim=-1)).sum(), keep.numel()


class DistillationObjective(nn.Module):
    """``objective(batch) -> (loss, metrics)``: the distillation loss of a student against a
    frozen teacher, for the generic trainer (with ``pretraining_loss_fn`` as ``loss_fn``).

    The student's ``bert`` and ``mlm`` are this module's children (so its ``state_dict`` is the
    student's, and training checkpoints load back into it); the teacher is held outside the
    module tree — no parameters in the optimizer, nothing in checkpoints, untouched by
    ``train()`` — kept in eval mode without gradients, and moved to the batch's device on
    first use.

    Metrics: the student's ``mlm_*`` sums and counts (as :func:`sparse_masked_lm`), ``kl_loss``
    and ``cos_loss`` (batch means) with their sums and counts, ``teacher_agree`` (masked
    positions where the student's top prediction is the teacher's) and ``teacher_correct``;
    :func:`summarize_distillation` turns them into exact held-out figures.
    """

    def __init__(self, student: PreTrainedModel, teacher: PreTrainedModel,
                 loss: DistillationLoss | None = None, *,
                 pad_vocab_to_multiple_of: int | None = None) -> None:
        super().__init__()
        for role, model in (("student", student), ("teacher", teacher)):
            if not (isinstance(getattr(model, "bert", None), nn.Module)
                    and isinstance(getattr(model, "mlm", None), nn.Module)):
                raise UsageError(f"the {role} ({type(model).__name__}) needs .bert and .mlm "
                                 "modules: distillation compares masked-LM predictions")
        self.bert = student.bert
        self.mlm = student.mlm
        self.loss = (loss or DistillationLoss()).validate()
        self.pad_vocab_to_multiple_of = pad_vocab_to_multiple_of
        # Outside the module tree on purpose (see the class docstring).
        self.__dict__["model"] = student
        self.__dict__["teacher"] = teacher.eval().requires_grad_(False)

    model: PreTrainedModel
    teacher: PreTrainedModel

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        pad = self.pad_vocab_to_multiple_of
        student = sparse_masked_lm(self, batch, pad_vocab_to_multiple_of=pad)
        teacher_logits, teacher_hidden = self._teacher(batch, student.positions)
        count = student.positions.numel()
        kl_sum = soft_target_loss(student.logits, teacher_logits, self.loss.temperature)
        cos_sum, real = cosine_loss(student.encoded.last_hidden_state, teacher_hidden,
                                    batch.attention_mask)
        kl, cos = kl_sum / max(count, 1), cos_sum / max(real, 1)
        total = (self.loss.alpha_ce * kl + self.loss.alpha_mlm * student.loss
                 + self.loss.alpha_cos * cos)
        metrics = student.metrics
        with torch.no_grad():
            teacher_top = teacher_logits.argmax(dim=-1)                          # (M,)
            metrics.update(
                kl_loss=kl.detach(), kl_loss_sum=kl_sum.detach(),
                cos_loss=cos.detach(), cos_loss_sum=cos_sum.detach(),
                cos_count=torch.tensor(float(real), device=kl_sum.device),
                teacher_agree=(student.logits.argmax(dim=-1) == teacher_top).sum().float(),
                teacher_correct=(teacher_top == student.targets).sum().float())
        return total, metrics

    @torch.no_grad()
    def _teacher(self, batch: Batch, positions: Tensor) -> tuple[Tensor, Tensor]:
        """The teacher's (M, V') logits at the masked rows and its (B, T, H) hidden states."""
        teacher = self.teacher
        device = batch.input_ids.device
        if teacher.bert.embeddings.word.weight.device != device:
            teacher.to(device)
        hidden = teacher.bert(batch.input_ids, batch.attention_mask,
                              batch.token_type_ids).last_hidden_state             # (B, T, H)
        rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)   # (M, H)
        logits = masked_lm_logits(teacher.mlm, rows, teacher.bert.embeddings.word.weight,
                                  self.pad_vocab_to_multiple_of)                 # (M, V')
        return logits, hidden


def summarize_distillation(sums: Mapping[str, float | Tensor],
                           loss: DistillationLoss | None = None) -> dict[str, float]:
    """Exact held-out figures from summed (or equally averaged) distillation metrics: those of
    :func:`~bertkit.objectives.masked_lm.summarize` for the student, plus ``kl_loss``,
    ``cos_loss``, ``teacher_agreement`` (share of masked positions where student and teacher
    predict the same token), ``teacher_mlm_accuracy`` and, given the ``loss`` weights,
    ``distill_loss`` (their weighted sum: the training objective)."""
    value = {name: float(sums.get(name, 0.0)) for name in (  # float() of a 0-d tensor too
        "mlm_count", "cos_count", "kl_loss_sum", "teacher_agree", "teacher_correct",
        "cos_loss_sum")}
    result = summarize(sums)
    masked, real = value["mlm_count"], value["cos_count"]
    if masked > 0:
        result["kl_loss"] = value["kl_loss_sum"] / masked
        result["teacher_agreement"] = value["teacher_agree"] / masked
        result["teacher_mlm_accuracy"] = value["teacher_correct"] / masked
    if real > 0:
        result["cos_loss"] = value["cos_loss_sum"] / real
    if loss is not None and {"kl_loss", "mlm_loss", "cos_loss"} <= result.keys():
        result["distill_loss"] = (loss.alpha_ce * result["kl_loss"]
                                  + loss.alpha_mlm * result["mlm_loss"]
                                  + loss.alpha_cos * result["cos_loss"])
    return result
