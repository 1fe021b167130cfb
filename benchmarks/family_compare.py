#!/usr/bin/env python
"""The BERT family side by side: pretrain each objective under the same budget on the same real
corpus, fine-tune each on the same real classification set, and distil the BERT into a
DistilBERT student (issue 6's learning run).

What it runs, in order, all on CPU:

1. Data: the Reuters R52 training text as the pretraining corpus (the demo's corpus, cached),
   one WordPiece vocabulary trained on it, Reuters R8 for fine-tuning (a stratified training
   slice and an evenly spaced test slice, the same for every model).
2. Pretraining, one run per objective, each with the same wall-clock budget
   (``--minutes``), batch, sequence length, learning rate and seed, on models of the same
   shape (2 layers, hidden 128, 2 heads, feed-forward 512 — bert-tiny's shape, dropout off):
   ``bert`` (MLM + NSP), ``roberta`` (dynamic MLM, packed sequences), ``albert`` (MLM + SOP,
   one shared layer group, E = H) and ``electra`` (generator of 1/4 the width + the
   discriminator on replaced-token detection; the discriminator is fine-tuned).
3. Distillation: a 1-layer DistilBERT student from the ``bert`` run's 2-layer model, for the
   same budget.
4. Fine-tuning: every pretrained model (and the student) for the same number of steps on the
   same R8 slice, once per fine-tuning seed, each scored on the test slice: median accuracy
   and macro-F1 (per-seed accuracies beside); and, as the control, the same BERT shape
   fine-tuned from random weights (no pretraining).
5. Speed: teacher vs student forward passes on the test slice's texts, interleaved, ratio of
   medians (``benchtools.interleaved``).

Equal wall-clock is the budget because that is what a user of one machine has; the table
also gives each run's steps and sequences seen, so a difference in cost per step (ELECTRA runs
two networks) stays visible. Wall-clock is only fair on a quiet machine: the load note says how
much CPU other processes took.

Usage (repository root, project virtualenv)::

    .venv/bin/python benchmarks/family_compare.py                  # 4 min per run, ~35 min
    .venv/bin/python benchmarks/family_compare.py --minutes 1 --finetune-steps 40   # smoke run
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchtools import cpu_ticks, interleaved, load_note, table
from bertkit.data.readers import read_classification
from bertkit.demo.data_steps import CORPUS_SOURCE, DATASETS, TEST_FILE, TRAIN_FILE
from bertkit.demo.sampling import spread, stratified
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import BertModel, DistilBertModel
from bertkit.resources.artifacts import cache_root, fetch
from bertkit.resources.corpora import build_corpus
from bertkit.runs.distill import DistillSettings, distill
from bertkit.runs.finetune import FinetuneConfig, finetune_classifier
from bertkit.runs.pretrain import PretrainSettings, pretrain
from bertkit.tokenization import Tokenizer, train_wordpiece

SHAPE = {"num_hidden_layers": 2, "hidden_size": 128, "num_attention_heads": 2,
         "intermediate_size": 512, "hidden_dropout_prob": 0.0,
         "attention_probs_dropout_prob": 0.0, "max_position_embeddings": 512}
#: objective → (preset, shape changes beyond SHAPE)
OBJECTIVES = {
    "bert": ("bert_tiny", {}),
    "roberta": ("bert_tiny", {}),
    "albert": ("albert_base", {"embedding_size": 128, "num_hidden_groups": 1}),
    "electra": ("electra_small_discriminator", {"embedding_size": 128}),
}
SEQ_LEN, BATCH, LEARNING_RATE = 128, 16, 1.5e-3


def prepare(work: Path, vocab_size: int, train_n: int, test_n: int) -> dict[str, Any]:
    corpus = build_corpus(cache_root() / "demo" / f"{CORPUS_SOURCE}.txt",
                          sources=(CORPUS_SOURCE,))
    tokenizer_dir = work / "tokenizer"
    train_wordpiece(corpus.path, vocab_size=vocab_size).save_pretrained(tokenizer_dir)
    datasets = fetch(DATASETS, quiet=True)
    read = {"text_column": "Text", "label_column": "Category"}
    train = read_classification(datasets / TRAIN_FILE, **read)  # type: ignore[arg-type]
    test = read_classification(datasets / TEST_FILE, **read)  # type: ignore[arg-type]
    return {"corpus": Path(corpus.path), "documents": corpus.documents, "words": corpus.words,
            "tokenizer": tokenizer_dir, "train": stratified(train, train_n),
            "test": spread(test, test_n)}


def pretrain_one(objective: str, data: dict[str, Any], work: Path,
                 args: argparse.Namespace) -> dict[str, Any]:
    preset, extra = OBJECTIVES[objective]
    settings = PretrainSettings(
        corpus=[data["corpus"]], output_dir=work / objective, tokenizer=data["tokenizer"],
        preset=preset, model_overrides={**SHAPE, **extra}, regime=objective,  # type: ignore
        seq_len=SEQ_LEN, batch_size=BATCH, learning_rate=LEARNING_RATE, warmup_steps=100,
        max_steps=100_000, max_minutes=args.minutes, dupe_factor=1, eval_fraction=0.02,
        eval_max_examples=256, eval_every=0, seed=args.seed, device="cpu", progress=False)
    return summarize_run(pretrain(settings))


def control(data: dict[str, Any], work: Path, seed: int) -> dict[str, Any]:
    """The same BERT shape without pretraining: what fine-tuning alone reaches."""
    tokenizer = Tokenizer.from_pretrained(data["tokenizer"])
    config = BertConfig(vocab_size=tokenizer.vocab_size, **SHAPE)  # type: ignore[arg-type]
    torch.manual_seed(seed)
    folder = work / "no-pretraining"
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {"model_dir": folder, "steps": 0, "sequences": 0, "eval": {}}


def distill_one(teacher: Path, data: dict[str, Any], work: Path,
                args: argparse.Namespace) -> dict[str, Any]:
    settings = DistillSettings(
        teacher=teacher, corpus=[data["corpus"]], output_dir=work / "distilbert",
        tokenizer=data["tokenizer"], model_overrides={"num_hidden_layers": 1},
        seq_len=SEQ_LEN, batch_size=BATCH, learning_rate=LEARNING_RATE, warmup_steps=100,
        max_steps=100_000, max_minutes=args.minutes, eval_fraction=0.02,
        eval_max_examples=256, seed=args.seed, device="cpu", progress=False)
    return summarize_run(distill(settings))


def summarize_run(result: Any) -> dict[str, Any]:
    final = result.eval or {}
    return {"model_dir": result.model_dir or result.output_dir, "steps": result.step,
            "sequences": result.step * BATCH, "eval": final}


def finetune_one(name: str, model_dir: Path, data: dict[str, Any], work: Path,
                 args: argparse.Namespace) -> dict[str, Any]:
    """Fine-tune once per ``--finetune-seeds`` seed (fresh head, batch order); the medians
    are what the table compares, the per-seed scores show the spread."""
    scores: dict[str, list[float]] = {"accuracy": [], "macro_f1": []}
    for seed in args.finetune_seeds:
        result = finetune_classifier(
            model_dir, TRAIN_FILE, TEST_FILE, work / f"finetune-{name}-{seed}",
            text_column="Text", label_column="Category", train_examples=data["train"],
            eval_examples=data["test"],
            config=FinetuneConfig(max_steps=args.finetune_steps, learning_rate=5e-4,
                                  batch_size=BATCH, max_length=SEQ_LEN, seed=seed,
                                  device="cpu"))
        for key, values in scores.items():
            values.append(result.metrics[key])
    return {**{key: statistics.median(values) for key, values in scores.items()},
            "per_seed": scores}


def speed(teacher: Path, student: Path, texts: list[str], reps: int) -> tuple[float, str]:
    """Teacher / student forward time on ``texts`` (batches of 32, inference mode)."""
    tokenizer = Tokenizer.from_pretrained(teacher)
    models = {"teacher": BertModel.from_pretrained(teacher).prepare_for_inference(),
              "student": DistilBertModel.from_pretrained(student).prepare_for_inference()}
    batches = [tokenizer(texts[i:i + 32], truncation=True, max_length=SEQ_LEN, padding=True,
                         return_tensors="pt") for i in range(0, len(texts), 32)]

    def runner(model: torch.nn.Module):
        def run() -> None:
            with torch.inference_mode():
                for batch in batches:
                    model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return run

    samples, _ = interleaved({name: runner(m) for name, m in models.items()}, reps)
    teacher_s, student_s = (statistics.median(samples[n]) for n in ("teacher", "student"))
    return teacher_s / student_s, (f"teacher {1e3 * teacher_s:.0f} ms, student "
                                   f"{1e3 * student_s:.0f} ms per pass over {len(texts)} texts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=4.0, help="pretraining budget per run")
    parser.add_argument("--finetune-steps", type=int, default=150)
    parser.add_argument("--train-n", type=int, default=2400, help="R8 training slice")
    parser.add_argument("--test-n", type=int, default=400, help="R8 test slice")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--objectives", default=",".join(OBJECTIVES))
    parser.add_argument("--seed", type=int, default=0, help="pretraining seed")
    parser.add_argument("--finetune-seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="fine-tuning seeds per model (the table shows medians)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--work", type=Path, default=None, help="keep the runs in this folder")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    args = parser.parse_args()
    logging.getLogger("bertkit").setLevel(logging.ERROR)  # fresh heads are expected here
    if args.threads:
        torch.set_num_threads(args.threads)
    started, ticks = time.perf_counter(), cpu_ticks()
    with tempfile.TemporaryDirectory(prefix="bertkit_families_") as tmp:
        work = args.work or Path(tmp)
        data = prepare(work, args.vocab_size, args.train_n, args.test_n)
        print(f"# bertkit family comparison: {args.minutes:g} min of pretraining per run, "
              f"{data['documents']:,} Reuters R52 documents ({data['words']:,} words), "
              f"R8 {len(data['train'])} train / {len(data['test'])} test, "
              f"{args.finetune_steps} fine-tuning steps, torch threads "
              f"{torch.get_num_threads()}, seed {args.seed}\n")
        runs: dict[str, dict[str, Any]] = {}
        for objective in [o for o in args.objectives.split(",") if o]:
            runs[objective] = pretrain_one(objective, data, work, args)
            print(f"pretrained {objective}: {runs[objective]['steps']} steps", flush=True)
        runs["no pretraining"] = control(data, work, args.seed)
        if "bert" in runs:
            runs["distilbert"] = distill_one(runs["bert"]["model_dir"], data, work, args)
            print(f"distilled: {runs['distilbert']['steps']} steps", flush=True)
        for name, run in runs.items():
            run["finetune"] = finetune_one(name, run["model_dir"], data, work, args)
            print(f"fine-tuned {name}: {run['finetune']}", flush=True)
        if "distilbert" in runs:
            texts = [example.text for example in data["test"]][:128]
            ratio, detail = speed(runs["bert"]["model_dir"], runs["distilbert"]["model_dir"],
                                  texts, reps=5)
            runs["distilbert"]["speedup"] = ratio
        rows = []
        for name, run in runs.items():
            final = run["eval"]
            pretraining = "" if not final else (
                f"MLM {final['mlm_accuracy']:.3f} (unigram {final['unigram_baseline']:.3f})")
            for key, label in (("nsp_accuracy", "NSP"), ("sop_accuracy", "SOP"),
                               ("rtd_accuracy", "RTD")):
                if key in final:
                    pretraining += f", {label} {final[key]:.3f}"
            if "rtd_baseline" in final:
                pretraining += f" (all-original {final['rtd_baseline']:.3f})"
            scores = run["finetune"]
            rows.append([name, f"{run['steps']:,}", f"{run['sequences']:,}", pretraining,
                         f"{scores['accuracy']:.3f}", f"{scores['macro_f1']:.3f}",
                         " / ".join(f"{a:.3f}" for a in scores["per_seed"]["accuracy"])])
        table(["model", "steps", "sequences", "held-out pretraining metrics",
               "R8 accuracy (median)", "R8 macro-F1 (median)", "accuracy per seed"], rows)
        if "distilbert" in runs:
            print(f"\nDistilBERT student (1 layer) vs its BERT teacher (2 layers): "
                  f"{runs['distilbert']['speedup']:.2f}x faster forward ({detail}).")
        print(f"\nELECTRA's MLM figures are its generator's. Total "
              f"{time.perf_counter() - started:.0f} s. {load_note(ticks)}")
        if args.json:
            args.json.write_text(json.dumps(runs, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
