"""Behaviour consistency: does the prediction survive edits that keep the meaning?

Why: a classifier whose label flips when a text is upper-cased, re-spaced or given a neutral
trailing phrase is fragile in exactly the way adversarial probes exploit, and the flip rate
under such edits is a cheap, attack-free first measurement. Each perturbation is a plain
function ``str → str`` so users add their own (domain phrases, another language's
punctuation); the report counts flips over all texts and over the texts the edit changed.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from torch import nn

from bertkit.errors import InputError, UsageError
from bertkit.security.confidence import classifier_logits
from bertkit.tokenization import Tokenizer

Perturbation = Callable[[str], str]

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")

PERTURBATIONS: dict[str, Perturbation] = {
    "upper": str.upper,
    "lower": str.lower,
    "extra_whitespace": lambda text: "  ".join(text.split()) + " ",
    "strip_punctuation": lambda text: " ".join(_PUNCT.sub(" ", text).split()),
    "trailing_period": lambda text: text.rstrip() + " .",
}


@dataclass
class Flip:
    """One text whose predicted label changed under a perturbation."""

    original: str
    perturbed: str
    before: int
    after: int


@dataclass
class PerturbationResult:
    """Flip rate of one perturbation; ``changed`` counts texts the edit actually altered."""

    name: str
    flips: int
    total: int
    changed: int
    examples: list[Flip] = field(default_factory=list)

    @property
    def flip_rate(self) -> float:
        return self.flips / self.total

    @property
    def flip_rate_changed(self) -> float:
        """Flip rate among the texts the perturbation altered (NaN if it altered none)."""
        return self.flips / self.changed if self.changed else float("nan")


def consistency_check(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str], *,
                      perturbations: Mapping[str, Perturbation] | None = None,
                      suffixes: Sequence[str] = (), max_examples: int = 5,
                      batch_size: int = 32) -> list[PerturbationResult]:
    """Predict ``texts`` and every perturbed copy; report the label flip rate per
    perturbation. ``suffixes`` adds one "neutral suffix" perturbation per string. A
    perturbation that would leave a text empty keeps the original (counted as unchanged)."""
    if isinstance(texts, str) or not texts:
        raise InputError("expected a non-empty list of texts")
    chosen = dict(PERTURBATIONS if perturbations is None else perturbations)
    for suffix in suffixes:
        chosen[f"suffix {suffix!r}"] = lambda text, s=suffix: f"{text.rstrip()} {s}"
    if not chosen:
        raise UsageError("no perturbations given")
    base = classifier_logits(model, tokenizer, texts, batch_size=batch_size).argmax(1)
    results = []
    for name, perturb in chosen.items():
        # An edit that empties a text (punctuation-only input) leaves it as it was.
        edited = [e if (e := perturb(t)).strip() else t for t in texts]
        after = classifier_logits(model, tokenizer, edited, batch_size=batch_size).argmax(1)
        flipped = [i for i in range(len(texts)) if after[i] != base[i]]
        results.append(PerturbationResult(
            name, len(flipped), len(texts), sum(e != t for e, t in zip(edited, texts,
                                                                       strict=True)),
            [Flip(texts[i], edited[i], int(base[i]), int(after[i]))
             for i in flipped[:max_examples]]))
    return results
