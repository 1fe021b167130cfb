#!/usr/bin/env python
"""Does ELECTRA's discriminator learn? Replaced-token detection (RTD) accuracy and ROC AUC on
held-out text over a fixed number of steps, against the trivial all-original rate.

Data: the demo's corpus (Reuters R52 training split, fetched and cached by bertkit), its first
``--docs`` documents, a WordPiece vocabulary of ``--vocab`` pieces trained on them; bertkit's
ELECTRA regime packs the documents into ``--seq-len`` sequences, masks 15 % (85 % ``[MASK]``,
15 % kept) and holds 5 % of the documents out, masked once with a fixed seed.

Every run is ``bertkit.runs.pretrain.pretrain`` with ``regime="electra"`` — the library's
generator (``--generator-size`` × the discriminator's width, tied embeddings, samples at
temperature 1 under ``no_grad``) and discriminator (λ = ``--rtd-weight``), evaluated every
``--eval-every`` steps. ``--variants`` runs several recipes on the same data and steps, one
after the other; the table shows every evaluation of each. Steps are fixed, so the accuracies
do not depend on the machine's load; the CPU seconds per step (this process's, not wall time)
are reported separately.

What the columns mean: ``acc`` is the discriminator's accuracy at logit 0, ``all-orig`` the
accuracy of answering "original" everywhere (1 − the replaced share), ``AUC`` the chance that a
replaced token scores above an original one (0.5 = no skill), ``gen MLM`` the generator's
held-out MLM accuracy.

Usage (repository root, project virtualenv)::

    nice -n 10 .venv/bin/python benchmarks/electra_learning.py --steps 600 --eval-every 100
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchtools import cpu_ticks, load_note, table
from bertkit.demo.data_steps import CORPUS_SOURCE
from bertkit.demo.sampling import first_documents
from bertkit.resources.artifacts import cache_root
from bertkit.resources.corpora import build_corpus
from bertkit.runs.pretrain import PretrainSettings, pretrain
from bertkit.tokenization import train_wordpiece

#: name → what the recipe changes (settings of PretrainSettings, or model overrides under
#: "model"); "paper" is the library's default, which follows Clark et al. 2020.
VARIANTS: dict[str, dict[str, Any]] = {
    "paper": {},
    "lambda-1": {"rtd_weight": 1.0},
    "generator-1/2": {"generator_size": 0.5},
    "lr/3": {"lr_scale": 1 / 3},
    "no-warmup": {"warmup_steps": 0},
}


def prepare(work: Path, docs: int, vocab: int) -> tuple[Path, Path]:
    corpus = build_corpus(cache_root() / "demo" / f"{CORPUS_SOURCE}.txt",
                          sources=(CORPUS_SOURCE,))
    text = first_documents(Path(corpus.path), docs)
    tokenizer = work / "tokenizer"
    train_wordpiece(text, vocab_size=vocab).save_pretrained(tokenizer)
    return text, tokenizer


def run(name: str, corpus: Path, tokenizer: Path, work: Path,
        args: argparse.Namespace) -> tuple[list[dict[str, float]], float]:
    changes = dict(VARIANTS[name])
    lr = args.lr * changes.pop("lr_scale", 1.0)
    shape = {"num_hidden_layers": args.layers, "hidden_size": args.hidden,
             "num_attention_heads": args.heads, "intermediate_size": 4 * args.hidden,
             "embedding_size": args.hidden, "max_position_embeddings": args.seq_len,
             "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    settings = PretrainSettings(
        corpus=[corpus], output_dir=work / name.replace("/", "_"), tokenizer=tokenizer,
        preset="electra_small_discriminator", model_overrides=shape, regime="electra",
        rtd_weight=args.rtd_weight, generator_size=args.generator_size,
        seq_len=args.seq_len, batch_size=args.batch, learning_rate=lr,
        warmup_steps=args.warmup, max_steps=args.steps, eval_every=args.eval_every,
        eval_fraction=0.05, eval_max_examples=args.eval_max, seed=args.seed, threads=1,
        device="cpu", progress=False, log_every=max(1, args.steps))
    for key, value in changes.items():
        setattr(settings, key, value)
    started = time.process_time()
    result = pretrain(settings)
    return result.history, (time.process_time() - started) / max(1, result.step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="paper",
                        help=f"comma-separated, of {', '.join(VARIANTS)} (default %(default)s)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--docs", type=int, default=392, help="corpus documents used")
    parser.add_argument("--vocab", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--rtd-weight", type=float, default=50.0)
    parser.add_argument("--generator-size", type=float, default=0.25)
    parser.add_argument("--eval-max", type=int, default=128, help="held-out sequences")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    since = cpu_ticks()
    rows, speed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus, tokenizer = prepare(work, args.docs, args.vocab)
        for name in names:
            history, cpu_per_step = run(name, corpus, tokenizer, work, args)
            speed.append([name, f"{cpu_per_step * 1e3:.0f}"])
            rows += [[name, str(h["step"]), f"{h['rtd_accuracy']:.4f}", f"{h['rtd_baseline']:.4f}",
                      f"{h['rtd_auc']:.3f}", f"{h['mlm_accuracy']:.3f}"] for h in history]
    print(f"ELECTRA, {args.layers} layers, hidden {args.hidden} (generator "
          f"{args.generator_size:g}×), {args.batch}×{args.seq_len} tokens, lr {args.lr:g}, "
          f"warmup {args.warmup}, λ {args.rtd_weight:g}, {args.docs} documents, vocab "
          f"{args.vocab}, seed {args.seed}")
    table(["variant", "step", "acc", "all-orig", "AUC", "gen MLM"], rows)
    print()
    table(["variant", "CPU ms/step"], speed)
    print(load_note(since))


if __name__ == "__main__":
    main()
