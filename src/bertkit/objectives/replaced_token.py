"""ELECTRA's objective (Clark et al. 2020): a small generator fills the masked positions with
tokens it samples, and a discriminator decides, for every token, whether it was replaced.

Why the discriminator learns from every token. MLM gets a signal from the ~15 % masked
positions only; replaced-token detection asks a question of all of them, which is why ELECTRA
reaches a given fine-tuning accuracy with less compute. The generator exists only to make the
question hard: its replacements are plausible words, not uniform noise.

The recipe, as Google's ``run_pretraining.py`` does it:

- **Generator size.** The discriminator's config with ``hidden_size`` scaled by
  ``generator_size`` (0.25 by default), ``intermediate_size = 4 × hidden``, one head per 64
  dimensions, the same depth and the same embedding width E, so the two can share embeddings
  (:func:`generator_config`).
- **Tied embeddings.** Token, position and segment tables and the embedding LayerNorm are one
  module shared by both networks (Google's shared ``electra/embeddings`` scope); each network
  keeps its own E → H projection, since their H differ (:func:`tie_embeddings`).
- **Sampling, no gradient.** Replacements are drawn from the generator's softmax at
  temperature 1 (not its argmax, which would make replacements too easy to spot), under
  ``torch.no_grad``: the discriminator's loss does not train the generator.
- **Labels.** A position is "replaced" (1) only where the sampled token *differs* from the
  original; a generator that guesses right produced original text, labelled 0
  (:func:`corrupt_with_samples`).
- **Loss** = generator MLM + ``rtd_weight`` · discriminator binary cross-entropy, the latter
  averaged over real (non-padding) tokens. λ = 50 because the per-token BCE is far smaller than
  the MLM cross-entropy; it puts the two on a comparable footing.

Evaluation samples with a fixed seed (every evaluation of a run draws the same way), training
with the global generator, which the trainer checkpoints for exact resume.

Legend: B batch, T tokens, V vocabulary, V' padded vocabulary, M masked positions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bertkit.data.batch import Batch
from bertkit.errors import ConfigError, UsageError
from bertkit.model.config import BertConfig
from bertkit.objectives.masked_lm import SparseMaskedLM, sparse_masked_lm, task_metrics

#: Shared between generator and discriminator (everything in the embeddings but the projection).
TIED_EMBEDDINGS = ("word", "position", "token_type", "norm")


def generator_config(discriminator: BertConfig, size: float = 0.25) -> BertConfig:
    """The generator's config for a discriminator: ``size`` × its hidden width, 4 × that for the
    feed-forward, one attention head per 64 dimensions (fewer when 64 does not divide), the same
    depth and embedding width (Google's ``get_generator_config``)."""
    if not 0 < size <= 1:
        raise ConfigError(f"generator size must be in (0, 1] (a fraction of the discriminator's "
                          f"hidden size), got {size}")
    hidden = max(1, round(discriminator.hidden_size * size))
    heads = max(1, hidden // 64)
    while hidden % heads:
        heads -= 1
    return dataclasses.replace(
        discriminator, hidden_size=hidden, intermediate_size=4 * hidden,
        num_attention_heads=heads, embedding_size=discriminator.embedding_dim,
        extra=dict(discriminator.extra)).validate()


def tie_embeddings(generator: nn.Module, discriminator: nn.Module) -> None:
    """Make ``generator`` use ``discriminator``'s embedding tables and LayerNorm (the same
    modules, so the same storage); refuse embeddings of different shapes."""
    source, target = discriminator.bert.embeddings, generator.bert.embeddings
    for name in TIED_EMBEDDINGS:
        theirs, ours = getattr(source, name), getattr(target, name)
        shapes = [None if m is None else tuple(m.weight.shape) for m in (theirs, ours)]
        if shapes[0] != shapes[1]:
            raise ConfigError(f"cannot tie the generator's {name} embeddings "
                              f"{shapes[1]} to the discriminator's {shapes[0]}: the two "
                              "configs must share vocab_size, embedding_size, "
                              "max_position_embeddings and type_vocab_size")
        setattr(target, name, theirs)


def sample_replacements(logits: Tensor, *, temperature: float = 1.0,
                        generator: torch.Generator | None = None) -> Tensor:
    """(M, V') generator logits → (M,) token ids drawn from softmax(logits / temperature).

    Padded vocabulary columns have zero probability, so they are never drawn."""
    if logits.shape[0] == 0:
        return torch.empty(0, dtype=torch.long, device=logits.device)
    probs = F.softmax(logits.detach().float() / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def corrupt_with_samples(input_ids: Tensor, positions: Tensor, targets: Tensor,
                         sampled: Tensor) -> tuple[Tensor, Tensor]:
    """The discriminator's input and labels.

    Args:
        input_ids: (B, T) the generator's (masked) input.
        positions: (M,) flat indices of the masked positions in the (B·T) batch.
        targets: (M,) the original ids there.
        sampled: (M,) the generator's samples there.

    Returns:
        ``(corrupted, labels)``, both (B, T): the original text with ``sampled`` written at the
        masked positions, and 1 where that changed the token, 0 everywhere else (a sample equal
        to the original is original text).
    """
    original = input_ids.reshape(-1).clone()
    original[positions] = targets
    corrupted = original.clone()
    corrupted[positions] = sampled
    labels = (corrupted != original).long()
    return corrupted.view_as(input_ids), labels.view_as(input_ids)


class ElectraObjective(nn.Module):
    """Generator and discriminator trained jointly; ``objective(batch) -> (loss, metrics)``.

    The batch is an MLM batch (masked ``input_ids`` and ``mlm_labels``). Its children are the
    two models themselves (``generator.*``, ``discriminator.*`` in the state dict), so a
    training checkpoint holds both and each saves on its own with ``save_pretrained``. Give the
    objective to the trainer with :func:`~bertkit.objectives.pretraining_loss_fn`.

    Args:
        generator: an ``ElectraForMaskedLM`` (``.bert`` and ``.mlm``).
        discriminator: an ``ElectraForPreTraining`` (``.bert`` and ``.discriminator``).
        rtd_weight: λ, the weight of the discriminator's loss (ELECTRA: 50).
        temperature: of the generator's softmax when sampling (ELECTRA: 1).
        pad_vocab_to_multiple_of: see :class:`~bertkit.objectives.PreTrainingObjective`.
        eval_seed: the seed evaluation samples with.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, *,
                 rtd_weight: float = 50.0, temperature: float = 1.0,
                 pad_vocab_to_multiple_of: int | None = None, eval_seed: int = 0) -> None:
        super().__init__()
        for role, model, parts in (("generator", generator, ("bert", "mlm")),
                                   ("discriminator", discriminator, ("bert", "discriminator"))):
            missing = [p for p in parts if not isinstance(getattr(model, p, None), nn.Module)]
            if missing:
                raise UsageError(f"the ELECTRA {role} needs {', '.join('.' + p for p in parts)} "
                                 f"modules; {type(model).__name__} lacks "
                                 f"{', '.join('.' + m for m in missing)}")
        for name, value in (("rtd_weight", rtd_weight), ("temperature", temperature)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"ELECTRA {name} must be a positive number, got {value}")
        tie_embeddings(generator, discriminator)
        self.generator = generator
        self.discriminator = discriminator
        self.rtd_weight = rtd_weight
        self.temperature = temperature
        self.pad_vocab_to_multiple_of = pad_vocab_to_multiple_of
        self.eval_seed = eval_seed

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        return electra_loss(self, batch)


@dataclasses.dataclass
class Judged:
    """One batch through both networks: the generator's sparse MLM pass, and the
    discriminator's (B, T) ``logits`` for the corrupted text against its (B, T) ``labels``
    (1 = replaced), ``real`` marking the unpadded tokens."""

    mlm: SparseMaskedLM
    logits: Tensor
    labels: Tensor
    real: Tensor
    loss: Tensor  # the discriminator's BCE over the real tokens


def judge(objective: ElectraObjective, batch: Batch) -> Judged:
    """The generator fills the masked positions with samples (no gradient flows back through
    the sampling), the discriminator scores every token of the result."""
    mlm = sparse_masked_lm(objective.generator, batch,
                           pad_vocab_to_multiple_of=objective.pad_vocab_to_multiple_of)
    with torch.no_grad():
        rng = None
        if not objective.training:
            rng = torch.Generator(mlm.logits.device).manual_seed(objective.eval_seed)
        sampled = sample_replacements(mlm.logits, temperature=objective.temperature,
                                      generator=rng)                       # (M,)
        corrupted, labels = corrupt_with_samples(batch.input_ids, mlm.positions, mlm.targets,
                                                 sampled)                  # (B, T) each
    judged = objective.discriminator(corrupted, batch.attention_mask, batch.token_type_ids,
                                     labels=labels)
    return Judged(mlm, judged.logits, labels, batch.attention_mask.bool(), judged.loss)


def electra_loss(objective: ElectraObjective, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
    """Generator MLM loss + λ · discriminator replaced-token loss, and their metrics.

    Metrics: the generator's ``mlm_*`` (as :func:`~bertkit.objectives.pretraining_loss`),
    ``rtd_loss``, ``rtd_accuracy`` (over real tokens, "replaced" where the logit is positive),
    ``replaced_fraction``, the ``rtd_*`` sums and counts of
    :data:`~bertkit.objectives.SUM_METRICS`, and ``tokens``.
    """
    judged = judge(objective, batch)
    real, labels = judged.real, judged.labels
    count = int(real.sum())
    with torch.no_grad():
        correct = ((judged.logits > 0).long() == labels)[real].sum().float()
        replaced = labels[real].sum().float()
    metrics = {**judged.mlm.metrics,
               **task_metrics("rtd", judged.loss.detach() * count, correct, count),
               "rtd_replaced": replaced, "replaced_fraction": replaced / max(count, 1)}
    return judged.mlm.loss + objective.rtd_weight * judged.loss, metrics


def rtd_scores(objective: ElectraObjective, batches: Iterable[Batch]) -> tuple[Tensor, Tensor]:
    """The discriminator's float logits and 0/1 labels (1 = replaced), both (N,), over the real
    tokens of all ``batches`` together, in evaluation mode (the generator samples with the
    objective's fixed seed, as the evaluation's ``rtd_accuracy`` does).

    Why the raw scores: with ~15 % of tokens replaced, the accuracy at logit 0 equals the
    all-original rate until the discriminator is *confident* somewhere, while a ranking
    metric of these scores (ROC AUC, 0.5 = no skill) shows what it has learned before that.
    """
    was_training = objective.training
    objective.eval()
    logits, labels = [], []
    try:
        with torch.no_grad():
            for batch in batches:
                judged = judge(objective, batch)
                logits.append(judged.logits[judged.real].float())
                labels.append(judged.labels[judged.real])
    finally:
        objective.train(was_training)
    if not logits:
        raise UsageError("rtd_scores needs at least one batch")
    return torch.cat(logits), torch.cat(labels)
