"""The BERT pretraining objective: masked-LM loss on the masked positions only, plus NSP/SOP.

Why "sparse prediction". Only ~15 % of positions carry an MLM label, yet the vocabulary
projection (H → V = 30,522) is the largest matrix multiply of a small BERT's step: computed for
every position it is ~70 % of the FLOPs of a 4-layer, hidden-256 model and its (B·T, V) float32
logits dominate peak memory. So the M labelled rows are gathered *before* the MLM transform and
the tied decoder, as Google's original ``gather_indexes`` did; the loss is the same number.

Why no compute-time vocabulary padding. Earlier versions padded the tied (V × H) decoder matrix
to a multiple of 64 rows on every step (``F.pad``) for a slightly faster GEMM; that copied the
whole table each step and re-implemented the MLM head. The M gathered rows now go through the
model's own :class:`~bertkit.model.heads.MaskedLMHead`; ``pad_vocab_to_multiple_of`` is accepted
for one release and has no effect.

Why a module, not just a function. The training loop (``bertkit.training``) calls
``loss_fn(model, batch)`` and requires ``model(...)`` to be called on the object it passes, which
may be a ``DistributedDataParallel`` or ``torch.compile`` wrapper: calling ``model.bert`` on a
wrapper would bypass DDP's gradient synchronisation or the compiled graph. The sparse forward
therefore lives in :class:`PreTrainingObjective`, an ``nn.Module`` whose children *are* the
pretraining model's ``bert``, ``mlm`` and ``nsp`` (shared, not copied): its ``state_dict`` has
exactly the pretraining model's keys, so training checkpoints load into
:class:`~bertkit.model.pretrained.BertForPreTraining` and back.

Metrics are returned both as per-batch means (for a progress line) and as sums and counts, so
evaluation over many batches can be exact — ``Σ loss_sum / Σ count``, not a mean of per-batch
means, which over-weights batches with few masked tokens. :func:`summarize` turns sums (or the
trainer's batch-averaged sums: the ratio is the same) into losses, accuracies and perplexity.

Why a content-token accuracy. Most masked targets of running text are a few function words
("the", "of", "said"): a model that has learned only those reaches a respectable MLM accuracy
and knows no words. Given a (V,) ``content_tokens`` table (True outside the corpus's most
frequent tokens), the objective also counts the masked targets that are content tokens and how
many it got right; :func:`summarize` reports their accuracy as ``content_accuracy``.

Legend: B batch, T tokens, H hidden, V vocabulary, M masked positions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bertkit.data.batch import Batch
from bertkit.errors import InputError, UsageError
from bertkit.model.bert import Bert
from bertkit.model.heads import MaskedLMHead, PairHead
from bertkit.model.inputs import out_of_range
from bertkit.model.losses import IGNORE_INDEX
from bertkit.model.outputs import EncoderOutput

#: A logit with exactly zero probability in float32 and bfloat16 (exp(-1e9 - max) = 0), for
#: callers that pad logits themselves; the objectives no longer pad (kept for one release).
PAD_LOGIT = -1e9

#: Sums and counts per batch; :func:`summarize` turns (sums of) them into exact metrics.
#: ``sop_*`` replace ``nsp_*`` for sentence order; ``rtd_*`` are ELECTRA's discriminator
#: (counted over real tokens; ``rtd_replaced`` is how many of them the generator replaced).
SUM_METRICS = ("mlm_loss_sum", "mlm_correct", "mlm_count",
               "mlm_content_correct", "mlm_content_count",
               "nsp_loss_sum", "nsp_correct", "nsp_count",
               "sop_loss_sum", "sop_correct", "sop_count",
               "rtd_loss_sum", "rtd_correct", "rtd_count", "rtd_replaced")

#: What a pair head predicts: next sentence (BERT) or sentence order (ALBERT).
PAIR_TASKS = ("nsp", "sop")


class PreTrainingModel(Protocol):
    """What the objective needs: an encoder with a pooler, a tied MLM head, a pair head."""

    bert: Bert
    mlm: MaskedLMHead
    nsp: PairHead | None


class PreTrainingObjective(nn.Module):
    """MLM (+ NSP/SOP when the batch has ``next_sentence_labels``) with sparse prediction.

    ``objective(batch) -> (loss, metrics)``. Give the objective itself to the trainer, with
    :func:`pretraining_loss_fn` as ``loss_fn``; save the model with ``objective.model``::

        objective = PreTrainingObjective(BertForPreTraining(config))
        trainer = Trainer(objective, pretraining_loss_fn, loader, train_config)
        trainer.fit()
        objective.model.save_pretrained(out_dir)

    MLM-only batches (RoBERTa regime) leave the pooler and NSP head without gradients: under
    DDP either train a model without them
    (:class:`~bertkit.model.pretrained.BertForMaskedLM`) or set
    ``TrainConfig.ddp_find_unused_parameters=True``.

    Args:
        model: a :class:`~bertkit.model.pretrained.BertForPreTraining` or anything with ``.bert``,
            ``.mlm`` and (for NSP) ``.nsp``. Its submodules are shared, not copied.
        pad_vocab_to_multiple_of: deprecated, no effect (the decoder is no longer padded);
            a value other than ``None`` or 1 warns. Removed in the next release.
        pair_task: the name the pair head's metrics carry: ``"nsp"`` or ``"sop"`` (ALBERT's
            sentence order; the loss is the same two-way cross-entropy).
        content_tokens: (V,) bool, True for the tokens whose accuracy is also reported as
            ``content_accuracy`` (see the module doc); not saved with the model.
    """

    content_tokens: Tensor | None

    def __init__(self, model: nn.Module, *, pad_vocab_to_multiple_of: int | None = None,
                 pair_task: str = "nsp", content_tokens: Tensor | None = None) -> None:
        super().__init__()
        missing = [name for name in ("bert", "mlm") if not isinstance(getattr(model, name, None),
                                                                       nn.Module)]
        if missing:
            raise UsageError(f"PreTrainingObjective needs a model with .bert and .mlm modules "
                             f"(e.g. BertForPreTraining); {type(model).__name__} lacks "
                             f"{', '.join('.' + m for m in missing)}")
        check_vocab_padding(pad_vocab_to_multiple_of)
        if pair_task not in PAIR_TASKS:
            raise UsageError(f"pair_task must be one of {PAIR_TASKS}, got {pair_task!r}")
        self.pair_task = pair_task
        self.bert = model.bert
        self.mlm = model.mlm
        self.nsp = getattr(model, "nsp", None)
        # Kept outside the module tree (no duplicate state_dict keys): for save_pretrained.
        self.__dict__["model"] = model
        self.pad_vocab_to_multiple_of = pad_vocab_to_multiple_of
        # Not persistent: the state_dict keeps exactly the pretraining model's keys.
        self.register_buffer("content_tokens", content_tokens, persistent=False)

    model: nn.Module

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """One batch's loss (a scalar, MLM + NSP) and its metrics (0-d tensors, detached)."""
        return pretraining_loss(self, batch, pad_vocab_to_multiple_of=self.pad_vocab_to_multiple_of,
                                pair_task=self.pair_task)


def pretraining_loss_fn(model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
    """The trainer's ``loss_fn``: ``model`` is a :class:`PreTrainingObjective`, possibly wrapped
    by DDP or ``torch.compile``, and is called as the trainer's protocol requires."""
    return model(batch)


def pretraining_loss(
    model: PreTrainingModel | nn.Module,
    batch: Batch,
    *,
    pad_vocab_to_multiple_of: int | None = None,
    pair_task: str = "nsp",
) -> tuple[Tensor, dict[str, Tensor]]:
    """MLM loss over the masked rows only, plus NSP loss when ``batch.next_sentence_labels``
    is set; dtype follows the caller's autocast, cross-entropy is always float32.

    Returns ``(loss, metrics)``: ``loss`` = mean MLM cross-entropy + mean NSP cross-entropy (the
    definition of ``BertForPreTraining``'s loss), and metrics ``mlm_loss``, ``mlm_accuracy``,
    ``nsp_loss``, ``nsp_accuracy`` (batch means; ``sop_*`` when ``pair_task="sop"``), the sums
    and counts of :data:`SUM_METRICS`, and ``tokens`` (real, unpadded tokens: the trainer's
    throughput unit).

    A batch with no masked position gives an MLM loss of 0 (no gradient), not NaN, so a rare
    empty batch cannot poison training; its counts say it held nothing.

    Raises:
        UsageError: the batch has no ``mlm_labels``, or NSP labels but the model no NSP head.
        InputError: labels of the wrong shape, or an MLM label outside ``[0, vocab_size)``.
    """
    nsp_labels = _checked_pair_labels(model, batch)
    mlm = sparse_masked_lm(model, batch, pad_vocab_to_multiple_of=pad_vocab_to_multiple_of)
    loss, metrics = mlm.loss, mlm.metrics

    if nsp_labels is not None:
        pair_logits = model.nsp(mlm.encoded.pooler_output)               # (B, 2)
        nsp_loss_sum = F.cross_entropy(pair_logits.float(), nsp_labels, reduction="sum")
        with torch.no_grad():
            nsp_correct = (pair_logits.argmax(dim=-1) == nsp_labels).sum().float()
        loss = loss + nsp_loss_sum / nsp_labels.numel()
        metrics.update(task_metrics(pair_task, nsp_loss_sum, nsp_correct, nsp_labels.numel()))
    return loss, metrics


@dataclass
class SparseMaskedLM:
    """What :func:`sparse_masked_lm` computed: the encoder's output, the M masked rows' logits
    (over the vocabulary V), their targets and flat positions in the (B·T) batch, the
    mean loss and the ``mlm_*`` metrics (plus ``tokens``)."""

    encoded: EncoderOutput
    logits: Tensor       # (M, V)
    targets: Tensor      # (M,)
    positions: Tensor    # (M,) indices into the flattened (B·T) batch
    loss: Tensor
    metrics: dict[str, Tensor]


def sparse_masked_lm(model: PreTrainingModel | nn.Module, batch: Batch, *,
                     pad_vocab_to_multiple_of: int | None = None) -> SparseMaskedLM:
    """The MLM half of :func:`pretraining_loss`: encode, gather the masked rows, decode them
    with the model's MLM head (``pad_vocab_to_multiple_of``: deprecated, no effect).

    Separate so that an objective that needs the logits themselves (ELECTRA samples its
    replacements from them) shares the one sparse forward pass and its label checks.
    """
    labels = _checked_mlm_labels(batch)
    flat_labels = labels.reshape(-1)                                     # (B·T,)
    positions = (flat_labels != IGNORE_INDEX).nonzero().squeeze(1)       # (M,)
    targets = flat_labels.index_select(0, positions)                     # (M,)
    _check_targets(targets, positions, labels.shape[1], model.bert.embeddings.word.weight.shape[0])

    encoded = model.bert(batch.input_ids, batch.attention_mask, batch.token_type_ids)
    hidden = encoded.last_hidden_state                                   # (B, T, H)
    rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)  # (M, H)
    logits = masked_lm_logits(model.mlm, rows, model.bert.embeddings.word.weight,
                              pad_vocab_to_multiple_of)                  # (M, V)
    # Loss and accuracy both read the float32 copy: under bf16 autocast, argmax over the bf16
    # logits is ~3× slower on CPU than over float32 (36 vs 13 ms for 608 × 30,528).
    scores = logits.float()                                              # (M, V)
    mlm_loss_sum = F.cross_entropy(scores, targets, reduction="sum")
    count = positions.numel()
    with torch.no_grad():
        hits = scores.detach().argmax(dim=-1) == targets                 # (M,)
        mlm_correct = hits.sum().float()
    metrics = task_metrics("mlm", mlm_loss_sum, mlm_correct, count)
    content = getattr(model, "content_tokens", None)
    if content is not None:
        is_content = content.index_select(0, targets)                    # (M,)
        metrics["mlm_content_correct"] = (hits & is_content).sum().float()
        metrics["mlm_content_count"] = is_content.sum().float()
    metrics["tokens"] = batch.attention_mask.sum().float()
    return SparseMaskedLM(encoded, logits, targets, positions, mlm_loss_sum / max(count, 1),
                          metrics)


def masked_lm_logits(head: MaskedLMHead, rows: Tensor, word_embeddings: Tensor,
                     pad_vocab_to_multiple_of: int | None = None) -> Tensor:
    """(M, H) rows → (M, V) logits of the tied decoder: ``head(rows, word_embeddings)``.

    ``pad_vocab_to_multiple_of`` is deprecated and has no effect (see the module docstring).
    """
    check_vocab_padding(pad_vocab_to_multiple_of)
    return head(rows, word_embeddings)


def check_vocab_padding(pad_vocab_to_multiple_of: int | None) -> None:
    """Refuse an invalid ``pad_vocab_to_multiple_of``; warn that a valid one no longer acts."""
    if pad_vocab_to_multiple_of is None or pad_vocab_to_multiple_of == 1:
        return
    if pad_vocab_to_multiple_of < 1:
        raise UsageError(f"pad_vocab_to_multiple_of must be >= 1 or None, "
                         f"got {pad_vocab_to_multiple_of}")
    warnings.warn("pad_vocab_to_multiple_of has no effect (the MLM decoder is no longer padded) "
                  "and will be removed in the next release", DeprecationWarning, stacklevel=3)


def summarize(sums: Mapping[str, float | Tensor]) -> dict[str, float]:
    """Exact metrics from summed (or equally averaged) :data:`SUM_METRICS`.

    Works on the trainer's ``evaluate()`` output too: it averages every metric over the same
    number of batches, and a ratio of two averages is the ratio of the sums. Returns
    ``mlm_loss``, ``mlm_accuracy``, ``perplexity`` (= exp(mlm_loss)) and, for each pair or
    replaced-token task with non-zero counts, ``<task>_loss`` and ``<task>_accuracy``; with
    replaced-token counts also ``replaced_fraction`` (share of real tokens the generator
    replaced) and ``rtd_baseline`` (the accuracy of always answering "original"); with
    content-token counts ``content_accuracy``.
    """
    def value(name: str) -> float:
        item = sums.get(name, 0.0)
        return float(item.item() if isinstance(item, Tensor) else item)

    result: dict[str, float] = {}
    for task in ("mlm", *PAIR_TASKS, "rtd"):
        count = value(f"{task}_count")
        if count > 0:
            result[f"{task}_loss"] = value(f"{task}_loss_sum") / count
            result[f"{task}_accuracy"] = value(f"{task}_correct") / count
    if value("mlm_content_count") > 0:
        result["content_accuracy"] = value("mlm_content_correct") / value("mlm_content_count")
    if "rtd_loss" in result:
        result["replaced_fraction"] = value("rtd_replaced") / value("rtd_count")
        result["rtd_baseline"] = 1.0 - result["replaced_fraction"]
    if "mlm_loss" in result:
        result["perplexity"] = math.exp(min(result["mlm_loss"], 700.0))
    return result


class PreTrainingMetrics:
    """Accumulate per-batch metrics of :func:`pretraining_loss`; :meth:`compute` is exact."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = dict.fromkeys(SUM_METRICS, 0.0)
        self.batches = 0

    def update(self, metrics: Mapping[str, float | Tensor]) -> None:
        for name in SUM_METRICS:
            if name in metrics:
                item = metrics[name]
                self.sums[name] += float(item.item() if isinstance(item, Tensor) else item)
        self.batches += 1

    def compute(self) -> dict[str, float]:
        return summarize(self.sums)


@torch.no_grad()
def evaluate(objective: nn.Module, batches: Iterable[Batch], *,
             autocast_dtype: torch.dtype | None = None,
             max_batches: int | None = None) -> dict[str, float]:
    """Held-out MLM/NSP loss, accuracy and perplexity over ``batches``, aggregated exactly.

    ``objective`` is a :class:`PreTrainingObjective`; it is put in eval mode (no dropout) and
    returned to its previous mode. Batches are moved to the objective's device.
    """
    was_training = objective.training
    objective.eval()
    device = next(objective.parameters()).device
    totals = PreTrainingMetrics()
    try:
        for index, batch in enumerate(batches):
            if max_batches is not None and index >= max_batches:
                break
            with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16,
                                enabled=autocast_dtype is not None):
                _, metrics = objective(batch.to(device))
            totals.update(metrics)
    finally:
        objective.train(was_training)
    if totals.batches == 0:
        raise UsageError("evaluate() got no batches")
    return {**totals.compute(), "batches": float(totals.batches)}


def task_metrics(task: str, loss_sum: Tensor, correct: Tensor, count: int) -> dict[str, Tensor]:
    """One task's batch means and the sums and counts :func:`summarize` aggregates exactly."""
    loss_sum = loss_sum.detach()
    denominator = max(count, 1)
    return {
        f"{task}_loss": loss_sum / denominator,
        f"{task}_accuracy": correct / denominator,
        f"{task}_loss_sum": loss_sum,
        f"{task}_correct": correct,
        f"{task}_count": torch.tensor(float(count), device=loss_sum.device),
    }


def _checked_mlm_labels(batch: Batch) -> Tensor:
    """The batch's MLM labels, checked against its input ids."""
    labels = batch.mlm_labels
    if labels is None:
        raise UsageError("the pretraining objective needs batch.mlm_labels (IGNORE_INDEX = -100 "
                         "where nothing is predicted); this batch has none")
    shape = tuple(batch.input_ids.shape)
    if tuple(labels.shape) != shape:
        raise InputError(f"batch.mlm_labels has shape {tuple(labels.shape)} but input_ids has "
                         f"{shape}")
    return labels


def _checked_pair_labels(model: Any, batch: Batch) -> Tensor | None:
    """The batch's NSP/SOP labels (None when it has none), checked against the model."""
    shape = tuple(batch.input_ids.shape)
    nsp_labels = batch.next_sentence_labels
    if nsp_labels is None:
        return None
    if getattr(model, "nsp", None) is None or model.bert.pooler is None:
        raise UsageError("batch has next_sentence_labels but the model has no NSP head or no "
                         "pooler; drop the labels (MLM-only, RoBERTa-style) or use "
                         "BertForPreTraining")
    if tuple(nsp_labels.shape) != (shape[0],):
        raise InputError(f"batch.next_sentence_labels has shape {tuple(nsp_labels.shape)}, "
                         f"expected ({shape[0]},)")
    return nsp_labels


def _check_targets(targets: Tensor, positions: Tensor, length: int, vocab: int) -> None:
    """Refuse MLM labels outside the vocabulary with their place in the batch, instead of
    cross-entropy's opaque index error (or a device-side assert on a GPU)."""
    bad = out_of_range(targets, vocab)
    if bad is None:
        return
    row, col = divmod(int(positions[(targets == bad).nonzero()[0, 0]]), length)
    raise InputError(f"batch.mlm_labels holds {bad} at (batch {row}, position {col}); "
                     f"expected {IGNORE_INDEX} or an id in [0, vocab_size={vocab})")
