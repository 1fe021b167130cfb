"""Result records of the named security engines (:mod:`bertkit.security.engines`).

Why records and not the audits' dictionaries: a user who calls
``EmbeddingShiftDetector().analyze(...)`` reads ``result.shift_detected`` in code, prints the
result at a prompt and stores it in a log. So every record is a dataclass with attribute access,
a ``__str__`` that is a short human report (a few lines, the verdict first), and
``to_dict()`` / ``to_json()`` / ``save()`` that give plain JSON (NaN becomes ``null``, tuples
become lists) with the same field names as the attributes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bertkit import _fileio


def _plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars → Python numbers, NaN/inf → None, tuples → lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


class Record:
    """What every result record shares: plain-JSON serialisation under its field names."""

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))  # type: ignore[call-overload]

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON, atomically."""
        _fileio.write_json(path, self.to_dict())
        return Path(path)


def _rate(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.1%}"


# ----------------------------------------------------------------------------- shift


@dataclass(frozen=True)
class SuspiciousToken:
    """One token of the modified text and how much of the shift leaving it out undoes."""

    token: str
    position: int
    contribution: float  # shift(modified) − shift(modified without this token)


@dataclass
class ShiftResult(Record):
    """Original vs modified text: how far the modification moved the representation."""

    original_text: str
    modified_text: str
    shift_detected: bool
    shift_magnitude: float  # 1 − cosine, mean over layers and poolings
    threshold: float
    threshold_source: str
    per_layer: dict[str, float] = field(default_factory=dict)
    suspicious_tokens: list[SuspiciousToken] = field(default_factory=list)
    attribution: str = "leave-one-out"

    def __str__(self) -> str:
        verdict = "SHIFT DETECTED" if self.shift_detected else "no shift detected"
        tokens = ", ".join(f"{t.token} ({t.contribution:+.4f})"
                           for t in self.suspicious_tokens[:5]) or "none"
        return (f"embedding shift: {verdict}: magnitude {self.shift_magnitude:.4f} vs "
                f"threshold {self.threshold:.4f} ({self.threshold_source})\n"
                f"  tokens that moved it most ({self.attribution}): {tokens}")


# ----------------------------------------------------------------------------- backdoor


@dataclass(frozen=True)
class TriggerPattern:
    """The best trigger the scan found for one target label, measured on the clean inputs."""

    label: int
    label_name: str
    trigger: list[str]
    attack_success_rate: float
    reference_rate: float | None  # the same trigger's rate on a clean reference model
    score: float                  # what the threshold applies to (rate − reference rate)
    candidates_tested: int
    set_aside: list[str] = field(default_factory=list)  # natural features of the label

    def __str__(self) -> str:
        reference = "" if self.reference_rate is None else \
            f", reference {_rate(self.reference_rate)}"
        return (f"{' '.join(self.trigger)!r} → {self.label_name}: flips "
                f"{_rate(self.attack_success_rate)} of clean inputs{reference}")


@dataclass
class BackdoorScanResult(Record):
    """Per-label trigger patterns; ``backdoor_indicators`` are those at or above threshold."""

    backdoor_detected: bool
    threshold: float
    inputs_scanned: int
    backdoor_indicators: list[TriggerPattern] = field(default_factory=list)
    patterns: list[TriggerPattern] = field(default_factory=list)
    natural_features_from: str = ""

    def __str__(self) -> str:
        head = (f"backdoor scan: {'BACKDOOR SUSPECTED' if self.backdoor_detected else 'clean'}"
                f" ({len(self.backdoor_indicators)} indicator(s) at score ≥ {self.threshold:g}"
                f", {self.inputs_scanned} clean inputs)")
        shown = self.backdoor_indicators or self.patterns
        lines = [f"  {'!' if p in self.backdoor_indicators else ' '} {p}" for p in shown]
        return "\n".join([head, *lines])


# ----------------------------------------------------------------------------- provenance


@dataclass
class ProvenanceResult(Record):
    """A checkpoint directory checked against its ``provenance.json``."""

    model_dir: str
    verified: bool
    files_checked: int
    tensors_checked: int
    mismatches: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)  # version, seed, data fingerprint

    def __str__(self) -> str:
        if self.verified:
            return (f"provenance: verified {self.model_dir} ({self.files_checked} files, "
                    f"{self.tensors_checked} tensors)")
        return "\n".join([f"provenance: FAILED for {self.model_dir} "
                          f"({len(self.mismatches)} mismatch(es))",
                          *(f"  {m}" for m in self.mismatches[:10])])


# ----------------------------------------------------------------------------- consistency


@dataclass(frozen=True)
class PerturbationFlips:
    """How often one meaning-preserving edit changed the predicted label."""

    name: str
    flip_rate: float
    flips: int
    changed: int
    total: int
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ConsistencyResult(Record):
    """Label flips under meaning-preserving edits; consistent when no edit's flip rate
    exceeds ``max_flip_rate``."""

    consistent: bool
    max_flip_rate: float
    worst: str
    perturbations: list[PerturbationFlips] = field(default_factory=list)

    def __str__(self) -> str:
        head = (f"behaviour consistency: {'consistent' if self.consistent else 'INCONSISTENT'}"
                f" (allowed flip rate {self.max_flip_rate:.1%}, worst: {self.worst})")
        return "\n".join([head, *(f"  {p.name}: {p.flips}/{p.total} flipped "
                                  f"({_rate(p.flip_rate)})" for p in self.perturbations)])


# ----------------------------------------------------------------------------- confidence


@dataclass
class ConfidenceResult(Record):
    """Calibration (ECE before/after temperature scaling) and OOD separation per score."""

    accuracy: float
    temperature: float
    ece_before: float
    ece_after: float
    ood: dict[str, dict[str, float]] = field(default_factory=dict)  # score → auroc, fpr@95
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def best_ood_score(self) -> str:
        return max(self.ood, key=lambda name: self.ood[name]["auroc"]) if self.ood else ""

    def __str__(self) -> str:
        lines = [f"classifier confidence: accuracy {self.accuracy:.1%}, ECE "
                 f"{self.ece_before:.3f} → {self.ece_after:.3f} at T={self.temperature:.2f}"]
        lines += [f"  OOD {name}: AUROC {m['auroc']:.3f}, FPR@95%TPR {m['fpr_at_95_tpr']:.3f}"
                  for name, m in self.ood.items()]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- scan


@dataclass
class SecurityReport(Record):
    """What :func:`bertkit.security.engines.scan` ran, and why it skipped the rest."""

    model: str
    backdoor: BackdoorScanResult | None = None
    consistency: ConsistencyResult | None = None
    confidence: ConfidenceResult | None = None
    provenance: ProvenanceResult | None = None
    shift: list[ShiftResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def findings(self) -> list[str]:
        """One line per engine whose verdict is a warning."""
        out = []
        if self.backdoor is not None and self.backdoor.backdoor_detected:
            out.append(f"backdoor: {len(self.backdoor.backdoor_indicators)} trigger(s)")
        if self.consistency is not None and not self.consistency.consistent:
            out.append(f"consistency: {self.consistency.worst} flips labels")
        if self.provenance is not None and not self.provenance.verified:
            out.append("provenance: checkpoint differs from its manifest")
        flagged = sum(r.shift_detected for r in self.shift)
        if flagged:
            out.append(f"shift: {flagged} of {len(self.shift)} pair(s) shifted")
        return out

    def __str__(self) -> str:
        parts = [f"bertkit security scan of {self.model}: "
                 + ("; ".join(self.findings) if self.findings else "no findings")]
        parts += [str(r) for r in (self.provenance, self.backdoor, self.consistency,
                                   self.confidence) if r is not None]
        parts += [str(r) for r in self.shift]
        parts += [f"skipped {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(parts)
