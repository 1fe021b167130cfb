#!/usr/bin/env python
"""Where int8 can pay on this CPU: each MiniLM linear layer shape, float32 (oneDNN prepacked, as
bertkit's fast form runs it) against ``torch.ao`` dynamic int8 (per-channel weights, one
activation scale per call, full 8-bit range, as ``quantize="int8"`` runs it), interleaved.

Usage: ``PYTHONPATH=src python benchmarks/int8_gemm.py [--rows 128,1024] [--reps 5]
[--threads 1]`` (one thread is timed in CPU seconds, see ``peers.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn

from benchtools import cpu_ticks, interleaved, load_note, table
from bertkit.inference.fastpath.prepacked import PrepackedLinear
from bertkit.inference.fastpath.quantized import FullRangeInt8Linear

SHAPES = {"Q/K/V 384→1152": (384, 1152), "attention out 384→384": (384, 384),
          "FFN up 384→1536": (384, 1536), "FFN down 1536→384": (1536, 384)}


def int8_linear(linear: nn.Linear) -> nn.Module:
    linear.qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    layer = torch.ao.nn.quantized.dynamic.Linear.from_float(linear)
    layer.__class__ = FullRangeInt8Linear
    return layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="128,1024")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # One thread: count CPU seconds, steady on a machine that other jobs oversubscribe.
    clock = time.process_time if args.threads == 1 else time.perf_counter
    torch.manual_seed(0)
    rows_out = []
    since = cpu_ticks()
    for rows in (int(r) for r in args.rows.split(",")):
        for name, (n_in, n_out) in SHAPES.items():
            linear = nn.Linear(n_in, n_out)
            fp32, int8 = PrepackedLinear(linear), int8_linear(linear)
            x = torch.randn(rows, n_in)
            with torch.inference_mode():
                samples, _ = interleaved({"fp32": lambda f=fp32, x=x: f(x),
                                          "int8": lambda q=int8, x=x: q(x)},
                                         args.reps, min_sample_s=0.1, clock=clock)
            f, i = (statistics.median(samples[k]) for k in ("fp32", "int8"))
            rows_out.append([f"{rows}", name, f"{1e6 * f:.0f}", f"{1e6 * i:.0f}", f"{f / i:.2f}"])
    print(f"torch {torch.__version__}, capability {torch.backends.cpu.get_cpu_capability()}, "
          f"engine {torch.backends.quantized.engine}, {args.threads} threads; "
          f"{load_note(since)}; "
          f"load {os.getloadavg()[0]:.1f}")
    table(["rows", "layer", "fp32 µs", "int8 µs", "int8 speed-up"], rows_out)


if __name__ == "__main__":
    main()
