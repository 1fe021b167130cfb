"""Same start, same batches: does a bertkit fine-tuning run follow transformers' step by step?

``finetune_compare.py`` compares the two sides as a user would run them: each side initialises
its own new head and shuffles its own way, so seeds differ in effect. This script removes those
sources of difference to test the recipe itself:

* bertkit builds the classifier (encoder + freshly initialised head, seeded), saves it as a
  Hugging Face folder, and BOTH sides start from that folder: identical initial weights;
* the transformers loop takes its batches in bertkit's order (``ResumableLoader.epoch_order``);
* ``--dropout off`` zeroes every dropout in the saved config, so a step is deterministic.

The reference loop then runs once per ``--schedules`` entry: ``transformers``
(``get_linear_schedule_with_warmup``: the first update at lr 0) and ``bertkit`` (its
:func:`~bertkit.training.schedule.lr_factor`: the first update at lr/warmup). With dropout off
and the same schedule, the per-step losses must agree to float rounding; any other gap is a
difference in the recipe.

    nice -n 10 python benchmarks/finetune_parity.py reuters --train-n 1000 --test-n 1000 \
        --epochs 2 --seeds 0 --dropout off --threads 1
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

from benchtools import table
from bertkit.data.readers import LabelMap
from bertkit.model.pretrained import BertForSequenceClassification, BertForTokenClassification
from bertkit.tokenization import Tokenizer
from bertkit.training import ResumableLoader
from bertkit.training.rng import seed_everything
from bertkit.training.schedule import WarmupDecay
from finetune_compare import (
    KEY_METRICS,
    build_parser,
    linear_warmup,
    load_task,
    run_bertkit,
    run_transformers,
)

SCHEDULES = {"transformers": linear_warmup,
             "bertkit": lambda warmup, total: WarmupDecay("linear", warmup, total)}


def shared_start(kind: str, train: list, model: Path, seed: int, dropout: bool) -> Path:
    """The seeded bertkit model a run would start from, saved where both sides can load it."""
    labels = LabelMap.from_examples(train) if kind == "classify" else \
        LabelMap.from_sentences(train)
    overrides: dict = {"num_labels": len(labels), "id2label": labels.id2label,
                       "label2id": labels.label2id}
    if not dropout:
        overrides |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    cls = BertForSequenceClassification if kind == "classify" else BertForTokenClassification
    seed_everything(seed)
    net = cls.from_pretrained(model, **overrides)
    folder = Path(tempfile.mkdtemp()) / "start"
    net.save_pretrained(folder)
    Tokenizer.from_pretrained(model).save_pretrained(folder)
    return folder


def main() -> None:
    p = build_parser(__doc__.splitlines()[0])
    p.add_argument("--dropout", choices=("on", "off"), default="off")
    p.add_argument("--schedules", nargs="+", choices=sorted(SCHEDULES),
                   default=["transformers", "bertkit"])
    p.add_argument("--show-steps", type=int, default=6, help="per-step losses printed")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    kind, train, test, model = load_task(args)
    for seed in args.seeds:
        start = shared_start(kind, train, model, seed, args.dropout == "on")
        order = ResumableLoader(range(len(train)), args.batch_size, shuffle=True, seed=seed,
                                drop_last=False).epoch_order
        runs = {"bertkit": run_bertkit(kind, train, test, start, args, seed)}
        for name in args.schedules:
            runs[f"transformers, {name} schedule"] = run_transformers(
                kind, train, test, start, args, seed, order=order, schedule=SCHEDULES[name])
        for name, run in runs.items():
            print(json.dumps({"task": args.task, "seed": seed, "dropout": args.dropout,
                              "run": name, **run.metrics, "steps": len(run.losses)}), flush=True)
        reference = runs["bertkit"].losses
        headers = ["run", *(f"loss {i + 1}" for i in range(args.show_steps)),
                   "max |Δloss| vs bertkit", "mean |Δloss|", *KEY_METRICS[kind]]
        rows = []
        for name, run in runs.items():
            gaps = [abs(a - b) for a, b in zip(run.losses, reference, strict=True)]
            rows.append([name, *(f"{x:.5f}" for x in run.losses[:args.show_steps]),
                         f"{max(gaps):.2e}", f"{sum(gaps) / len(gaps):.2e}",
                         *(f"{run.metrics[k]:.4f}" for k in KEY_METRICS[kind])])
        print(f"\nseed {seed}, dropout {args.dropout}, {len(train)} train / {len(test)} test\n")
        table(headers, rows)


if __name__ == "__main__":
    main()
