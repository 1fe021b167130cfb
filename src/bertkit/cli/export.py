"""``bertkit export onnx`` (any head, dynamic axes, optional parity check) and
``bertkit export quantize`` (int8 dynamic quantisation of an exported graph).

Exit status: 0 on success, 1 when ``--verify`` finds ONNX Runtime and PyTorch further apart than
the tolerance (the table is printed), 2 for a user's mistake (bad path, missing extra).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bertkit.cli import numbers
from bertkit.cli.command import add_command


def register(subcommands: argparse._SubParsersAction) -> None:
    from bertkit.export.onnx import DEFAULT_TOLERANCE, TASKS

    parser = subcommands.add_parser(
        "export", help="export a model to ONNX; quantise it to int8",
        description="Export models for other runtimes (needs the 'onnx' extra).")
    actions = parser.add_subparsers(title="formats", metavar="FORMAT")

    onnx = add_command(actions, "onnx", _export_onnx)
    onnx.add_argument("--model", type=Path, required=True, help="model directory")
    onnx.add_argument("--out", type=Path, required=True, metavar="FILE.onnx")
    onnx.add_argument("--task", default="auto", choices=["auto", *TASKS],
                      help="model class to export (default auto: config.json 'architectures', "
                           "else the bare encoder)")
    onnx.add_argument("--opset", type=numbers.positive, default=None, metavar="N",
                      help="ONNX opset (default: the exporter's)")
    onnx.add_argument("--verify", action="store_true",
                      help="run ONNX Runtime and PyTorch on a padded and an unpadded batch; "
                           "exit 1 above --tolerance")
    onnx.add_argument("--tolerance", type=numbers.nonnegative_real, default=DEFAULT_TOLERANCE,
                      help=f"max |diff| allowed by --verify (default {DEFAULT_TOLERANCE:g})")

    quant = add_command(actions, "quantize", _quantize)
    quant.add_argument("--onnx", type=Path, required=True, metavar="IN.onnx")
    quant.add_argument("--out", type=Path, required=True, metavar="OUT.onnx")
    quant.add_argument("--per-tensor", action="store_true",
                       help="one weight scale per matrix instead of per output channel "
                            "(measured much less accurate on all-MiniLM-L6-v2)")
    parser.set_defaults(handler=lambda _args: parser.print_help() or 0)


def _export_onnx(args: argparse.Namespace) -> int:
    """``bertkit export onnx``: export to ONNX with dynamic batch and sequence axes.

    Inputs input_ids, attention_mask, token_type_ids (int64, (batch, sequence)); outputs named as
    the model's output fields.
    """
    from bertkit.export.onnx import ParityError, export_onnx, load_for_export, verify

    model = load_for_export(args.model, args.task)
    started = time.perf_counter()
    export_onnx(model, args.out, opset=args.opset)
    print(f"exported {type(model).__name__} to {args.out} "
          f"in {time.perf_counter() - started:.1f} s")
    if not args.verify:
        return 0
    tokenizer = _tokenizer_or_none(args.model)
    try:
        report = verify(args.out, model, tokenizer=tokenizer, tolerance=args.tolerance)
    except ParityError as err:
        print(f"verify FAILED: {err}", file=sys.stderr)
        return 1
    print(report.table())
    print(f"verify ok: max |diff| {max(report.max_abs.values()):.3g} <= {args.tolerance:g}")
    return 0


def _tokenizer_or_none(directory: Path) -> Any:
    """The model's tokenizer when the directory has one: verify then uses real sentences."""
    from bertkit.errors import BertkitError
    from bertkit.tokenization import Tokenizer

    try:
        return Tokenizer.from_pretrained(directory)
    except BertkitError:
        return None


def _quantize(args: argparse.Namespace) -> int:
    """``bertkit export quantize``: int8 dynamic quantisation of an exported ONNX graph.

    MatMul/Gemm weights to int8; activations quantised at run time.
    """
    from bertkit.export.quantize import quantize_onnx

    quantize_onnx(args.onnx, args.out, per_channel=not args.per_tensor)
    before, after = args.onnx.stat().st_size, args.out.stat().st_size
    print(f"quantised {args.onnx} ({before / 2**20:.1f} MiB) to {args.out} "
          f"({after / 2**20:.1f} MiB)")
    return 0
