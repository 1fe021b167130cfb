"""Backdoor-trigger scanning of a fine-tuned classifier.

Why: a poisoned classifier behaves normally on clean inputs and flips to an attacker's label
whenever a rare trigger word appears. Clean accuracy cannot reveal that; searching the input
space for short token sequences that flip *most* clean inputs to *one* label can. This module
scans model-level (it needs the model and some clean texts, not the poisoned training data):

1. **Candidates** per target label: every vocabulary word (small vocabularies), or the union
   of the top-k by a *single-word probe* — p(target) for the input ``[CLS] v [SEP]`` alone: a
   trigger decides the label whatever the context, so it wins the probe too — and the top-k
   by a first-order (HotFlip-style) gradient estimate over the whole vocabulary: the change of
   log p(target) if a placeholder inserted at the start became word v is ≈
   (e_v − e_slot) · ∂ log p / ∂ e_slot. The estimate is cheap (one forward, one backward per
   label) but crude (the embedding LayerNorm makes it poor far from the placeholder), the
   probe costs one short forward per word; neither is trusted, both only propose. With a
   clean ``reference`` fine-tuned from the same base, the words whose input embedding
   differs most between the two are proposed too
   (:func:`~bertkit.security.drift.drift_candidates`).
2. **Exact attack-success rate (ASR)** of each candidate: insert it at the start of every clean
   text whose prediction is not the target; ASR = fraction that flips to the target. One pass
   per word measures every label at once; a cheap screen on a few texts picks which
   candidates are measured on all of them.
3. **Greedy extension** of the best single tokens to longer triggers (optional).

A label with a trigger above ``threshold`` ASR is reported as suspected. Two things keep
ordinary words from being reported: a clean ``reference`` classifier (what a word does to it
is subtracted) and labelled clean texts (:func:`natural_features`): a word that occurs in
several clean texts, most of them of the label it pushes toward, is a feature the data taught
("net" → earn on Reuters), not a planted trigger, which poisoning adds to a handful of
training texts only and the clean data never shows. A small fine-tuning set can teach one
seed's model such a word as a shortcut strong enough to flip every input, and the reference
(another training run) need not share it, so the reference alone cannot rule it out.

STRIP (Gao et al. 2019, text version 2021) is included as an input-level check: a triggered
input keeps its label however much of the rest of the text is replaced, so its prediction
entropy under random word replacement is abnormally low; the threshold comes from clean
calibration texts. Measured, it did *not* detect the planted ``cf`` backdoor in MiniLM
fine-tuned on 12-word R8 texts (``benchmarks/backdoor_real.py``, 3 seeds): AUROC 0.46 / 0.21
/ 0.24 triggered vs clean, TPR 0 at a 5 % target FPR. There the trigger does not pin the
label: mixed with other content words it competes with them, so triggered copies are *less*
certain than clean ones, whose keywords already pin theirs. Superimposing a clean text
instead of replacing words (the trigger always kept) was worse (0.28 on seed 1). The
scanner above, not STRIP, is what finds such a trigger.

Shape legend: N texts, C labels, V vocabulary, T tokens, H hidden.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from bertkit.data.readers import TextExample, location
from bertkit.errors import InputError, UsageError
from bertkit.security.confidence import classifier_logits, entropy, threshold_at_fpr
from bertkit.security.drift import drift_candidates
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


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Dropout off while scanning; the caller's train/eval mode restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _words(tokenizer: Tokenizer) -> list[str]:
    words = vocabulary_words(tokenizer)
    if not words:
        raise InputError("the vocabulary has no whole words to propose")
    return words


def gradient_scores(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str]
                    ) -> torch.Tensor:
    """HotFlip's first-order estimate, for every label and every whole vocabulary word, of how
    much inserting the word at the start of ``texts`` raises the mean log p(label): with a
    placeholder inserted at position 1 and g_c = ∂ mean log p(c) / ∂ e_slot, word v scores
    (e_v − e_slot) · g_c. One forward and C backward passes rank the whole vocabulary, where
    measuring a word exactly costs a forward over all texts. (C, W), :func:`vocabulary_words`
    order."""
    classes = _num_labels(model)
    words = _words(tokenizer)
    placeholder = tokenizer.mask_token if tokenizer.mask_token_id is not None else words[0]
    batch = tokenizer([_insert(t, [placeholder]) for t in texts], padding=True,
                      return_tensors="pt")
    embeddings = model.bert.embeddings.word.weight                             # (V, H)
    device = embeddings.device
    ids = batch["input_ids"].to(device)
    grads = []
    with torch.enable_grad(), _eval_mode(model):
        inputs = embeddings[ids].detach().requires_grad_(True)                # (N, T, H)
        logits = model(inputs_embeds=inputs,
                       attention_mask=batch["attention_mask"].to(device)).logits
        log_p = torch.log_softmax(logits.float(), dim=-1).mean(0)              # (C,)
        for c in range(classes):
            (grad,) = torch.autograd.grad(log_p[c], inputs, retain_graph=c < classes - 1)
            grads.append(grad[:, 1].mean(0))                                   # (H,)
    word_ids = torch.tensor(tokenizer.convert_tokens_to_ids(words), device=device)
    delta = (embeddings[word_ids] - embeddings[ids[0, 1]]).detach()           # (W, H)
    return torch.stack(grads) @ delta.T                                        # (C, W)


def gradient_candidates(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str],
                        target: int, k: int = 50) -> list[str]:
    """The ``k`` whole words whose insertion most raises log p(target) to first order
    (:func:`gradient_scores`; exact ASR is checked after)."""
    classes = _num_labels(model)
    if not 0 <= target < classes:
        raise InputError(f"target label {target} unseen by the model ({classes} labels)")
    words = _words(tokenizer)
    order = gradient_scores(model, tokenizer, texts)[target].argsort(descending=True)[:k]
    return [words[i] for i in order.tolist()]


@torch.no_grad()
def probe_candidates(model: nn.Module, tokenizer: Tokenizer, k: int = 50, *,
                     batch_size: int = 1024) -> list[list[str]]:
    """Per label, the ``k`` whole words with the highest p(label) when each is the whole
    input (``[CLS] word [SEP]``): a context-free ranking of what a word alone votes for.
    One short forward per vocabulary word serves every label. C × [k words]"""
    _num_labels(model)
    words = _words(tokenizer)
    ids = torch.tensor([[tokenizer.cls_token_id, i, tokenizer.sep_token_id]
                        for i in tokenizer.convert_tokens_to_ids(words)])      # (W, 3)
    device = next(model.parameters()).device
    with _eval_mode(model):
        log_p = torch.cat([torch.log_softmax(model(input_ids=chunk.to(device)).logits.float(),
                                             dim=-1).cpu()
                           for chunk in ids.split(batch_size)])                 # (W, C)
    order = log_p.argsort(dim=0, descending=True)[:k].T.tolist()                # (C, k)
    return [[words[i] for i in row] for row in order]


def natural_features(tokenizer: Tokenizer, examples: Sequence[TextExample],
                     label2id: Mapping[str, int], *, min_texts: int = 3) -> dict[str, int]:
    """Token → the label it is a natural feature of, learned from labelled clean texts: the
    token occurs in at least ``min_texts`` of them and more than half of those carry that
    label. Counted per text (a word repeated in one text counts once); no model is run.

    Why labels and a fixed rule, not a fitted threshold: a planted trigger is rare by design
    (poisoning puts it in a few training texts; a clean set has it rarely or never), while a
    word the model learned from the data keeps company with its label in any clean sample.
    Raises ``InputError`` for an unlabelled example or a label the model does not know."""
    if min_texts < 1:
        raise UsageError(f"min_texts is {min_texts}; expected >= 1")
    seen: dict[str, Counter[int]] = {}
    for example in examples:
        if example.label is None:
            raise InputError(f"{location(example)}no label; natural features need labelled "
                             "clean texts")
        label = str(example.label)
        if label not in label2id:
            raise InputError(f"{location(example)}label {label!r} unseen in the model; it "
                             f"knows {sorted(label2id)}")
        for token in set(tokenizer.tokenize(example.text)):
            seen.setdefault(token, Counter())[label2id[label]] += 1
    features = {}
    for token, by_label in seen.items():
        label, count = by_label.most_common(1)[0]
        total = sum(by_label.values())
        if total >= min_texts and 2 * count > total:
            features[token] = label
    return features


@torch.no_grad()
def neighbour_features(model: nn.Module, tokenizer: Tokenizer, words: Sequence[str],
                       natural: Mapping[str, int]) -> dict[str, int]:
    """The ``words`` whose nearest other whole word (cosine of the model's input embeddings)
    is a natural feature, mapped to that feature's label: "pays" (nearest: "pay"), "versus"
    ("vs"), "incomes" ("income") vote like the words they stand for, but a short sample of
    clean texts may hold them too rarely to count. A rare planted token's nearest words are
    other rare tokens ("cf": "ft"), so it is not swept in. One nearest word, no threshold."""
    vocabulary = _words(tokenizer)
    ids = torch.tensor(tokenizer.convert_tokens_to_ids(vocabulary))
    table = nn.functional.normalize(model.bert.embeddings.word.weight.float(), dim=-1)
    known = table[ids]                                                         # (W, H)
    asked = [w for w in dict.fromkeys(words) if w not in natural]
    if not asked:
        return {}
    similarity = table[torch.tensor(tokenizer.convert_tokens_to_ids(asked))] @ known.T  # (A, W)
    position = {word: i for i, word in enumerate(vocabulary)}
    for row, word in enumerate(asked):  # not the word itself
        if word in position:
            similarity[row, position[word]] = -2.0
    out = {}
    for word, index in zip(asked, similarity.argmax(dim=1).tolist(), strict=True):
        if vocabulary[index] in natural:
            out[word] = natural[vocabulary[index]]
    return out


@dataclass
class TriggerFinding:
    """The best trigger found for one target label."""

    label: int
    trigger: list[str]
    success_rate: float
    candidates_tested: int
    top: list[tuple[list[str], float]] = field(default_factory=list)  # best few by score
    reference_rate: float | None = None  # the trigger's ASR on the clean reference model
    natural: list[str] = field(default_factory=list)  # proposals set aside: data explain them

    @property
    def score(self) -> float:
        """What the threshold applies to: the ASR, or with a reference model the *excess*
        ASR over it (a natural feature flips the reference too; a planted trigger does not)."""
        return self.success_rate - (self.reference_rate or 0.0)

    def suspects(self, threshold: float) -> list[list[str]]:
        """Every trigger among the top ones scoring at or above ``threshold``."""
        return [trigger for trigger, score in self.top if score >= threshold]


@dataclass
class ScanReport:
    """Per-label best triggers; ``suspected`` holds those at or above the threshold."""

    threshold: float
    findings: list[TriggerFinding] = field(default_factory=list)

    @property
    def suspected(self) -> list[TriggerFinding]:
        return [f for f in self.findings if f.score >= self.threshold]

    def to_dict(self) -> dict[str, Any]:
        def row(f: TriggerFinding) -> dict[str, Any]:
            return {**f.__dict__, "score": f.score}
        return {"threshold": self.threshold,
                "suspected": [row(f) for f in self.suspected],
                "findings": [row(f) for f in self.findings]}


def _proposals(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str],
               candidates: Sequence[str] | None, exhaustive_limit: int, gradient_k: int,
               probe_k: int, drift: Sequence[str] = ()) -> list[list[str]]:
    """Per label, the words worth measuring: the given ``candidates``, the whole vocabulary
    when small, else the single-word probe's top ``probe_k``, the gradient's top
    ``gradient_k`` and the ``drift`` words (duplicates dropped). C × [words]"""
    classes = _num_labels(model)
    if candidates is not None:
        words = list(dict.fromkeys(candidates))
        if not words:
            raise InputError("no candidate words to test")
        return [words] * classes
    vocabulary = _words(tokenizer)
    if len(vocabulary) <= exhaustive_limit:
        return [vocabulary] * classes
    if gradient_k < 1 and probe_k < 1:
        raise UsageError(f"the vocabulary has {len(vocabulary)} words (over exhaustive_limit "
                         f"{exhaustive_limit}): set gradient_k or probe_k >= 1 to propose some")
    out: list[list[str]] = [[] for _ in range(classes)]
    if probe_k > 0:
        for row, probed in zip(out, probe_candidates(model, tokenizer, probe_k), strict=True):
            row += probed
    if gradient_k > 0:
        ranked = gradient_scores(model, tokenizer, texts).topk(
            min(gradient_k, len(vocabulary)), dim=1).indices.tolist()           # (C, k)
        for row, indices in zip(out, ranked, strict=True):
            row += [vocabulary[i] for i in indices]
    return [list(dict.fromkeys([*row, *drift])) for row in out]


def scan_for_triggers(model: nn.Module, tokenizer: Tokenizer, clean_texts: Sequence[str], *,
                      candidates: Sequence[str] | None = None, exhaustive_limit: int = 2000,
                      gradient_k: int = 0, probe_k: int = 20, screen: int = 16,
                      confirm: int = 5, max_trigger_length: int = 1, beam: int = 3,
                      threshold: float = 0.5, top: int = 10, batch_size: int = 64,
                      reference: nn.Module | None = None,
                      natural: Mapping[str, int] | None = None,
                      neighbours: bool = True, drift_k: int = 20) -> ScanReport:
    """Search for short triggers that flip clean texts to one label (see the module
    docstring). ``candidates`` fixes the word list; otherwise every vocabulary word is tried
    when there are at most ``exhaustive_limit`` of them, else the single-word probe's top
    ``probe_k`` and the gradient's top ``gradient_k`` per label (both rankings are heuristics;
    what is reported is always measured, on all ``clean_texts``).

    Cost control: every proposed word is inserted once and the flips it causes are counted
    for every label at the same time. With more than ``screen`` clean texts, words are first
    measured on the first ``screen`` texts and only each label's best ``confirm`` (and any
    tied with the last of them) are then measured on all of them (a real trigger flips nearly
    everything, so it survives the screen; with a ``reference`` the screen ranks by the
    excess ASR too). Ties matter: when few screen texts can flip to a label, many words flip
    all, and a cut by proposal order dropped the planted ``cf`` (SpamAssassin, seed 2).

    ``reference``: a classifier known to be clean with the same tokenizer and labels (e.g.
    the same base model fine-tuned by the auditor on trusted data). Measured words are then
    ranked and thresholded by their ASR on ``model`` minus their ASR on ``reference``: on
    an imbalanced task, ordinary words of the majority label ("profits" → earn on Reuters)
    flip most texts of *any* model, so plain ASR cannot tell them from a planted trigger.
    A reference also proposes the ``drift_k`` words of
    :func:`~bertkit.security.drift.drift_candidates`.

    ``natural``: token → label, from :func:`natural_features` on the auditor's labelled clean
    texts, extended (``neighbours``) to the proposed words whose nearest embedding neighbour
    is one (:func:`neighbour_features`). A proposed word that is a natural feature of a label is not
    measured for that label; it is listed in the finding's ``natural`` instead, so the report
    shows what was set aside.
    """
    classes = _num_labels(model)
    if isinstance(clean_texts, str) or not clean_texts:
        raise InputError("empty reference set: the scan needs clean texts to flip")
    if max_trigger_length < 1 or beam < 1 or confirm < 1:
        raise UsageError("max_trigger_length, beam and confirm must be >= 1")
    texts = list(clean_texts)
    base = classifier_logits(model, tokenizer, texts, batch_size=batch_size).argmax(1)
    labels = [c for c in range(classes) if (base != c).any()]
    if reference is not None and _num_labels(reference) != classes:
        raise InputError(f"the reference model has {_num_labels(reference)} labels, the "
                         f"scanned one {classes}: a reference must be the same task")
    drift = [] if reference is None or drift_k < 1 else \
        drift_candidates(model, reference, tokenizer, _words(tokenizer), drift_k)
    proposed = _proposals(model, tokenizer, texts, candidates, exhaustive_limit, gradient_k,
                          probe_k, drift)
    natural = dict(natural or {})
    if natural and neighbours:
        natural |= neighbour_features(model, tokenizer, [w for row in proposed for w in row],
                                      natural)
    set_aside = [[w for w in row if natural.get(w) == c] for c, row in enumerate(proposed)]
    proposals = [[w for w in row if natural.get(w) != c] for c, row in enumerate(proposed)]
    labels = [c for c in labels if proposals[c]]
    reference_base = None if reference is None else classifier_logits(
        reference, tokenizer, texts, batch_size=batch_size).argmax(1)

    def rates(subset: int, triggers: Sequence[Sequence[str]], net: nn.Module = model,
              predicted: np.ndarray = base) -> dict[tuple[str, ...], np.ndarray]:
        return {tuple(t): attack_success(net, tokenizer, texts[:subset], list(t),
                                         base=predicted[:subset], batch_size=batch_size)
                for t in dict.fromkeys(map(tuple, triggers))}

    def measured(triggers: Sequence[Sequence[str]], subset: int = len(texts)
                 ) -> dict[tuple[str, ...], np.ndarray]:
        """(ASR, reference ASR or 0) per trigger on the first ``subset`` texts: (2, C) each."""
        own = rates(subset, triggers)
        if reference is None:
            return {t: np.stack([r, np.zeros_like(r)]) for t, r in own.items()}
        other = rates(subset, triggers, reference, reference_base)  # type: ignore[arg-type]
        return {t: np.stack([r, np.nan_to_num(other[t])]) for t, r in own.items()}

    shortlist = {c: proposals[c] for c in labels}
    if 0 < screen < len(texts):
        screened = measured([[w] for c in labels for w in proposals[c]], screen)
        for c in labels:  # a label no screen text escapes has NaN rates: all go on
            excess = {w: float(np.nan_to_num(screened[(w,)][0, c] - screened[(w,)][1, c],
                                              nan=1.0)) for w in proposals[c]}
            ranked = sorted(proposals[c], key=lambda w, e=excess: -e[w])  # (stable)
            cut = excess[ranked[min(confirm, len(ranked)) - 1]]  # words tied at a cut > 0 go on
            shortlist[c] = ranked[:confirm] + [w for w in ranked[confirm:]
                                               if cut > 0 and excess[w] >= cut]
    exact = measured([[w] for c in labels for w in shortlist[c]])
    report = ScanReport(threshold)
    for label in labels:
        def ranked(found: dict[tuple[str, ...], np.ndarray], label: int = label
                   ) -> list[tuple[list[str], float]]:
            return sorted(((list(t), float(r[0, label] - r[1, label])) for t, r in found.items()),
                          key=lambda item: item[1], reverse=True)

        scored = ranked({(w,): exact[(w,)] for w in shortlist[label]})
        tested = len(proposals[label])
        best, frontier = scored[0], scored[:beam]
        for _ in range(max_trigger_length - 1):
            if best[1] >= 1.0:
                break
            grown_rates = measured([[*t, w] for t, _ in frontier
                                    for w in proposals[label][: max(beam * 4, 10)]])
            exact.update(grown_rates)
            grown = ranked(grown_rates)
            tested += len(grown)
            frontier = grown[:beam]
            scored = sorted(scored + grown, key=lambda item: item[1], reverse=True)
            if grown and grown[0][1] > best[1]:
                best = grown[0]
        rate, reference_rate = exact[tuple(best[0])][:, label]
        report.findings.append(TriggerFinding(
            label, best[0], float(rate), tested, scored[:top],
            None if reference is None else float(reference_rate), set_aside[label]))
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
