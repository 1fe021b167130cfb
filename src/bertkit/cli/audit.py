"""``bertkit audit``: security audits of a model directory.

``bertkit audit manifest DIR`` writes ``provenance.json`` (per-file and per-tensor SHA-256,
config, tokenizer files, optional training-data fingerprint and seed) beside a checkpoint;
``bertkit audit verify DIR`` checks a directory against it and exits 2 with one ``error:``
line naming what differs (the tensor, for a tampered safetensors file).

``bertkit audit confidence|backdoor|shift|membership|consistency|adversarial --model DIR
--data FILE …`` runs one detector and prints its report as JSON (``--out FILE`` also writes
it); ``bertkit audit shift --model DIR --pairs pairs.tsv`` instead compares each
original<TAB>modified line and names the tokens that moved it most; ``bertkit audit all
--model DIR --data FILE --out DIR`` runs every classifier audit that applies and writes
``audit.json`` + ``audit.html`` with figures. ``--verify-manifest`` refuses a checkpoint
whose provenance manifest does not verify, before any weight is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bertkit import _fileio
from bertkit.cli import numbers
from bertkit.cli.command import add_command
from bertkit.errors import UsageError
from bertkit.security import audits
from bertkit.security.engines import EmbeddingShiftDetector, resolve_model
from bertkit.security.provenance import verify_manifest, write_manifest


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("audit", help="security audits: detectors and provenance")
    actions = parser.add_subparsers(title="audits", metavar="AUDIT", required=True)

    manifest = add_command(actions, "manifest", run_manifest)
    manifest.add_argument("model", type=Path, help="a checkpoint directory")
    manifest.add_argument("--data", type=Path, action="append", default=None,
                          help="training data file or directory to fingerprint (repeatable)")
    manifest.add_argument("--seed", type=numbers.seed, default=None,
                          help="the training seed to record")

    verify = add_command(actions, "verify", run_verify)
    verify.add_argument("model", type=Path, help="a checkpoint directory with provenance.json")

    helps = {
        "confidence": "ECE before/after temperature scaling; OOD AUROC vs --ood texts",
        "backdoor": "scan a classifier for triggers that flip most clean texts to one label",
        "shift": "embedding-shift detector: flag --inputs, or measure it on attacked texts",
        "membership": "membership inference on a masked LM: --data members, --nonmembers",
        "consistency": "label flip rate under meaning-preserving perturbations",
        "adversarial": "greedy insertion / typo attack: success rate and examples",
    }
    for kind in audits.KINDS:
        sub = actions.add_parser(kind, help=helps[kind])
        _common(sub, data_required=kind != "shift")
        sub.set_defaults(handler=run_one, kind=kind)
        if kind == "confidence":
            sub.add_argument("--ood", type=Path, required=True,
                             help="out-of-distribution texts (same --text-column)")
            sub.add_argument("--plot", type=Path, help="write the reliability diagram PNG")
        elif kind == "backdoor":
            sub.add_argument("--threshold", type=numbers.nonnegative_real, default=0.5,
                             help="attack-success rate that makes a trigger suspect")
            sub.add_argument("--reference-model", type=Path,
                             help="a classifier known to be clean (same base and labels): "
                             "the threshold then applies to the ASR in excess of its ASR")
        elif kind == "shift":
            sub.add_argument("--inputs", type=Path,
                             help="texts to flag; without it, attacked held-out texts")
            sub.add_argument("--pairs", type=Path,
                             help="original<TAB>modified per line: the shift of each pair and "
                             "the tokens that moved it most (--data, if given, calibrates "
                             "the threshold on harmless edits of its texts)")
            sub.add_argument("--fpr", type=numbers.rate, default=0.05,
                             help="target false-positive rate on clean data")
        elif kind == "membership":
            sub.add_argument("--nonmembers", type=Path, required=True,
                             help="texts known NOT to be in the training data")
            sub.add_argument("--reference-model", type=Path,
                             help="a masked LM not trained on the members (likelihood ratio)")
        elif kind == "consistency":
            sub.add_argument("--suffix", action="append", default=[],
                             help="a neutral suffix to append (repeatable)")
        elif kind == "adversarial":
            sub.add_argument("--insert", action="append", default=None,
                             help="a word the attack may insert (repeatable; default: the "
                                  "model's own strongest words per label)")
            sub.add_argument("--max-edits", type=numbers.positive, default=2)

    every = add_command(actions, "all", run_all)
    _common(every)
    every.add_argument("--ood", type=Path, help="out-of-distribution texts for the confidence "
                                                "audit (skipped without)")


def _common(parser: argparse.ArgumentParser, *, data_required: bool = True) -> None:
    parser.add_argument("--model", type=Path, required=True, help="a model directory")
    parser.add_argument("--data", type=Path, required=data_required,
                        help="CSV / TSV / JSONL / .tab texts (labels where the audit needs)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default=None,
                        help="the labels' column (default 'label' where an audit needs "
                        "labels; backdoor: optional, its labels mark words that are natural "
                        "features of a label, which are not reported as triggers)")
    parser.add_argument("--max-texts", type=numbers.positive, default=48,
                        help="texts the expensive searches (backdoor, attack) use")
    parser.add_argument("--out", type=Path, help="write the report here (all: a directory)")
    parser.add_argument("--verify-manifest", action="store_true",
                        help="refuse a checkpoint whose provenance.json does not verify")


def run_manifest(args: argparse.Namespace) -> int:
    """``bertkit audit manifest``: write provenance.json beside a checkpoint."""
    path = write_manifest(args.model, training_data=args.data, seed=args.seed)
    print(f"wrote {path}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """``bertkit audit verify``: check a checkpoint against its provenance.json."""
    report = verify_manifest(args.model).raise_on_mismatch()
    print(report.summary())
    return 0


def _texts(args: argparse.Namespace, path: Path) -> list[str]:
    return [e.text for e in audits.read_texts(path, text_column=args.text_column)]


def run_one(args: argparse.Namespace) -> int:
    kind = args.kind
    if kind == "membership":
        report: Any = audits.membership(args.model, _texts(args, args.data),
                                        _texts(args, args.nonmembers),
                                        reference_dir=args.reference_model,
                                        verify_manifest=args.verify_manifest)
        return _emit(args, report)
    if kind == "shift" and args.pairs is not None:
        return _emit(args, _shift_pairs(args))
    if args.data is None:
        raise UsageError(f"audit {kind} needs --data (for shift: --data or --pairs)")
    model, tokenizer = audits.load_classifier(args.model, verify_manifest=args.verify_manifest)
    if kind == "confidence":
        data = audits.read_texts(args.data, text_column=args.text_column,
                                 label_column=args.label_column or "label")
        report = audits.confidence(model, tokenizer, data, _texts(args, args.ood),
                                   path=args.data, plot=args.plot)
        return _emit(args, report)
    if kind == "backdoor":
        reference = None if args.reference_model is None else audits.load_classifier(
            args.reference_model, verify_manifest=args.verify_manifest)[0]
        data = audits.read_texts(args.data, text_column=args.text_column,
                                 label_column=args.label_column)
        report = audits.backdoor(model, tokenizer, data, threshold=args.threshold,
                                 max_texts=args.max_texts, reference=reference)
        return _emit(args, report)
    texts = _texts(args, args.data)
    if kind == "shift":
        inputs = _texts(args, args.inputs) if args.inputs is not None else None
        report = audits.shift(model, tokenizer, texts, inputs, fpr=args.fpr)
    elif kind == "consistency":
        report = audits.consistency(model, tokenizer, texts, suffixes=args.suffix)
    else:
        report, _ = audits.adversarial(model, tokenizer, texts[:args.max_texts],
                                       insertions=args.insert, max_edits=args.max_edits)
    return _emit(args, report)


def _shift_pairs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each (original, modified) pair of ``--pairs`` through :class:`EmbeddingShiftDetector`."""
    pairs = audits.read_pairs(args.pairs)
    model = resolve_model(args.model, classifier=False)
    detector = EmbeddingShiftDetector()
    if args.data is not None:
        detector.calibrate(_texts(args, args.data), model, fpr=args.fpr)
    return [r.to_dict() for r in detector.analyze_pairs(pairs, model)]


def _emit(args: argparse.Namespace, report: Any) -> int:
    if args.out is not None:
        _fileio.write_json(args.out, report)
    json.dump(report, sys.stdout, indent=2, default=str)
    print()
    return 0


def run_all(args: argparse.Namespace) -> int:
    """``bertkit audit all``: every classifier audit; JSON + HTML report."""
    out = args.out or Path("audit")
    report = audits.audit_all(args.model, args.data, out, ood=args.ood,
                              text_column=args.text_column,
                              label_column=args.label_column or "label",
                              verify_manifest=args.verify_manifest, max_texts=args.max_texts)
    print(f"wrote {out / audits.REPORT_JSON} and {out / audits.REPORT_HTML} "
          f"({', '.join(report['audits'])}; skipped: {', '.join(report['skipped']) or 'none'})")
    if "figures_skipped" in report:
        print(report["figures_skipped"])
    return 0
