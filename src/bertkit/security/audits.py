"""File-level audits: a model directory and data files in, a JSON-ready report out.

Why a module between the detectors and the CLI: each detector takes a model and lists of
texts; a user has a checkpoint directory and a CSV. This module owns the three things every
``bertkit audit …`` command needs — loading the right model class (optionally only if its
provenance manifest verifies), reading texts and labels, and splitting one data file into
disjoint parts so that nothing is reported on the data its threshold or statistics were
fitted on — and :func:`audit_all`, which runs every audit that applies and writes one JSON and
one self-contained HTML report with figures.

Splits are interleaved (row i goes to part i mod k), so a file sorted by label still gives
every part every label, and the same file always gives the same parts.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from bertkit import _fileio
from bertkit.data.readers import TextExample, read_classification
from bertkit.data.readers.pairs import read_tsv_pairs
from bertkit.errors import InputError, UsageError
from bertkit.inference.attention_maps import figures_skipped_note, viz_available
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import BertForMaskedLM, BertForSequenceClassification
from bertkit.security.adversarial import attack, attack_summary
from bertkit.security.backdoor import (
    natural_features,
    probe_candidates,
    scan_for_triggers,
)
from bertkit.security.classifier_audit import confidence_audit
from bertkit.security.consistency import consistency_check
from bertkit.security.embedding_shift import extract_features, fit_detector
from bertkit.security.membership import membership_audit
from bertkit.security.provenance import load_verified
from bertkit.tokenization import Tokenizer

KINDS = ("confidence", "backdoor", "shift", "membership", "consistency", "adversarial")
REPORT_JSON, REPORT_HTML = "audit.json", "audit.html"


# ----------------------------------------------------------------------------- inputs


def load_classifier(directory: str | Path, *, verify_manifest: bool = False
                    ) -> tuple[BertForSequenceClassification, Tokenizer]:
    """A fine-tuned sequence classifier and its tokenizer. A checkpoint without trained
    classifier weights (a bare encoder, a masked LM) is refused: loading it would attach a
    random head and every audit number would describe noise."""
    model, report = _load(BertForSequenceClassification, directory, verify_manifest)
    fresh = [name for name in report.new if name.startswith("classifier.")]
    if fresh:
        raise UsageError(f"{directory}: no classification head in the checkpoint "
                         f"({', '.join(fresh)} missing); a classifier audit needs a fine-tuned "
                         "sequence classifier (bertkit finetune classify)")
    return model, Tokenizer.from_pretrained(directory)


def load_masked_lm(directory: str | Path, *, verify_manifest: bool = False
                   ) -> tuple[BertForMaskedLM, Tokenizer]:
    """A masked LM and its tokenizer; a checkpoint without MLM weights is refused."""
    family = BertConfig.from_pretrained(Path(directory)).model_type  # a RoBERTa run's too
    model, report = _load(BertForMaskedLM.for_family(family), directory, verify_manifest)
    fresh = [name for name in report.new if name.startswith("mlm.")]
    if fresh:
        raise UsageError(f"{directory}: no masked-LM head in the checkpoint ({fresh[0]} … "
                         "missing); membership inference needs a pretrained masked LM")
    return model, Tokenizer.from_pretrained(directory)


def _load(model_class: Any, directory: str | Path, verify: bool) -> tuple[Any, Any]:
    options = {"output_loading_info": True}
    if verify:
        return load_verified(model_class, directory, **options)
    return model_class.from_pretrained(directory, **options)


def read_texts(path: str | Path, *, text_column: str = "text", label_column: str | None = None
               ) -> list[TextExample]:
    """Examples of a CSV / TSV / JSONL / ``.tab`` file; an empty file is an error naming it."""
    examples = read_classification(path, text_column=text_column, label_column=label_column)
    if not examples:
        raise InputError(f"{path}: no texts (an empty reference set)")
    return examples


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """(original, modified) text pairs of a TSV file, one ``original<TAB>modified`` per line
    (:func:`bertkit.data.readers.pairs.read_tsv_pairs`: blank lines skipped, no header; a line
    with another column count or an empty side is an error naming the line)."""
    return [(original, modified) for _, original, modified
            in read_tsv_pairs(path, names=("original", "modified"))]


def interleave(items: Sequence[Any], parts: int, *, name: str) -> list[list[Any]]:
    """Row i → part i mod ``parts``; each part must be non-empty."""
    if len(items) < parts:
        raise InputError(f"{name}: {len(items)} text(s); at least {parts} are needed to keep "
                         f"{parts} disjoint parts (fit / calibrate / report)")
    return [list(items[i::parts]) for i in range(parts)]


def _labels(examples: Sequence[TextExample], path: str | Path) -> list[str]:
    missing = [e.line for e in examples if e.label is None]
    if missing:
        raise InputError(f"{path}:{missing[0]}: no label; this audit needs labelled data")
    return [str(e.label) for e in examples]


# ----------------------------------------------------------------------------- audits


def confidence(model: nn.Module, tokenizer: Tokenizer, data: Sequence[TextExample],
               ood: Sequence[str], *, path: str | Path = "data",
               plot: str | Path | None = None) -> dict[str, Any]:
    """Temperature and Mahalanobis fitted on even rows, ECE and OOD metrics on odd rows."""
    calibration, evaluation = interleave(data, 2, name=str(path))
    return confidence_audit(model, tokenizer,
                            calibration_texts=[e.text for e in calibration],
                            calibration_labels=_labels(calibration, path),
                            eval_texts=[e.text for e in evaluation],
                            eval_labels=_labels(evaluation, path), ood_texts=list(ood),
                            plot=plot)


def backdoor(model: nn.Module, tokenizer: Tokenizer, examples: Sequence[TextExample], *,
             threshold: float = 0.5, max_texts: int = 48, probe_k: int = 20,
             gradient_k: int = 0, max_trigger_length: int = 1,
             reference: nn.Module | None = None, drift_k: int = 20) -> dict[str, Any]:
    """Scan for triggers that flip most of (the first ``max_texts``) clean texts, in excess
    of what they do to a clean ``reference`` classifier when one is given (which also
    proposes the ``drift_k`` words whose embedding moved most from it). When the examples
    are labelled, all of them also tell which words are natural features of a label
    (:func:`~bertkit.security.backdoor.natural_features`), which are then not reported."""
    labelled = all(e.label is not None for e in examples)
    natural = natural_features(tokenizer, examples, model.config.label2id) if labelled else None
    report = scan_for_triggers(model, tokenizer, [e.text for e in examples][:max_texts],
                               threshold=threshold, probe_k=probe_k, gradient_k=gradient_k,
                               max_trigger_length=max_trigger_length, reference=reference,
                               natural=natural, drift_k=drift_k)
    names = getattr(model.config, "id2label", None) or {}
    out = {**report.to_dict(), "natural_features_from": f"{len(examples)} labelled texts"
           if labelled else "skipped: not every text has a label"}
    for finding in out["suspected"] + out["findings"]:
        finding["label_name"] = names.get(finding["label"], str(finding["label"]))
    return out


def adversarial(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str], *,
                insertions: Sequence[str] | None = None, kinds: Sequence[str] = ("insert", "typo"),
                max_edits: int = 2, max_queries: int = 600, words_per_label: int = 3,
                examples: int = 5) -> tuple[dict[str, Any], list[Any]]:
    """Greedy attack; without ``insertions``, the attacker inserts the words the model itself
    votes hardest for (the single-word probe's top ``words_per_label`` per label)."""
    if insertions is None and "insert" in kinds:
        insertions = sorted({w for row in probe_candidates(model, tokenizer, words_per_label)
                             for w in row})
    results = attack(model, tokenizer, list(texts), kinds=kinds, insertions=insertions or (),
                     max_edits=max_edits, max_queries=max_queries)
    summary: dict[str, Any] = dict(attack_summary(results))
    summary["insertions"] = list(insertions or ())
    summary["examples"] = [{"original": r.original, "adversarial": r.adversarial,
                            "label_before": r.original_label, "label_after": r.final_label,
                            "edits": [e.__dict__ for e in r.edits]}
                           for r in results if r.success][:examples]
    return summary, results


def shift(model: nn.Module, tokenizer: Tokenizer, reference: Sequence[str],
          inputs: Sequence[str] | None = None, *, fpr: float = 0.05,
          attack_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Statistics on reference part 1, threshold on part 2 (target ``fpr``); then either flag
    ``inputs``, or — without them — attack part 3 and report the detector's AUROC and
    TPR/FPR on the successful adversarial texts vs their clean originals."""
    fit, calibration, held_out = interleave(list(reference), 3, name="reference set")
    detector = fit_detector(model, tokenizer, fit, calibration, fpr=fpr)
    report: dict[str, Any] = {"score": detector.score_name, "threshold": detector.threshold,
                              "target_fpr": fpr, "fit": len(fit),
                              "calibration": len(calibration)}
    if inputs is not None:
        if not inputs:
            raise InputError("no inputs to check")
        scores = detector.score(extract_features(model, tokenizer, list(inputs)))
        report["inputs"] = [{"text": t, "score": float(s), "flagged": bool(s > detector.threshold)}
                            for t, s in zip(inputs, scores, strict=True)]
        report["flagged"] = int(sum(r["flagged"] for r in report["inputs"]))
        return report
    summary, results = adversarial(model, tokenizer, held_out, **(attack_options or {}))
    wins = [r for r in results if r.success]
    report["attack"] = summary
    if not wins:
        report["auroc"] = None
        return report
    clean = extract_features(model, tokenizer, [r.original for r in wins])
    shifted = extract_features(model, tokenizer, [r.adversarial for r in wins])
    report.update(detector.evaluate(clean, shifted))
    report["scores"] = {"clean": detector.score(clean).tolist(),
                        "adversarial": detector.score(shifted).tolist()}
    return report


def consistency(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str], *,
                suffixes: Sequence[str] = ()) -> dict[str, Any]:
    """Flip rate per meaning-preserving perturbation."""
    return {r.name: {"flip_rate": r.flip_rate, "flip_rate_changed": r.flip_rate_changed,
                     "flips": r.flips, "changed": r.changed, "total": r.total,
                     "examples": [f.__dict__ for f in r.examples]}
            for r in consistency_check(model, tokenizer, list(texts), suffixes=suffixes)}


def membership(model_dir: str | Path, members: Sequence[str], nonmembers: Sequence[str], *,
               reference_dir: str | Path | None = None,
               verify_manifest: bool = False) -> dict[str, Any]:
    """Loss (and, with a reference model, likelihood-ratio) membership attack."""
    model, tokenizer = load_masked_lm(model_dir, verify_manifest=verify_manifest)
    options: dict[str, Any] = {}
    if reference_dir is not None:
        options["reference_model"], options["reference_tokenizer"] = load_masked_lm(
            reference_dir, verify_manifest=verify_manifest)
    return membership_audit(model, tokenizer, list(members), list(nonmembers), **options)


# ----------------------------------------------------------------------------- audit all


def audit_all(model_dir: str | Path, data: str | Path, out: str | Path, *,
              ood: str | Path | None = None, text_column: str = "text",
              label_column: str | None = "label", verify_manifest: bool = False,
              max_texts: int = 48) -> dict[str, Any]:
    """Every classifier audit that applies to ``model_dir`` and ``data`` (confidence needs
    labels and an ``ood`` file), written to ``out/audit.json`` and ``out/audit.html``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_classifier(model_dir, verify_manifest=verify_manifest)
    examples = read_texts(data, text_column=text_column, label_column=label_column)
    texts = [e.text for e in examples]
    report: dict[str, Any] = {"model": str(model_dir), "data": str(data),
                              "texts": len(texts), "audits": {}, "skipped": {}}
    audits = report["audits"]
    draw = viz_available()
    if not draw:
        report["figures_skipped"] = figures_skipped_note()
    if ood is not None and label_column is not None:
        ood_texts = [e.text for e in read_texts(ood, text_column=text_column)]
        audits["confidence"] = confidence(model, tokenizer, examples, ood_texts, path=data,
                                          plot=out / "reliability.png" if draw else None)
    else:
        report["skipped"]["confidence"] = "needs labelled --data and an --ood file"
    audits["consistency"] = consistency(model, tokenizer, texts)
    audits["backdoor"] = backdoor(model, tokenizer, examples, max_texts=max_texts)
    try:
        audits["shift"] = shift(model, tokenizer, texts, attack_options={"max_queries": 300})
    except InputError as err:  # too few texts for a calibrated threshold: say so, go on
        report["skipped"]["shift"] = str(err)
    if draw and audits.get("shift", {}).get("scores"):
        _histogram(audits["shift"]["scores"], out / "shift_scores.png",
                   audits["shift"]["threshold"])
    _fileio.write_json(out / REPORT_JSON, report)
    _fileio.write_text(out / REPORT_HTML, render_html(report, out))
    return report


def _histogram(scores: dict[str, list[float]], path: Path, threshold: float) -> None:
    from bertkit.inference.attention_maps import _figure_class, _save_png

    figure = _figure_class()(figsize=(5.5, 3.5), layout="constrained")
    axis = figure.subplots()
    for name, values in scores.items():
        axis.hist(values, bins=20, alpha=0.6, label=f"{name} ({len(values)})")
    axis.axvline(threshold, color="black", linestyle="--", label="threshold")
    axis.set(xlabel="shift score (Mahalanobis / H)", ylabel="texts",
             title="Embedding shift: clean vs adversarial")
    axis.legend()
    _save_png(figure, path)


def render_html(report: dict[str, Any], out: Path) -> str:
    """One self-contained page: each audit's numbers as a table, figures embedded."""
    import base64

    def rows(value: Any, prefix: str = "") -> list[tuple[str, str]]:
        if isinstance(value, dict):
            return [r for k, v in value.items() for r in rows(v, f"{prefix}{k}.")]
        if isinstance(value, float):
            return [(prefix.rstrip("."), f"{value:.4g}")]
        if isinstance(value, list) and len(value) > 8:
            return [(prefix.rstrip("."), f"[{len(value)} items, see {REPORT_JSON}]")]
        return [(prefix.rstrip("."), json.dumps(value, ensure_ascii=False))]

    parts = [f"<h1>bertkit audit</h1><p>model <code>{html.escape(report['model'])}</code>, "
             f"data <code>{html.escape(report['data'])}</code> ({report['texts']} texts)</p>"]
    for name, result in report["audits"].items():
        body = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                       for k, v in rows(result))
        parts.append(f"<h2>{html.escape(name)}</h2><table>{body}</table>")
    for name, reason in report["skipped"].items():
        parts.append(f"<h2>{html.escape(name)}</h2><p>skipped: {html.escape(reason)}</p>")
    if "figures_skipped" in report:  # and an earlier run's PNGs in ``out`` are not this run's
        parts.append(f"<p>{html.escape(report['figures_skipped'])}</p>")
    for figure in ("reliability.png", "shift_scores.png"):
        if "figures_skipped" not in report and (out / figure).is_file():
            data = base64.b64encode((out / figure).read_bytes()).decode("ascii")
            parts.append(f'<h2>{figure}</h2><img alt="{figure}" '
                         f'src="data:image/png;base64,{data}">')
    style = ("body{font-family:sans-serif;max-width:60em;margin:auto}td{padding:2px 8px;"
             "border-bottom:1px solid #ddd;vertical-align:top}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>bertkit audit</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")

