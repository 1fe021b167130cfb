"""Entity-level NER scores (seqeval's default mode) and token accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bertkit.data.tags import extract_entities
from bertkit.errors import UsageError
from bertkit.tasks.metrics.classification import NO_SCORE, PRF, average_prf, prf_from_counts


@dataclass(frozen=True)
class EntityScores:
    """Entity-level scores: per type, and micro / macro / weighted over types.

    ``micro`` is the headline "overall" number of conlleval and seqeval. The macro and weighted
    means run over the sorted union of types found in the gold *or* predicted tags, as seqeval
    does: a type that was only ever predicted adds a 0 to the macro mean.
    """

    per_type: dict[str, PRF] = field(default_factory=dict)
    micro: PRF = NO_SCORE
    macro: PRF = NO_SCORE
    weighted: PRF = NO_SCORE

    def as_dict(self) -> dict[str, dict[str, float | int]]:
        """seqeval ``classification_report(output_dict=True)`` shape (with ``f1``)."""
        report = {name: scores.as_dict() for name, scores in self.per_type.items()}
        report["micro avg"] = self.micro.as_dict()
        report["macro avg"] = self.macro.as_dict()
        report["weighted avg"] = self.weighted.as_dict()
        return report


def _aligned_sentences(
    true_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]
) -> list[tuple[Sequence[str], Sequence[str]]]:
    for name, seqs in (("true_seqs", true_seqs), ("pred_seqs", pred_seqs)):
        if isinstance(seqs, str) or any(isinstance(s, str) for s in seqs):
            raise UsageError(
                f"{name} must be a list of sentences, each a list of tags "
                "(wrap a single sentence as [tags])"
            )
    if len(true_seqs) != len(pred_seqs):
        raise UsageError(
            f"{len(true_seqs)} gold sentences but {len(pred_seqs)} predicted; they must align"
        )
    for k, (t, p) in enumerate(zip(true_seqs, pred_seqs, strict=True)):
        if len(t) != len(p):
            raise UsageError(
                f"sentence {k}: {len(t)} gold tags but {len(p)} predicted; they must align"
            )
    return list(zip(true_seqs, pred_seqs, strict=True))


def entity_scores(
    true_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]
) -> EntityScores:
    """Entity-level precision / recall / F1 / support, seqeval default mode.

    A predicted entity is correct only if its type, start AND end all equal a gold entity's
    (so a wrong boundary is one false positive and one false negative). Sentences are scored
    separately, so no entity crosses a sentence boundary. Zero-division gives 0.0: with no
    predicted entity precision is 0 (and so is F1), with no gold entity recall is 0; when
    neither side has any entity every score is 0.0 (seqeval returns ``nan`` for that macro).
    """
    gold: dict[str, set[tuple[int, int, int]]] = {}
    pred: dict[str, set[tuple[int, int, int]]] = {}
    for k, (t, p) in enumerate(_aligned_sentences(true_seqs, pred_seqs)):
        for store, tags in ((gold, t), (pred, p)):
            for ent in extract_entities(tags):
                store.setdefault(ent.type, set()).add((k, ent.start, ent.end))
    types = sorted(set(gold) | set(pred))
    counts = [
        (
            len(gold.get(name, set()) & pred.get(name, set())),
            len(pred.get(name, set())),
            len(gold.get(name, set())),
        )
        for name in types
    ]
    per_type = [prf_from_counts(*c) for c in counts]
    return EntityScores(
        per_type=dict(zip(types, per_type, strict=True)),
        micro=average_prf(per_type, counts, "micro"),
        macro=average_prf(per_type, counts, "macro"),
        weighted=average_prf(per_type, counts, "weighted"),
    )


def token_accuracy(true_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> float:
    """Fraction of tokens whose tag is right (seqeval's ``accuracy_score``; ``O`` counts)."""
    pairs = _aligned_sentences(true_seqs, pred_seqs)
    total = sum(len(t) for t, _ in pairs)
    if total == 0:
        raise UsageError("no tokens: token accuracy is undefined")
    correct = sum(a == b for t, p in pairs for a, b in zip(t, p, strict=True))
    return correct / total
