#!/usr/bin/env python
"""What int8 dynamic quantisation costs and buys on a real task: Reuters R8 after fine-tuning.

Steps: fine-tune all-MiniLM-L6-v2 on a stratified R8 training slice with bertkit's fine-tuning
runner (texts cut to their first ``--words`` words, as in ``finetune_compare.py``, whose slicing
this script reuses); then predict the same test slice with four variants of the best model,
all through :class:`bertkit.tasks.predictor.Predictor` (the server's classification path):

* ``torch fp32`` — the fine-tuned bertkit model;
* ``torch int8`` — :func:`bertkit.export.quantize.quantize_torch` (Linear layers int8);
* ``bertkit int8`` — ``quantize="int8"`` on load, what ``--quantize int8`` on ``predict``,
  ``embed`` and ``serve`` runs (:mod:`bertkit.inference.fastpath.quantized`);
* ``onnx fp32`` — :func:`bertkit.export.onnx.export_onnx`, ONNX Runtime CPU;
* ``onnx int8`` — that graph after :func:`bertkit.export.quantize.quantize_onnx` (per channel).

Reported per variant: accuracy and macro F1 on the test slice, agreement of its predicted labels
with torch fp32, and the time of one prediction pass over the slice (``median (min..max)`` of
``--reps`` interleaved passes, ``benchtools.interleaved``), with the speed-up against torch fp32.

Usage (repository root)::

    nice -n 10 .venv/bin/python benchmarks/quantize_r8.py                 # 400 train / 400 test
    nice -n 10 .venv/bin/python benchmarks/quantize_r8.py --train-n 800 --epochs 4
    nice -n 10 .venv/bin/python benchmarks/quantize_r8.py --run DIR --no-onnx   # reuse a run
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchtools import cpu_ticks, interleaved, load_note, ms_cell, table
from bertkit.data.readers import LabelMap
from bertkit.export.onnx import export_onnx, load_for_export
from bertkit.export.quantize import quantize_onnx, quantize_torch
from bertkit.export.runtime import OnnxRuntimeModel
from bertkit.model.config import BertConfig
from bertkit.resources.artifacts import fetch
from bertkit.runs.finetune import FinetuneConfig, finetune_classifier
from bertkit.tasks import metrics as M
from bertkit.tasks.predictor import Predictor
from finetune_compare import reuters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-n", type=int, default=400)
    parser.add_argument("--test-n", type=int, default=400)
    parser.add_argument("--words", type=int, default=48, help="words kept per text")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--run", type=Path, default=None,
                        help="a fine-tuned run directory to test instead of fine-tuning one")
    parser.add_argument("--no-onnx", dest="onnx", action="store_false",
                        help="leave out the two ONNX Runtime variants (no export)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.seed, args.warmup_ratio = 42, 0.1
    since = cpu_ticks()
    train, test = reuters(args)
    work = Path(tempfile.mkdtemp(prefix="quantize-r8-"))
    config = FinetuneConfig(epochs=args.epochs, max_length=args.max_length,
                            learning_rate=args.lr, batch_size=args.batch_size, device="cpu",
                            seed=args.seed)
    run = args.run or fine_tuned(args, train, test, config, work)
    fp32 = Predictor.load("classify", run, device="cpu")
    config_ = BertConfig.from_pretrained(run)
    variants = {
        "torch fp32": fp32,
        "torch int8": Predictor.load("classify", run, model=quantize_torch(
            Predictor.load("classify", run, device="cpu").model), device="cpu"),
        "bertkit int8": Predictor.load("classify", run, device="cpu", quantize="int8"),
    }
    sizes: dict[str, int] = {}
    if args.onnx:
        graph = export_onnx(load_for_export(run, "sequence-classification"), work / "r8.onnx")
        graph_int8 = quantize_onnx(graph, work / "r8.int8.onnx")
        variants["onnx fp32"] = Predictor.load("classify", run,
                                               model=OnnxRuntimeModel(graph, config_))
        variants["onnx int8"] = Predictor.load("classify", run,
                                               model=OnnxRuntimeModel(graph_int8, config_))
        sizes = {"fp32": graph.stat().st_size, "int8": graph_int8.stat().st_size}
    texts = [example.text for example in test]
    labels = LabelMap.from_config(config_.to_dict())
    gold = [labels.id_of(example.label) for example in test]
    predicted = {name: [labels.id_of(r["label"]) for r in p.classify(texts)]
                 for name, p in variants.items()}
    samples, _ = interleaved({name: (lambda p=p: p.classify(texts))
                              for name, p in variants.items()}, args.reps, calls=1, warmup=0)
    base_time = statistics.median(samples["torch fp32"])
    base_acc = M.accuracy(gold, predicted["torch fp32"])
    rows = []
    for name, pred in predicted.items():
        accuracy = M.accuracy(gold, pred)
        macro = M.precision_recall_f1(gold, pred, "macro", labels=list(range(len(labels))))
        agree = M.accuracy(predicted["torch fp32"], pred)
        rows.append([name, f"{accuracy:.4f}", f"{macro.f1:.4f}",  # type: ignore[union-attr]
                     f"{100 * (accuracy - base_acc):+.2f} pt", f"{agree:.4f}",
                     ms_cell(samples[name], 0),
                     f"{base_time / statistics.median(samples[name]):.2f}×"])
    graphs = (f"ONNX graph {sizes['fp32'] / 2**20:.1f} MiB fp32, "
              f"{sizes['int8'] / 2**20:.1f} MiB int8; " if sizes else "")
    print(f"\nReuters R8 test slice: {len(texts)} texts (first {args.words} words each); "
          f"{torch.get_num_threads()} threads; {graphs}{load_note(since)}; load average "
          + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + "\n")
    table(["variant", "accuracy", "macro F1", "Δ accuracy", "agrees w/ fp32",
           f"ms per pass over {len(texts)}", "speed-up"], rows)


def fine_tuned(args: argparse.Namespace, train: list, test: list, config: FinetuneConfig,
               work: Path) -> Path:
    """Fine-tune all-MiniLM-L6-v2 on the training slice; the best epoch's run directory."""
    started = time.perf_counter()
    result = finetune_classifier(fetch("all-minilm-l6-v2", quiet=True), "train", "test",
                                 work / "run", train_examples=train, eval_examples=test,
                                 config=config)
    print(f"fine-tuned on {len(train)} R8 texts in {time.perf_counter() - started:.0f} s; best "
          f"epoch {result.best_epoch}: accuracy {result.metrics['accuracy']:.4f}", flush=True)
    return result.output_dir


if __name__ == "__main__":
    main()
