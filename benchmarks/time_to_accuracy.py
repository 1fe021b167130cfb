#!/usr/bin/env python
"""Time to accuracy: held-out MLM accuracy against wall time, bertkit's pretraining recipes
against the ``transformers`` reference recipe, same CPU, same tokenised corpus, same shape.

Data: the demo's corpus (Reuters R52 training split, cached by ``bertkit demo``), one WordPiece
vocabulary trained on it, documents packed into full ``--seq-len`` sequences by bertkit; 2 % of
the documents (evenly spaced) are held out, packed and masked once with a fixed seed. Every
recipe is scored on those same held-out sequences — except the ``bertkit-nsp`` recipe's
curve, which is its own held-out NSP pairs of the same documents (its final model is also
scored on the common set: the ``common`` column).

Recipes (``--recipes``, comma-separated):

- ``bertkit``: the demo's default — MLM only on packed sequences (no NSP), dynamic masking,
  dropout off, masked-only decoding, peak LR ``--lr`` after a 10 % linear warmup, linear decay.
- ``bertkit-nsp``: the previous default, MLM + NSP on sentence-pair shards.
- ``bertkit-zerobias``, ``bertkit-nsp-zerobias``: the two above with the masked-LM output bias
  started at zero (BERT's and ``transformers``' init) instead of at the training targets' log
  frequencies (``mlm_bias_init="unigram"``, bertkit's default).
- ``bertkit-lr2x``: ``bertkit`` with twice the peak learning rate.
- ``bertkit-b2x``: ``bertkit`` with twice the batch, through 2-step gradient accumulation.
- ``bertkit-dropout``: ``bertkit`` with BERT's dropout (0.1 on hidden states and attention).
- ``bertkit-hilr``: ``bertkit`` with three times the peak learning rate after a 2 % warmup.
- ``bertkit-preln``: ``bertkit`` with pre-LN blocks and a final LayerNorm (``pre_layer_norm``).
- ``bertkit-preln-lr2x``: ``bertkit-preln`` with twice the peak learning rate.
- ``bertkit-preln-hilr``: ``bertkit-preln`` with three times the peak learning rate after a
  2 % warmup (what pre-LN is meant to allow); ``bertkit-nsp-preln-hilr``: the same on MLM + NSP.
- ``transformers``: ``BertForMaskedLM`` + ``DataCollatorForLanguageModeling`` (15 %, 80/10/10) +
  ``Trainer`` with its documented defaults (dropout 0.1, AdamW, weight decay 0, linear decay,
  logits at every position) on the same packed sequences; the learning rate and warmup are
  bertkit's (the Trainer's default 5e-5 learns nothing in a few hundred steps).

Accuracy counts the masked targets the model ranks first; ``content`` is the accuracy on
targets outside the training data's 100 most frequent tokens. Runs are step-matched (same
``--steps``, batch, sequence length) and run one after the other; the wall time of each point
includes its evaluations. The machine is shared: the load is printed with the table, and
per-step times move with it — compare accuracies at equal steps, and times only as ratios
taken in the same run.

Usage (repository root, project virtualenv)::

    .venv/bin/python benchmarks/time_to_accuracy.py --steps 300 --plot tta.png
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchtools import cpu_ticks, load_note, table
from bertkit.data.corpus import expand_sources
from bertkit.demo.data_steps import CORPUS_SOURCE
from bertkit.resources.artifacts import cache_root
from bertkit.resources.corpora import build_corpus
from bertkit.runs.pretrain import PretrainSettings, load_tokenizer, masking_config, pretrain
from bertkit.runs.pretrain_data import content_table, dynamic_data, token_counts
from bertkit.tokenization import train_wordpiece

RECIPES: dict[str, dict[str, Any]] = {
    "bertkit": {},
    "bertkit-nsp": {"regime": "bert"},
    "bertkit-zerobias": {"bias": "zeros"},
    "bertkit-nsp-zerobias": {"regime": "bert", "bias": "zeros"},
    "bertkit-lr2x": {"lr": 2},
    "bertkit-b2x": {"accum": 2},
    "bertkit-dropout": {"dropout": 0.1},
    "bertkit-hilr": {"lr": 3, "warmup": 50},
    "bertkit-preln": {"pre_ln": True},
    "bertkit-preln-lr2x": {"pre_ln": True, "lr": 2},
    "bertkit-preln-hilr": {"pre_ln": True, "lr": 3, "warmup": 50},
    "bertkit-nsp-preln-hilr": {"regime": "bert", "pre_ln": True, "lr": 3, "warmup": 50},
    "transformers": {},
}
"""Each recipe's changes to ``bertkit``: peak-lr factor, warmup as 1/``warmup`` of the steps
(default 1/10), dropout, pre-LN blocks, gradient-accumulation steps, regime, MLM bias init."""


def settings_for(args: argparse.Namespace, corpus: Path, tokenizer: Path, out: Path,
                 recipe: str) -> PretrainSettings:
    change = RECIPES[recipe]
    dropout = change.get("dropout", 0.0)
    return PretrainSettings(
        corpus=[corpus], output_dir=out, tokenizer=tokenizer, preset="bert_tiny",
        model_overrides={"num_hidden_layers": args.layers, "hidden_size": args.hidden,
                         "num_attention_heads": args.heads,
                         "intermediate_size": 4 * args.hidden,
                         "hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout,
                         "pre_layer_norm": change.get("pre_ln", False)},
        regime=change.get("regime", "roberta"), mlm_bias_init=change.get("bias", "unigram"),
        seq_len=args.seq_len,
        batch_size=args.batch, grad_accum_steps=change.get("accum", 1),
        dupe_factor=3, eval_fraction=0.02, eval_max_examples=256,
        learning_rate=args.lr * change.get("lr", 1),
        warmup_steps=max(1, args.steps // change.get("warmup", 10)), max_steps=args.steps,
        eval_every=args.steps // args.points, log_every=args.steps // args.points,
        seed=args.seed, device="cpu", progress=False, threads=args.threads)


def score(logits_of: Callable[[Any], torch.Tensor], batches: list[Any],
          content: torch.Tensor) -> tuple[float, float]:
    """(accuracy, content accuracy) over the masked targets of ``batches``."""
    right = count = content_right = content_count = 0
    with torch.no_grad():
        for batch in batches:
            where = batch.mlm_labels != -100
            targets = batch.mlm_labels[where]
            hits = logits_of(batch)[where].argmax(-1) == targets
            is_content = content[targets]
            right += int(hits.sum())
            count += targets.numel()
            content_right += int((hits & is_content).sum())
            content_count += int(is_content.sum())
    return right / count, content_right / max(content_count, 1)


def run_bertkit(settings: PretrainSettings, common: list[Any], content: torch.Tensor
                ) -> dict[str, Any]:
    from bertkit.model.pretrained import BertForPreTraining, RobertaForMaskedLM

    started, cpu = time.monotonic(), time.process_time()
    result = pretrain(settings)
    wall, cpu = time.monotonic() - started, time.process_time() - cpu
    records = [json.loads(line) for line in
               (Path(settings.output_dir) / "metrics.jsonl").read_text().splitlines()]
    elapsed = {r["step"]: r["elapsed_s"] for r in records if r.get("kind") == "train"}
    points = [{"step": h["step"], "seconds": elapsed.get(h["step"], wall),
               "accuracy": h["mlm_accuracy"], "content": h.get("content_accuracy")}
              for h in result.history]
    if settings.regime == "roberta":  # packed MLM saves a RobertaForMaskedLM
        masked_lm = RobertaForMaskedLM.from_pretrained(settings.output_dir).eval()
        final = score(lambda b: masked_lm(b.input_ids, b.attention_mask).logits, common,
                      content)
    else:
        model = BertForPreTraining.from_pretrained(settings.output_dir).eval()
        final = score(lambda b: model(b.input_ids, b.attention_mask).prediction_logits,
                      common, content)
    return {"points": points, "common": final, "wall": wall, "cpu": cpu}


def run_transformers(args: argparse.Namespace, tokenizer_dir: Path, train: list[Any],
                     common: list[Any], content: torch.Tensor, out: Path) -> dict[str, Any]:
    import transformers
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        DataCollatorForLanguageModeling,
        PreTrainedTokenizerFast,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_dir / "tokenizer.json"), unk_token="[UNK]",
        pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=args.hidden,
                        num_hidden_layers=args.layers, num_attention_heads=args.heads,
                        intermediate_size=4 * args.hidden, max_position_embeddings=512)
    torch.manual_seed(args.seed)
    model = BertForMaskedLM(config)
    dataset = [{"input_ids": seq.tolist()} for seq in train]
    every = args.steps // args.points
    points: list[dict[str, Any]] = []
    started, cpu = time.monotonic(), time.process_time()

    class Evaluate(TrainerCallback):
        def on_step_end(self, _args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step % every == 0:
                net = kw["model"]
                net.eval()
                accuracy, content_accuracy = score(
                    lambda b: net(input_ids=b.input_ids, attention_mask=b.attention_mask).logits,
                    common, content)
                net.train()
                points.append({"step": state.global_step,
                               "seconds": time.monotonic() - started,
                               "accuracy": accuracy, "content": content_accuracy})

    training = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=args.batch, max_steps=args.steps,
        learning_rate=args.lr, warmup_steps=max(1, args.steps // 10), save_strategy="no",
        report_to=[], use_cpu=True, seed=args.seed, disable_tqdm=True, logging_strategy="no",
        dataloader_num_workers=0)
    trainer = Trainer(model=model, args=training, train_dataset=dataset,
                      data_collator=DataCollatorForLanguageModeling(tokenizer,
                                                                    mlm_probability=0.15),
                      callbacks=[Evaluate()])
    trainer.train()
    wall, cpu = time.monotonic() - started, time.process_time() - cpu
    model.eval()
    final = score(lambda b: model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits,
                  common, content)
    return {"points": points, "common": final, "wall": wall, "cpu": cpu}


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for name, run in results.items():
        seconds = [p["seconds"] for p in run["points"]]
        axes[0].plot(seconds, [p["accuracy"] for p in run["points"]], "o-", label=name)
        axes[1].plot(seconds, [p["content"] for p in run["points"]], "o-", label=name)
    axes[0].set(title="held-out MLM accuracy", xlabel="wall seconds (shared CPU)")
    axes[1].set(title="held-out MLM accuracy, content tokens", xlabel="wall seconds")
    axes[0].legend()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", default="bertkit,bertkit-nsp,transformers")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--points", type=int, default=3, help="evaluations per run")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0,
                        help="model init and masking (the held-out documents stay the same)")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    recipes = args.recipes.split(",")
    unknown = sorted(set(recipes) - set(RECIPES))
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; known: {', '.join(RECIPES)}")
    torch.set_num_threads(args.threads)
    corpus = Path(build_corpus(cache_root() / "demo" / f"{CORPUS_SOURCE}.txt",
                               sources=(CORPUS_SOURCE,)).path)
    work = Path(tempfile.mkdtemp(prefix="tta-"))
    tokenizer_dir = work / "tokenizer"
    train_wordpiece(corpus, vocab_size=args.vocab).save_pretrained(tokenizer_dir)
    tokenizer = load_tokenizer(tokenizer_dir)
    common_settings = settings_for(args, corpus, tokenizer_dir, work / "common", "bertkit")
    data = dynamic_data(common_settings, expand_sources([corpus]), tokenizer,
                        masking_config(common_settings, tokenizer), None, str(corpus))
    content = content_table(token_counts(data.train), tokenizer)
    ticks = cpu_ticks()
    results: dict[str, dict[str, Any]] = {}
    for recipe in recipes:
        if recipe == "transformers":
            results[recipe] = run_transformers(args, tokenizer_dir, data.train,
                                               data.eval_batches, content, work / recipe)
        else:
            results[recipe] = run_bertkit(
                settings_for(args, corpus, tokenizer_dir, work / recipe, recipe),
                data.eval_batches, content)
        print(f"{recipe}: {results[recipe]['points'][-1]}", flush=True)
    print(f"\n{args.layers} layers × hidden {args.hidden}, vocab {args.vocab}, batch "
          f"{args.batch} × {args.seq_len}, {args.steps} steps, {args.threads} thread(s); "
          f"{sum(b.mlm_labels.ne(-100).sum().item() for b in data.eval_batches):,} held-out "
          f"masked targets; load: {load_note(ticks)}; loadavg {os.getloadavg()}\n")
    rows = []
    for name, run in results.items():
        per_step, cpu_step = run["wall"] / args.steps, run["cpu"] / args.steps
        for point in run["points"]:
            rows.append([name, str(point["step"]), f"{point['seconds']:.0f}",
                         f"{per_step:.3f}", f"{cpu_step:.3f}", f"{point['accuracy']:.3f}",
                         f"{point['content']:.3f}" if point["content"] is not None else "–",
                         ""])
        rows[-1][-1] = f"{run['common'][0]:.3f} / {run['common'][1]:.3f}"
    table(["recipe", "step", "wall s", "s/step", "CPU s/step", "MLM acc", "content acc",
           "final on common set (acc / content)"], rows)
    if args.plot:
        plot(results, args.plot)
        print(f"\nplot: {args.plot}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"plot": str(args.plot),
                                                               "json": str(args.json)},
                                         "results": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
