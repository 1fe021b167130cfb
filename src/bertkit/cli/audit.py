"""``bertkit audit``: security audits of a model directory.

``bertkit audit manifest DIR`` writes ``provenance.json`` (per-file and per-tensor SHA-256,
config, tokenizer files, optional training-data fingerprint and seed) beside a checkpoint;
``bertkit audit verify DIR`` checks a directory against it and exits 2 with one ``error:``
line naming what differs (the tensor, for a tampered safetensors file).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bertkit.security.provenance import verify_manifest, write_manifest


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("audit", help="security audits: provenance manifests")
    actions = parser.add_subparsers(title="audits", metavar="AUDIT", required=True)

    manifest = actions.add_parser("manifest", help="write provenance.json beside a checkpoint")
    manifest.add_argument("model", type=Path, help="a checkpoint directory")
    manifest.add_argument("--data", type=Path, action="append", default=None,
                          help="training data file or directory to fingerprint (repeatable)")
    manifest.add_argument("--seed", type=int, default=None, help="the training seed to record")
    manifest.set_defaults(handler=run_manifest)

    verify = actions.add_parser("verify", help="check a checkpoint against its provenance.json")
    verify.add_argument("model", type=Path, help="a checkpoint directory with provenance.json")
    verify.set_defaults(handler=run_verify)


def run_manifest(args: argparse.Namespace) -> int:
    path = write_manifest(args.model, training_data=args.data, seed=args.seed)
    print(f"wrote {path}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    report = verify_manifest(args.model).raise_on_mismatch()
    print(report.summary())
    return 0
