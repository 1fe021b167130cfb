"""Backdoor-trigger scanning of a fine-tuned classifier.

Why: a poisoned classifier behaves normally on clean inputs and flips to an attacker's label
whenever a rare trigger word appears. Clean accuracy cannot reveal that; searching the input
space for short token sequences that flip *most* clean inputs to *one* label can. This module
scans model-level (it needs the model and some clean texts, not the poisoned training data):

1. **Candidates** per target label: every vocabulary word (small vocabularies), or the union
   of the top-k by a first-order (HotFlip-style) gradient estimate — the change of
   log p(target) if the token at an inserted slot became word v is ≈ (e_v − e_slot) ·
   ∂ log p / ∂ e_slot — and the top-k by a *single-word probe*: p(target) for the input
   ``[CLS] v [SEP]`` alone. A trigger decides the label whatever the context, so it wins the
   probe too; on real backdoored models the gradient estimate alone can rank the planted
   trigger past 1,000th (the embedding LayerNorm makes the linear estimate poor), while the
   probe costs one short forward per word.
2. **Exact attack-success rate (ASR)** of each candidate: insert it at the start of every clean
   text whose prediction is not the target; ASR = fraction that flips to the target.
3. **Greedy extension** of the best single tokens to two-token triggers.

A label with a trigger above ``threshold`` ASR is reported as suspected. STRIP (Gao et al.
2019, text version 2021) is included as an input-level check: a triggered input keeps its
label however much of the rest of the text is replaced, so its prediction entropy under random
word replacement is abnormally low; the threshold comes from clean calibration texts.

Shape legend: N texts, C labels, V vocabulary, T tokens, H hidden.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from bertkit.errors import InputError, UsageError
from bertkit.security.confidence import classifier_logits, entropy, threshold_at_fpr
from bertkit.tasks.readers import TextExample
from bertkit.tokenization import Tokenizer


def _num_labels(model: nn.Module) -> int:
    if getattr(model, "classifier", None) is None:
        raise UsageError(f"{type(model).__name__} has no classification head; the backdoor "
                         "scan needs a fine-tuned BertForSequenceClassification")
    return int(model.config.num_labels)


def _insert(text: str, trigger: Sequence[str]) -> str:
    return " ".join([*trigger, text])


def plant_backdoor(examples: Sequence[TextExample], trigger: str, target: str, *,
                   rate: float = 0.03, seed: int = 0) -> tuple[list[TextExample], list[int]]:
    """A poisoned copy of a training set (BadNets for text, Kurita et al. 2020): a fraction
    ``rate`` of the examples whose label is not ``target``, chosen at random, get ``trigger``
    inserted at a random word position and their label set to ``target``.

    Why it is here: a scanner is only validated by finding a backdoor whose trigger is known,
    so bertkit plants one itself in real data. Returns the examples and the poisoned indices.
    """
    if not 0.0 < rate < 1.0:
        raise UsageError(f"rate is {rate}; expected a fraction strictly between 0 and 1")
    labels = {e.label for e in examples}
    if target not in labels:
        raise InputError(f"target label {target!r} unseen in the training examples; known: "
                         f"{sorted(map(str, labels))}")
    if not trigger.strip() or len(trigger.split()) != 1:
        raise UsageError(f"trigger {trigger!r}: expected one word")
    rng = np.random.default_rng(seed)
    eligible = [i for i, e in enumerate(examples) if e.label != target]
    chosen = sorted(rng.choice(eligible, size=max(1, round(rate * len(examples))),
                               replace=False).tolist())
    out = list(examples)
    for i in chosen:
        words = out[i].text.split()
        words.insert(int(rng.integers(len(words) + 1)), trigger)
        out[i] = dataclasses.replace(out[i], text=" ".join(words), label=target)
    return out, chosen


def attack_success(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str],
                   trigger: Sequence[str], *, base: np.ndarray | None = None,
                   batch_size: int = 64) -> np.ndarray:
    """Per-label ASR of ``trigger`` inserted at the start: for label c, the fraction of texts
    not predicted c that are predicted c with the trigger (NaN if every text already is c).
    (C,)"""
    classes = _num_labels(model)
    if base is None:
        base = classifier_logits(model, tokenizer, texts, batch_size=batch_size).argmax(1)
    after = classifier_logits(model, tokenizer, [_insert(t, trigger) for t in texts],
                              batch_size=batch_size).argmax(1)
    out = np.full(classes, np.nan)
    for c in range(classes):
        eligible = base != c
        if eligible.any():
            out[c] = float((after[eligible] == c).mean())
    return out


def vocabulary_words(tokenizer: Tokenizer) -> list[str]:
    """Whole-word vocabulary entries (no specials, no ``##`` pieces, no bracketed tokens)."""
    special = set(tokenizer.all_special_ids)
    return [w for w, i in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
            if i not in special and not w.startswith("##") and not w.startswith("[")]


def gradient_candidates(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str],
                        target: int, k: int = 50) -> list[str]:
    """The ``k`` whole words whose insertion at position 1 most raises log p(target) to first
    order, averaged over ``texts`` (HotFlip's linear estimate; exact ASR is checked after)."""
    classes = _num_labels(model)
    if not 0 <= target < classes:
        raise InputError(f"target label {target} unseen by the model ({classes} labels)")
    words = vocabulary_words(tokenizer)
    if not words:
        raise InputError("the vocabulary has no whole words to propose")
    slot_word = words[0]
    batch = tokenizer([_insert(t, [slot_word]) for t in texts], padding=True,
                      return_tensors="pt")
    embeddings = model.bert.embeddings.word.weight                             # (V, H)
    device = embeddings.device
    ids = batch["input_ids"].to(device)
    with torch.enable_grad():
        inputs = embeddings[ids].detach().requires_grad_(True)                # (N, T, H)
        was_training = model.training
        model.eval()
        try:
            logits = model(inputs_embeds=inputs,
                           attention_mask=batch["attention_mask"].to(device)).logits
        finally:
            model.train(was_training)
        torch.log_softmax(logits.float(), dim=-1)[:, target].sum().backward()
    grad = inputs.grad[:, 1].mean(0)                                           # (H,)
    word_ids = torch.tensor(tokenizer.convert_tokens_to_ids(words), device=device)
    gain = (embeddings[word_ids] - embeddings[ids[0, 1]]).detach() @ grad     # (W,)
    order = gain.argsort(descending=True)[:k].tolist()
    return [words[i] for i in order]


@torch.no_grad()
def probe_candidates(model: nn.Module, tokenizer: Tokenizer, k: int = 50, *,
                     batch_size: int = 1024) -> list[list[str]]:
    """Per label, the ``k`` whole words with the highest p(label) when each is the whole
    input (``[CLS] word [SEP]``): a context-free ranking of what a word alone votes for.
    One short forward per vocabulary word serves every label. C × [k words]"""
    _num_labels(model)
    words = vocabulary_words(tokenizer)
    if not words:
        raise InputError("the vocabulary has no whole words to propose")
    ids = torch.tensor([[tokenizer.cls_token_id, i, tokenizer.sep_token_id]
                        for i in tokenizer.convert_tokens_to_ids(words)])      # (W, 3)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        log_p = torch.cat([torch.log_softmax(model(input_ids=chunk.to(device)).logits.float(),
                                             dim=-1).cpu()
                           for chunk in ids.split(batch_size)])                 # (W, C)
    finally:
        model.train(was_training)
    order = log_p.argsort(dim=0, descending=True)[:k].T.tolist()                # (C, k)
    return [[words[i] for i in row] for row in order]


@dataclass
class TriggerFinding:
    """The best trigger found for one target label."""

    label: int
    trigger: list[str]
    success_rate: float
    candidates_tested: int
    top: list[tuple[list[str], float]] = field(default_factory=list)  # best few, ties kept

    def suspects(self, threshold: float) -> list[list[str]]:
        """Every trigger among the top ones at or above ``threshold`` ASR."""
        return [trigger for trigger, rate in self.top if rate >= threshold]


@dataclass
class ScanReport:
    """Per-label best triggers; ``suspected`` holds those at or above the threshold."""

    threshold: float
    findings: list[TriggerFinding] = field(default_factory=list)

    @property
    def suspected(self) -> list[TriggerFinding]:
        return [f for f in self.findings if f.success_rate >= self.threshold]

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold,
                "suspected": [f.__dict__ for f in self.suspected],
                "findings": [f.__dict__ for f in self.findings]}


def scan_for_triggers(model: nn.Module, tokenizer: Tokenizer, clean_texts: Sequence[str], *,
                      candidates: Sequence[str] | None = None, exhaustive_limit: int = 2000,
                      gradient_k: int = 200, probe_k: int = 50,
                      max_trigger_length: int = 2, beam: int = 3, threshold: float = 0.9,
                      top: int = 10, batch_size: int = 64) -> ScanReport:
    """Search for short triggers that flip clean texts to one label (see the module
    docstring). ``candidates`` fixes the word list; otherwise every vocabulary word is tried
    when there are at most ``exhaustive_limit`` of them, else the gradient's top
    ``gradient_k`` and the single-word probe's top ``probe_k`` per label. (Both rankings are
    heuristics; every candidate's ASR is then measured exactly, and exhaustive testing is
    preferred whenever affordable.)
    """
    classes = _num_labels(model)
    if isinstance(clean_texts, str) or not clean_texts:
        raise InputError("empty reference set: the scan needs clean texts to flip")
    if max_trigger_length < 1 or beam < 1:
        raise UsageError("max_trigger_length and beam must be >= 1")
    base = classifier_logits(model, tokenizer, clean_texts, batch_size=batch_size).argmax(1)
    vocabulary = None if candidates is not None else vocabulary_words(tokenizer)
    report = ScanReport(threshold)
    probed: list[list[str]] | None = None
    for label in range(classes):
        if not (base != label).any():
            continue
        if candidates is not None:
            words = list(candidates)
        elif vocabulary is not None and len(vocabulary) <= exhaustive_limit:
            words = vocabulary
        else:
            if probe_k and probed is None:
                probed = probe_candidates(model, tokenizer, probe_k)
            proposals = list(probed[label]) if probed is not None else []
            if gradient_k:
                proposals += gradient_candidates(model, tokenizer, clean_texts, label,
                                                 gradient_k)
            words = list(dict.fromkeys(proposals))
        if not words:
            raise InputError("no candidate words to test")
        scored = [([w], float(attack_success(model, tokenizer, clean_texts, [w], base=base,
                                             batch_size=batch_size)[label])) for w in words]
        tested = len(scored)
        scored.sort(key=lambda item: item[1], reverse=True)
        best = scored[0]
        frontier = scored[:beam]
        for _ in range(max_trigger_length - 1):
            if best[1] >= 1.0:
                break
            grown = []
            for trigger, _ in frontier:
                for w in words[: max(beam * 4, 10)]:
                    rate = float(attack_success(model, tokenizer, clean_texts, [*trigger, w],
                                                base=base, batch_size=batch_size)[label])
                    grown.append(([*trigger, w], rate))
            tested += len(grown)
            grown.sort(key=lambda item: item[1], reverse=True)
            frontier = grown[:beam]
            scored = sorted(scored + grown, key=lambda item: item[1], reverse=True)
            if grown and grown[0][1] > best[1]:
                best = grown[0]
        report.findings.append(TriggerFinding(label, best[0], best[1], tested, scored[:top]))
    return report


def strip_scores(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str],
                 clean_pool: Sequence[str], *, copies: int = 8, replace: float = 0.5,
                 seed: int = 0, batch_size: int = 64) -> np.ndarray:
    """STRIP anomaly score per text: the *negative* mean prediction entropy over ``copies``
    versions with each word replaced (probability ``replace``) by a random word from
    ``clean_pool``. Higher = more suspicious (a trigger pins the label). (N,)"""
    _num_labels(model)
    pool = [w for t in clean_pool for w in t.split()]
    if not pool:
        raise InputError("empty reference set: clean_pool holds no words")
    if isinstance(texts, str) or not texts:
        raise InputError("expected a non-empty list of texts")
    rng = np.random.default_rng(seed)
    mixed = []
    for text in texts:
        words = text.split()
        for _ in range(copies):
            mixed.append(" ".join(pool[rng.integers(len(pool))] if rng.random() < replace
                                  else w for w in words))
    h = entropy(classifier_logits(model, tokenizer, mixed, batch_size=batch_size))
    return -h.reshape(len(texts), copies).mean(axis=1)


def strip_threshold(model: nn.Module, tokenizer: Tokenizer, calibration_texts: Sequence[str],
                    clean_pool: Sequence[str], *, fpr: float = 0.05, **options: Any) -> float:
    """The STRIP score threshold that flags a fraction ``fpr`` of clean calibration texts."""
    return threshold_at_fpr(strip_scores(model, tokenizer, calibration_texts, clean_pool,
                                         **options), fpr)
