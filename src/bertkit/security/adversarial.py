"""Adversarial probes: small edits that change a fine-tuned classifier's prediction.

Why: the shift detector and the consistency check need real adversarial inputs to be measured
against, and a user needs to know how few edits flip their model. The attack here is a
black-box greedy search (TextFooler/TextAttack style, written small): at each step every
single-word edit of the current text is scored by the classifier, the edit that most lowers
the probability of the original label is kept, and the search stops when the label flips or a
budget (edits, queries) runs out. Edits:

- **insertion** of a word from a candidate list at any position ("unfortunately" appended to a
  positive review);
- **substitution** of a word by a candidate the model's own masked LM proposes for that slot
  (meaning-preserving in the MLM's view) — needs a masked LM and its tokenizer;
- **character typos**: swap two adjacent letters, drop a letter, double a letter.

Texts are split on whitespace; edits operate on those words and the result is joined back with
single spaces.

Shape legend: N texts, C labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from bertkit.errors import InputError, UsageError
from bertkit.security.confidence import classifier_logits, softmax
from bertkit.tokenization import Tokenizer

EDIT_KINDS = ("insert", "substitute", "typo")


@dataclass(frozen=True)
class Edit:
    """One word-level edit: ``kind`` at word ``position``, ``before`` → ``after``."""

    kind: str
    position: int
    before: str
    after: str


@dataclass
class AttackResult:
    """The outcome for one text."""

    original: str
    adversarial: str
    original_label: int
    final_label: int
    original_probability: float   # of the original label, before
    final_probability: float      # of the original label, after
    queries: int
    edits: list[Edit] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.final_label != self.original_label


def typos(word: str) -> list[str]:
    """Character-level variants of ``word``: adjacent swaps, one deletion, one doubling
    (words shorter than 3 characters are left alone: too few letters to stay readable)."""
    if len(word) < 3:
        return []
    out: list[str] = []
    for i in range(len(word) - 1):
        if word[i] != word[i + 1]:
            out.append(word[:i] + word[i + 1] + word[i] + word[i + 2:])
    for i in range(1, len(word) - 1):
        out.append(word[:i] + word[i + 1:])
        out.append(word[:i] + word[i] + word[i:])
    return sorted(set(out) - {word})


@torch.no_grad()
def mlm_substitutes(mlm: nn.Module, tokenizer: Tokenizer, words: Sequence[str], position: int,
                    top_k: int = 8) -> list[str]:
    """Whole-word replacements the masked LM ranks highest for ``words[position]`` (the word
    itself, subword pieces and special tokens excluded)."""
    if getattr(mlm, "mlm", None) is None:
        raise UsageError(f"{type(mlm).__name__} has no masked-LM head; substitution needs a "
                         "BertForMaskedLM")
    if tokenizer.mask_token_id is None:
        raise UsageError("the tokenizer has no mask token; substitution needs one")
    masked = [*words[:position], tokenizer.mask_token, *words[position + 1:]]
    encoded = tokenizer(" ".join(masked), return_tensors="pt")
    ids = encoded["input_ids"]
    where = (ids[0] == tokenizer.mask_token_id).nonzero()
    if len(where) != 1:
        return []
    device = next(mlm.parameters()).device
    logits = mlm(input_ids=ids.to(device), attention_mask=encoded["attention_mask"].to(device)
                 ).logits[0, int(where[0])]                                   # (V,)
    special = set(tokenizer.all_special_ids)
    out: list[str] = []
    for token_id in logits.argsort(descending=True).tolist():
        token = tokenizer.convert_ids_to_tokens(token_id)
        if token_id in special or token.startswith("##") or token == words[position].lower():
            continue
        out.append(token)
        if len(out) == top_k:
            break
    return out


def _candidates(words: list[str], kinds: Sequence[str], insertions: Sequence[str],
                mlm: nn.Module | None, mlm_tokenizer: Tokenizer | None,
                top_k: int) -> list[tuple[list[str], Edit]]:
    out: list[tuple[list[str], Edit]] = []
    if "insert" in kinds:
        for pos in range(len(words) + 1):
            for word in insertions:
                out.append(([*words[:pos], word, *words[pos:]], Edit("insert", pos, "", word)))
    if "substitute" in kinds and mlm is not None and mlm_tokenizer is not None:
        for pos, word in enumerate(words):
            for new in mlm_substitutes(mlm, mlm_tokenizer, words, pos, top_k):
                out.append(([*words[:pos], new, *words[pos + 1:]],
                            Edit("substitute", pos, word, new)))
    if "typo" in kinds:
        for pos, word in enumerate(words):
            for new in typos(word):
                out.append(([*words[:pos], new, *words[pos + 1:]], Edit("typo", pos, word, new)))
    return out


def attack(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str], *,
           kinds: Sequence[str] = ("insert", "typo"), insertions: Sequence[str] = (),
           mlm: nn.Module | None = None, mlm_tokenizer: Tokenizer | None = None,
           max_edits: int = 2, max_queries: int = 2000, top_k: int = 8,
           batch_size: int = 64) -> list[AttackResult]:
    """Greedy black-box attack on each text (see the module docstring); every classifier
    call on a candidate counts as one query, and the search stops at ``max_queries``."""
    if isinstance(texts, str) or not texts:
        raise InputError("expected a non-empty list of texts to attack")
    unknown = sorted(set(kinds) - set(EDIT_KINDS))
    if unknown or not kinds:
        raise UsageError(f"edit kind(s) {unknown or list(kinds)}; expected some of {EDIT_KINDS}")
    if "insert" in kinds and not insertions:
        raise UsageError("insertion attacks need candidate words (insertions=[...])")
    if "substitute" in kinds and mlm is None:
        raise UsageError("substitution attacks need a masked LM (mlm=..., mlm_tokenizer=...)")
    if max_edits < 0 or max_queries < 1:
        raise UsageError("max_edits must be >= 0 and max_queries >= 1")
    first = softmax(classifier_logits(model, tokenizer, texts, batch_size=batch_size))
    results = []
    for text, probs in zip(texts, first, strict=True):
        label = int(probs.argmax())
        words = text.split()
        if not words:
            raise InputError("cannot attack an empty text")
        current, current_p, current_label = words, float(probs[label]), label
        edits: list[Edit] = []
        queries = 0
        while len(edits) < max_edits and current_label == label and queries < max_queries:
            options = _candidates(current, kinds, insertions, mlm, mlm_tokenizer or tokenizer,
                                  top_k)[: max_queries - queries]
            if not options:
                break
            p = softmax(classifier_logits(model, tokenizer, [" ".join(w) for w, _ in options],
                                          batch_size=batch_size))              # (N, C)
            queries += len(options)
            flipped = np.flatnonzero(p.argmax(1) != label)
            best = int(flipped[np.argmin(p[flipped, label])] if len(flipped)
                       else np.argmin(p[:, label]))
            if not len(flipped) and p[best, label] >= current_p:
                break  # no edit helps: stop rather than wander
            current, edit = options[best]
            current_p, current_label = float(p[best, label]), int(p[best].argmax())
            edits.append(edit)
        results.append(AttackResult(text, " ".join(current), label, current_label,
                                    float(probs[label]), current_p, queries, edits))
    return results


def attack_summary(results: Sequence[AttackResult]) -> dict[str, float]:
    """Success rate, and mean edits / queries over the successful attacks."""
    if not results:
        raise InputError("no attack results to summarise")
    wins = [r for r in results if r.success]
    return {"attacked": float(len(results)), "success_rate": len(wins) / len(results),
            "mean_edits": float(np.mean([len(r.edits) for r in wins])) if wins else float("nan"),
            "mean_queries": float(np.mean([r.queries for r in wins])) if wins else float("nan")}
