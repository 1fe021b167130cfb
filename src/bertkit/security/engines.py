"""The security engines under the names the system description gives them, and one ``scan``.

This is a façade, not a second implementation: each engine is a few lines that resolve the
model, call the analysis that already exists (and is tested) in this package, and wrap its
answer in a record of :mod:`bertkit.security.reports`.

=============================  ==================================================================
``EmbeddingShiftDetector``     :mod:`~bertkit.security.embedding_shift` (cosine shift per layer,
                               leave-one-out token attribution)
``BackdoorTriggerScanner``     :func:`bertkit.security.audits.backdoor` → :mod:`.backdoor`
``ModelProvenanceChecker``     :mod:`~bertkit.security.provenance` (manifest write / verify)
``BehaviorConsistencyValidator`` :mod:`~bertkit.security.consistency`
``ClassifierConfidenceAnalyzer`` :func:`bertkit.security.audits.confidence` (ECE, OOD AUROC)
``scan``                       every engine that the given inputs allow
=============================  ==================================================================

Wherever an engine takes ``model=`` it accepts a model directory (``str`` / ``Path``), an
inference :class:`~bertkit.inference.engine.Engine`, a ``(model, tokenizer)`` pair, or a loaded
model with ``tokenizer=``: the seed's calls (``EmbeddingShiftDetector().analyze(original_text=…,
modified_text=…, model="path")``) run as written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from bertkit.data.readers import TextExample
from bertkit.errors import BertkitError, InputError, UsageError
from bertkit.inference.engine import Engine
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import BertModel
from bertkit.security import audits
from bertkit.security.confidence import threshold_at_fpr
from bertkit.security.consistency import PERTURBATIONS, Perturbation
from bertkit.security.embedding_shift import (
    POOLINGS,
    cosine_shift,
    explain_shift,
    extract_features,
    mean_over_keys,
)
from bertkit.security.provenance import read_manifest, verify_manifest, write_manifest
from bertkit.security.reports import (
    BackdoorScanResult,
    ConfidenceResult,
    ConsistencyResult,
    PerturbationFlips,
    ProvenanceResult,
    SecurityReport,
    ShiftResult,
    SuspiciousToken,
    TriggerPattern,
)
from bertkit.tokenization import Tokenizer

ModelLike = str | Path | Engine | tuple[nn.Module, Tokenizer] | nn.Module


# ----------------------------------------------------------------------------- models


def resolve_model(model: ModelLike, tokenizer: Tokenizer | None = None, *,
                  classifier: bool) -> tuple[nn.Module, Tokenizer]:
    """A (model, tokenizer) pair from whatever the caller holds (see the module notes).

    A directory loads as a sequence classifier when ``classifier`` (refused without trained
    head weights) and otherwise as what its ``config.json`` says: a classifier checkpoint
    keeps its head (its predictions sharpen the representation statistics), any other as the
    family's encoder.
    """
    if isinstance(model, (str, Path)):
        directory = Path(model)
        if not (directory / "config.json").is_file():
            raise UsageError(f"{directory}: not a model directory (no config.json)")
        config = BertConfig.from_pretrained(directory)
        architectures = config.extra.get("architectures") or []
        if classifier or any("SequenceClassification" in a for a in architectures):
            return audits.load_classifier(directory)
        encoder = BertModel.for_family(config.model_type).from_pretrained(directory)
        return encoder.eval(), Tokenizer.from_pretrained(directory)
    if isinstance(model, Engine):
        return model.model, model.tokenizer
    if isinstance(model, tuple) and len(model) == 2:
        return model[0], model[1]
    if isinstance(model, nn.Module):
        if tokenizer is None:
            raise UsageError(f"model is a loaded {type(model).__name__} without its tokenizer; "
                             "pass tokenizer=…, a (model, tokenizer) pair, an Engine or the "
                             "model directory")
        return model, tokenizer
    raise UsageError(f"model is {type(model).__name__}; expected a model directory, an Engine, "
                     "a (model, tokenizer) pair or a loaded model with tokenizer=…")


def _describe(model: ModelLike) -> str:
    return str(model) if isinstance(model, (str, Path)) else type(model).__name__


def _texts(texts: Sequence[str], name: str) -> list[str]:
    if isinstance(texts, str) or not texts:
        raise InputError(f"{name}: expected a non-empty list of texts")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise InputError(f"{name}[{bad}] is {type(texts[bad]).__name__}; expected a str")
    return list(texts)


def _examples(texts: Sequence[str] | Sequence[TextExample], labels: Sequence[str] | None,
              name: str) -> list[TextExample]:
    """Texts (with optional labels) or :class:`TextExample` rows as examples."""
    if texts and all(isinstance(t, TextExample) for t in texts):
        if labels is not None:
            raise UsageError(f"{name} already carry labels; do not pass labels= as well")
        return list(texts)  # type: ignore[arg-type]
    plain = _texts(texts, name)  # type: ignore[arg-type]
    if labels is None:
        return [TextExample(t) for t in plain]
    if isinstance(labels, str) or len(labels) != len(plain):
        raise InputError(f"labels: {len(labels)} label(s) for {len(plain)} {name}")
    return [TextExample(t, label=str(y)) for t, y in zip(plain, labels, strict=True)]


# ----------------------------------------------------------------------------- shift


class EmbeddingShiftDetector:
    """Does a modification move a text's internal representation more than a harmless edit?

    The magnitude is ``1 − cos`` between the pooled hidden states of the original and the
    modified text, averaged over layers (all by default) and poolings (mean and [CLS]).
    ``suspicious_tokens`` comes from **leave-one-out** attribution: each token of the
    modified text is dropped in turn and ranked by how much of the shift that undoes.

    The threshold, in order of precedence: ``threshold=`` as given; a threshold
    :meth:`calibrate` fitted on clean texts (the split-conformal quantile of the shifts that
    meaning-preserving edits cause, at false-positive rate ``fpr``); otherwise, per call, the
    largest shift that one of those edits (:data:`bertkit.security.consistency.PERTURBATIONS`:
    case, spacing, punctuation, a trailing period) causes on *this* original text. The last is
    a weak reference, but it needs no data; calibrate for a stated false-positive rate.
    """

    def __init__(self, threshold: float | None = None, *, layers: Sequence[int] | None = None,
                 poolings: Sequence[str] = POOLINGS, top_tokens: int = 5,
                 perturbations: Mapping[str, Perturbation] | None = None):
        self.threshold = threshold
        self.source = "given" if threshold is not None else ""
        self.options = {"layers": layers, "poolings": tuple(poolings)}
        self.top_tokens = top_tokens
        self.perturbations = dict(PERTURBATIONS if perturbations is None else perturbations)

    def _shifts(self, model: nn.Module, tokenizer: Tokenizer, originals: Sequence[str],
                modified: Sequence[str]) -> tuple[Any, dict[str, Any]]:
        per_key = cosine_shift(extract_features(model, tokenizer, originals, **self.options),
                               extract_features(model, tokenizer, modified, **self.options))
        return mean_over_keys(per_key), per_key

    def _benign(self, model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str]) -> Any:
        """The shift each perturbation causes on each text it changes. (M,)"""
        pairs = [(t, edited) for t in texts for p in self.perturbations.values()
                 if (edited := p(t)).strip() and edited != t]
        if not pairs:
            raise InputError("no meaning-preserving edit changes these texts; pass threshold=")
        return self._shifts(model, tokenizer, [a for a, _ in pairs], [b for _, b in pairs])[0]

    def calibrate(self, clean_texts: Sequence[str], model: ModelLike, *,
                  tokenizer: Tokenizer | None = None, fpr: float = 0.05
                  ) -> EmbeddingShiftDetector:
        """Threshold = the shift that meaning-preserving edits of ``clean_texts`` exceed at
        most a fraction ``fpr`` of the time."""
        net, tok = resolve_model(model, tokenizer, classifier=False)
        scores = self._benign(net, tok, _texts(clean_texts, "clean_texts"))
        self.threshold = threshold_at_fpr(scores, fpr)
        self.source = f"calibrated: {fpr:.0%} FPR on {len(scores)} harmless edits"
        return self

    def analyze(self, original_text: str, modified_text: str, model: ModelLike, *,
                tokenizer: Tokenizer | None = None) -> ShiftResult:
        """Compare one original text with its modified version."""
        return self.analyze_pairs([(original_text, modified_text)], model,
                                  tokenizer=tokenizer)[0]

    def analyze_pairs(self, pairs: Sequence[tuple[str, str]], model: ModelLike, *,
                      tokenizer: Tokenizer | None = None) -> list[ShiftResult]:
        """:meth:`analyze` for many (original, modified) pairs, the model loaded once."""
        if not pairs:
            raise InputError("no (original, modified) pairs given")
        for i, pair in enumerate(pairs):
            if len(pair) != 2 or not all(isinstance(t, str) and t.strip() for t in pair):
                raise InputError(f"pair {i}: expected (original_text, modified_text), two "
                                 "non-empty strings")
        net, tok = resolve_model(model, tokenizer, classifier=False)
        magnitudes, per_key = self._shifts(net, tok, [a for a, _ in pairs],
                                           [b for _, b in pairs])
        results = []
        for i, (original, modified) in enumerate(pairs):
            threshold, source = self.threshold, self.source
            if threshold is None:
                threshold = float(self._benign(net, tok, [original]).max())
                source = "largest shift of a harmless edit of this original"
            attribution = explain_shift(net, tok, original, modified, **self.options)
            results.append(ShiftResult(
                original, modified, bool(magnitudes[i] > threshold), float(magnitudes[i]),
                threshold, source, {k: float(v[i]) for k, v in per_key.items()},
                [SuspiciousToken(t.token, t.position, t.delta)
                 for t in attribution.tokens[:self.top_tokens]]))
        return results


# ----------------------------------------------------------------------------- backdoor


class BackdoorTriggerScanner:
    """Search a classifier for short triggers that flip most clean inputs to one label.

    Proposals come from the single-word probe (``probe_k`` words per label) and optionally the
    HotFlip gradient (``gradient_k``; needs a trainable model, not an Engine's fast form);
    every reported rate is measured by inserting the trigger into the clean ``test_inputs``.
    With ``labels`` (or labelled :class:`TextExample` inputs) words that are natural features
    of a label are set aside; with a clean ``reference`` model (the same base fine-tuned on
    trusted data) the threshold applies to the rate in excess of the reference's, and the
    ``drift_k`` words whose input embedding moved most from the reference's are proposed too
    (see :mod:`bertkit.security.backdoor`).
    """

    def __init__(self, threshold: float = 0.5, *, probe_k: int = 20, gradient_k: int = 0,
                 max_trigger_length: int = 1, max_inputs: int = 48, drift_k: int = 20):
        self.threshold = threshold
        self.options = {"probe_k": probe_k, "gradient_k": gradient_k, "drift_k": drift_k,
                        "max_trigger_length": max_trigger_length, "max_texts": max_inputs}

    def scan_model(self, model: ModelLike, test_inputs: Sequence[str] | Sequence[TextExample],
                   *, labels: Sequence[str] | None = None, tokenizer: Tokenizer | None = None,
                   reference: ModelLike | None = None) -> BackdoorScanResult:
        net, tok = resolve_model(model, tokenizer, classifier=True)
        examples = _examples(test_inputs, labels, "test_inputs")
        clean = None if reference is None else \
            resolve_model(reference, tok, classifier=True)[0]
        report = audits.backdoor(net, tok, examples, threshold=self.threshold,
                                 reference=clean, **self.options)

        def pattern(row: dict[str, Any]) -> TriggerPattern:
            return TriggerPattern(row["label"], row["label_name"], list(row["trigger"]),
                                  row["success_rate"], row["reference_rate"], row["score"],
                                  row["candidates_tested"], list(row["natural"]))

        indicators = [pattern(r) for r in report["suspected"]]
        return BackdoorScanResult(bool(indicators), self.threshold,
                                  min(len(examples), self.options["max_texts"]), indicators,
                                  [pattern(r) for r in report["findings"]],
                                  report["natural_features_from"])


# ----------------------------------------------------------------------------- provenance


class ModelProvenanceChecker:
    """Hash a checkpoint directory into ``provenance.json`` and verify it later (which file,
    which tensor changed). Provenance is about files, so ``model`` must be the directory."""

    @staticmethod
    def _directory(model: ModelLike) -> Path:
        if not isinstance(model, (str, Path)):
            raise UsageError(f"provenance checks checkpoint files: pass the model directory, "
                             f"not a loaded {type(model).__name__}")
        return Path(model)

    def create_manifest(self, model: ModelLike, *,
                        training_data: Sequence[str | Path] | None = None,
                        seed: int | None = None) -> Path:
        return write_manifest(self._directory(model), training_data=training_data, seed=seed)

    def check(self, model: ModelLike) -> ProvenanceResult:
        """Verify every file and tensor against the manifest; a missing manifest raises."""
        directory = self._directory(model)
        manifest = read_manifest(directory)
        report = verify_manifest(directory)
        summary = {key: manifest.get(key) for key in ("bertkit_version", "seed",
                                                      "training_data") if key in manifest}
        return ProvenanceResult(str(directory), report.ok, report.files_checked,
                                report.tensors_checked, [str(m) for m in report.mismatches],
                                summary)


# ----------------------------------------------------------------------------- consistency


class BehaviorConsistencyValidator:
    """Does the predicted label survive edits that keep the meaning (case, spacing,
    punctuation, neutral suffixes)? Inconsistent when an edit flips more than
    ``max_flip_rate`` of the texts."""

    def __init__(self, max_flip_rate: float = 0.05, *, suffixes: Sequence[str] = ()):
        self.max_flip_rate = max_flip_rate
        self.suffixes = list(suffixes)

    def validate(self, model: ModelLike, texts: Sequence[str], *,
                 tokenizer: Tokenizer | None = None) -> ConsistencyResult:
        net, tok = resolve_model(model, tokenizer, classifier=True)
        report = audits.consistency(net, tok, _texts(texts, "texts"), suffixes=self.suffixes)
        rows = [PerturbationFlips(name, r["flip_rate"], r["flips"], r["changed"], r["total"],
                                  r["examples"]) for name, r in report.items()]
        worst = max(rows, key=lambda p: p.flip_rate)
        return ConsistencyResult(worst.flip_rate <= self.max_flip_rate, self.max_flip_rate,
                                 worst.name, rows)


# ----------------------------------------------------------------------------- confidence


class ClassifierConfidenceAnalyzer:
    """Calibration and out-of-distribution detection of a classifier's confidence: the
    labelled texts are split (even rows fit the temperature and Mahalanobis statistics, odd
    rows are reported on), ``ood_texts`` are the out-of-distribution side."""

    def analyze(self, model: ModelLike, texts: Sequence[str] | Sequence[TextExample],
                ood_texts: Sequence[str], *, labels: Sequence[str] | None = None,
                tokenizer: Tokenizer | None = None) -> ConfidenceResult:
        net, tok = resolve_model(model, tokenizer, classifier=True)
        examples = _examples(texts, labels, "texts")
        if any(e.label is None for e in examples):
            raise InputError("texts: the confidence analysis needs a label for every text")
        report = audits.confidence(net, tok, examples, _texts(ood_texts, "ood_texts"),
                                   path="texts")
        return ConfidenceResult(report["accuracy"], report["temperature"],
                                report["ece_before"], report["ece_after"], report["ood"],
                                report["counts"])


# ----------------------------------------------------------------------------- scan


def scan(model: ModelLike, texts: Sequence[str], *, labels: Sequence[str] | None = None,
         ood_texts: Sequence[str] | None = None,
         pairs: Sequence[tuple[str, str]] | None = None, tokenizer: Tokenizer | None = None,
         reference: ModelLike | None = None) -> SecurityReport:
    """Run every engine the inputs allow on one classifier: provenance (a directory with a
    manifest), the backdoor scan and the consistency check (``texts``), the confidence / OOD
    analysis (``labels`` and ``ood_texts``), the shift detector (``pairs``). What could not
    run is listed in ``skipped`` with the reason."""
    report = SecurityReport(_describe(model))
    if isinstance(model, (str, Path)):
        try:
            report.provenance = ModelProvenanceChecker().check(model)
        except BertkitError as err:  # no manifest: say so, go on
            report.skipped["provenance"] = str(err)
    else:
        report.skipped["provenance"] = "a loaded model has no files to verify"
    loaded = resolve_model(model, tokenizer, classifier=True)
    report.backdoor = BackdoorTriggerScanner().scan_model(loaded, texts, labels=labels,
                                                          reference=reference)
    report.consistency = BehaviorConsistencyValidator().validate(loaded, texts)
    if labels is not None and ood_texts:
        report.confidence = ClassifierConfidenceAnalyzer().analyze(loaded, texts, ood_texts,
                                                                   labels=labels)
    else:
        report.skipped["confidence"] = "needs labels= and ood_texts="
    if pairs:
        report.shift = EmbeddingShiftDetector().analyze_pairs(pairs, loaded)
    else:
        report.skipped["shift"] = "needs pairs= of (original, modified) texts"
    return report
