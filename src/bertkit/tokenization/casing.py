"""Guard against the commonest silent tokenizer mistake: casing that does not fit the vocab.

A cased vocabulary read with ``do_lower_case=True`` never produces any of its upper-case
entries; an uncased vocabulary read with ``do_lower_case=False`` splits or ``[UNK]``s every
capitalised word. Both "work" and quietly ruin accuracy (transformers#2742, google-research/bert
guessing casing from the *directory name*). Here the decision comes from the vocabulary's own
content: what share of its entries that contain cased letters contain an upper-case one.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

# A vocabulary is "cased" when at least this share of its cased-letter entries has an upper-case
# letter (bert-base-cased: roughly a third), "uncased" when none or almost none do
# (bert-base-uncased / MiniLM: 0 of 26,930).
CASED_SHARE = 0.02
UNCASED_SHARE = 0.001
# Below this many cased-letter entries the statistics say nothing (tiny test vocabularies).
MIN_CASED_ENTRIES = 500


@dataclass(frozen=True)
class CasingCounts:
    """How many vocabulary entries hold letters that have case, and how many an upper-case one."""

    with_cased_letters: int
    with_upper_case: int

    @property
    def upper_share(self) -> float:
        return self.with_upper_case / self.with_cased_letters if self.with_cased_letters else 0.0


def count_casing(tokens: Iterable[str], prefix: str = "##") -> CasingCounts:
    """Count entries by case, ignoring bracketed special/unused tokens like ``[unused7]``."""
    cased = upper = 0
    for token in tokens:
        if len(token) > 2 and token[0] == "[" and token[-1] == "]":
            continue
        body = token[len(prefix):] if prefix and token.startswith(prefix) else token
        if any(ch.lower() != ch.upper() for ch in body):
            cased += 1
            if body != body.lower():
                upper += 1
    return CasingCounts(cased, upper)


def warn_on_casing_mismatch(tokens: Iterable[str], lowercase: bool, source: str,
                            stacklevel: int = 2) -> CasingCounts:
    """Warn (``UserWarning``) when ``lowercase`` contradicts the vocabulary's content.

    ``source`` names the file the vocabulary came from, so the message says where to look;
    ``stacklevel`` (as in ``warnings.warn``, counted from the caller) lets loaders point the
    warning at the user's own call.
    Returns the counts so callers and tests can see what was measured.
    """
    counts = count_casing(tokens)
    if counts.with_cased_letters < MIN_CASED_ENTRIES:
        return counts
    share = counts.upper_share
    if lowercase and share >= CASED_SHARE:
        warnings.warn(
            f"{source}: do_lower_case=True but the vocabulary looks cased: "
            f"{counts.with_upper_case} of {counts.with_cased_letters} entries with letters contain "
            f"upper case ({share:.1%}); those entries can never be produced. Load it with "
            "do_lower_case=False if the model was trained cased.",
            UserWarning,
            stacklevel=stacklevel + 1,
        )
    elif not lowercase and share < UNCASED_SHARE:
        warnings.warn(
            f"{source}: do_lower_case=False but the vocabulary looks uncased: "
            f"{counts.with_upper_case} of {counts.with_cased_letters} entries with letters contain "
            "upper case; capitalised words will be split or become [UNK]. Load it with "
            "do_lower_case=True if the model was trained uncased.",
            UserWarning,
            stacklevel=stacklevel + 1,
        )
    return counts
