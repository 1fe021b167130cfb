"""Membership inference through the masked-LM head: was this text in the training data?

Why: a model that memorised its pretraining texts leaks them, and the amount of leakage is
measurable. A masked LM has no left-to-right likelihood, so the score is the
pseudo-log-likelihood (PLL, Salazar et al. 2020): mask each token in turn and sum
log p(token | rest). Members tend to get higher PLLs. The raw PLL mostly measures how *typical*
a text is, so the likelihood-ratio attack subtracts the PLL of a reference model that never saw
the members (Mireshghallah et al. 2022, AUC 0.66 → 0.90 on their data).

Reported numbers: AUC and TPR at 1 % FPR (Carlini et al. 2022) on known members vs known
non-members, "higher score = member".

Shape legend: R masked rows in a batch, T tokens, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from bertkit.errors import InputError, UsageError
from bertkit.model.heads import MaskedLMHead
from bertkit.security.confidence import ArrayLike, as_array, auroc, tpr_at_fpr
from bertkit.tokenization import Tokenizer


def membership_metrics(member_scores: ArrayLike, nonmember_scores: ArrayLike, *,
                       max_fpr: float = 0.01) -> dict[str, float]:
    """AUC and TPR at ``max_fpr`` FPR of a membership score (higher = member)."""
    members = as_array(member_scores, name="member scores (known members)", ndim=1)
    others = as_array(nonmember_scores, name="non-member scores (known non-members)", ndim=1)
    return {"auc": auroc(members, others),
            f"tpr_at_{max_fpr:g}_fpr": tpr_at_fpr(members, others, max_fpr),
            "n_members": float(len(members)), "n_nonmembers": float(len(others))}


@dataclass
class PseudoLikelihood:
    """The PLL of one text: Σ log p(token_i | text with token i masked) over scored tokens."""

    total: float
    tokens: int
    per_token: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        """Average log-probability per token: the negative MLM loss, comparable across
        lengths (the loss-based attack's score)."""
        return self.total / self.tokens if self.tokens else float("nan")


def _require_mlm(model: nn.Module) -> None:
    if getattr(model, "mlm", None) is None:
        raise UsageError(f"{type(model).__name__} has no masked-LM head; pseudo-log-likelihood "
                         "needs a BertForMaskedLM (or BertForPreTraining) model")


def _masked_logits(model: nn.Module, input_ids: Tensor, attention_mask: Tensor,
                   rows: Tensor, positions: Tensor) -> Tensor:
    """Vocabulary logits at one masked position per row. (R, T) → (R, V)

    A bertkit masked LM (``.bert`` encoder + ``.mlm`` head) decodes only the masked rows: the
    vocabulary projection of all T positions would cost T times more and is discarded."""
    bert, head = getattr(model, "bert", None), getattr(model, "mlm", None)
    if isinstance(head, MaskedLMHead) and bert is not None:
        hidden = bert(input_ids, attention_mask).last_hidden_state[rows, positions]  # (R, H)
        return head(hidden, bert.embeddings.word.weight)                        # (R, V)
    out = model(input_ids=input_ids, attention_mask=attention_mask)
    logits = getattr(out, "logits", None)
    if logits is None:
        logits = getattr(out, "prediction_logits", None)
    if logits is None or logits.dim() != 3:
        raise UsageError(f"{type(model).__name__} did not return per-token vocabulary logits")
    return logits[rows, positions]                                             # (R, V)


@torch.no_grad()
def pseudo_log_likelihood_ids(model: nn.Module, sequences: Sequence[Sequence[int]],
                              scored: Sequence[Sequence[bool]], *, mask_token_id: int,
                              pad_token_id: int = 0, batch_size: int = 64
                              ) -> list[PseudoLikelihood]:
    """PLL of pre-tokenised sequences; ``scored[i][t]`` says whether token t of sequence i is
    masked and scored (special tokens are not).

    Every (sequence, position) pair becomes one masked row; rows from all sequences are packed
    into batches of ``batch_size`` so short texts do not waste a forward pass each.
    """
    _require_mlm(model)
    if len(sequences) != len(scored):
        raise InputError(f"{len(scored)} score masks for {len(sequences)} sequences")
    if batch_size < 1:
        raise UsageError(f"batch_size is {batch_size}; expected >= 1")
    jobs = [(i, t) for i, (ids, keep) in enumerate(zip(sequences, scored, strict=True))
            for t in range(len(ids)) if keep[t]]
    results = [PseudoLikelihood(0.0, 0) for _ in sequences]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start:start + batch_size]
            width = max(len(sequences[i]) for i, _ in chunk)
            ids = torch.full((len(chunk), width), pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (i, t) in enumerate(chunk):
                seq = torch.as_tensor(list(sequences[i]), dtype=torch.long)
                ids[row, : len(seq)] = seq
                mask[row, : len(seq)] = 1
                ids[row, t] = mask_token_id
            rows = torch.arange(len(chunk), device=device)
            positions = torch.tensor([t for _, t in chunk], device=device)
            targets = torch.tensor([sequences[i][t] for i, t in chunk])
            logits = _masked_logits(model, ids.to(device), mask.to(device), rows, positions)
            log_probs = torch.log_softmax(logits.float(), dim=-1)                 # (R, V)
            picked = log_probs[rows, targets.to(log_probs.device)].cpu().tolist()
            for (i, _), value in zip(chunk, picked, strict=True):
                results[i].per_token.append(value)
    finally:
        model.train(was_training)
    for result in results:
        result.tokens = len(result.per_token)
        result.total = float(sum(result.per_token))
    return results


def pseudo_log_likelihood(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str], *,
                          batch_size: int = 64, max_length: int | None = None
                          ) -> list[PseudoLikelihood]:
    """PLL of each text under a masked LM (every non-special token masked in turn)."""
    if isinstance(texts, str):
        raise UsageError("texts must be a list of strings, not one string")
    if not texts:
        raise InputError("no texts given; at least one text is needed for a likelihood")
    mask_id = tokenizer.mask_token_id
    if mask_id is None:
        raise UsageError("the tokenizer has no mask token; pseudo-log-likelihood needs one")
    encoded = tokenizer(list(texts), truncation=max_length is not None, max_length=max_length,
                        return_special_tokens_mask=True)
    scored = [[not s for s in special] for special in encoded["special_tokens_mask"]]
    return pseudo_log_likelihood_ids(model, encoded["input_ids"], scored,
                                     mask_token_id=mask_id, pad_token_id=tokenizer.pad_token_id,
                                     batch_size=batch_size)


def loss_attack_scores(plls: Sequence[PseudoLikelihood]) -> np.ndarray:
    """Loss attack (Yeom et al. 2018): score = mean per-token PLL = −MLM loss."""
    return np.array([p.mean for p in plls], dtype=np.float64)


def likelihood_ratio_scores(target: Sequence[PseudoLikelihood],
                            reference: Sequence[PseudoLikelihood]) -> np.ndarray:
    """Likelihood-ratio attack: log p_target − log p_reference per text (both PLLs)."""
    if len(target) != len(reference):
        raise InputError(f"{len(reference)} reference likelihoods for {len(target)} texts")
    if not target:
        raise InputError("no likelihoods given")
    return np.array([t.total - r.total for t, r in zip(target, reference, strict=True)])


def membership_audit(model: nn.Module, tokenizer: Tokenizer, members: Sequence[str],
                     nonmembers: Sequence[str], *, reference_model: nn.Module | None = None,
                     reference_tokenizer: Tokenizer | None = None, batch_size: int = 64,
                     max_fpr: float = 0.01) -> dict[str, Any]:
    """Run the loss attack (and, with a reference model, the likelihood-ratio attack) on
    known members and non-members; return AUC and TPR at ``max_fpr`` FPR for each."""
    if not members or not nonmembers:
        raise InputError(f"membership audit needs known members and non-members "
                         f"(got {len(members)} and {len(nonmembers)})")
    target_m = pseudo_log_likelihood(model, tokenizer, members, batch_size=batch_size)
    target_n = pseudo_log_likelihood(model, tokenizer, nonmembers, batch_size=batch_size)
    report: dict[str, Any] = {
        "loss_attack": membership_metrics(loss_attack_scores(target_m),
                                          loss_attack_scores(target_n), max_fpr=max_fpr)}
    if reference_model is not None:
        ref_tok = reference_tokenizer or tokenizer
        ref_m = pseudo_log_likelihood(reference_model, ref_tok, members, batch_size=batch_size)
        ref_n = pseudo_log_likelihood(reference_model, ref_tok, nonmembers, batch_size=batch_size)
        report["likelihood_ratio"] = membership_metrics(
            likelihood_ratio_scores(target_m, ref_m), likelihood_ratio_scores(target_n, ref_n),
            max_fpr=max_fpr)
    return report
