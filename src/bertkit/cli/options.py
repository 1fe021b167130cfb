"""Command-line options that several commands share, spelled and explained once."""

from __future__ import annotations

import argparse

from bertkit.inference.fastpath.quantized import QUANTIZATIONS


def quantize_option(parser: argparse.ArgumentParser) -> None:
    """``--quantize int8``: what ``from_pretrained(quantize=...)`` does, for inference
    commands (``embed``, ``similar``, ``serve``, ``predict``, ``evaluate``)."""
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=None,
                        help="int8: int8 weights with dynamically quantised activations, on "
                             "the CPU, for inference only (vectors keep cosine >= 0.995 to "
                             "float32 on MiniLM); conflicts with --dtype other than float32")
