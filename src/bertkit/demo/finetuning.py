"""The demo's fine-tuning steps: size one test slice for both models, then fine-tune the small
BERT pretrained here and all-MiniLM-L6-v2 on Reuters R8, each within its share of the time."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bertkit.data.readers import TextExample
from bertkit.demo.budget import MIN_STEP_SECONDS, seconds_per_step
from bertkit.demo.data_steps import ENCODER, TEST_FILE, TRAIN_FILE
from bertkit.demo.pretraining import SEQ_LEN
from bertkit.demo.run import DemoRun
from bertkit.demo.sampling import spread, stratified
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import BertForSequenceClassification
from bertkit.resources.artifacts import fetch
from bertkit.runs.finetune import FinetuneConfig, finetune_classifier
from bertkit.runs.pretrain import load_tokenizer
from bertkit.tasks.classification import classification_features

FINETUNE_LENGTH, FINETUNE_BATCH = SEQ_LEN, 16  # = SEQ_LEN: no position the pretraining never saw
EVAL_SHARE = 0.2  # of the fine-tuning time, for scoring the test slice
FINETUNE_LR = {"small": 5e-4, "minilm": 2e-4}


def choose_test_slice(run: DemoRun) -> str:
    """Time a fine-tuning step of both models; size the test slice (the same for both) so
    that scoring it takes EVAL_SHARE of the fine-tuning time, counting a window's inference
    as a third of its training step (forward vs forward + backward); note the majority-class
    baseline on the slice."""
    test, labels = run.test, len({e.label for e in run.train})
    step_s = {name: _finetune_step_seconds(path, labels) for name, path in _models(run)}
    per_window = {name: seconds / 3 / FINETUNE_BATCH for name, seconds in step_s.items()}
    windows = _windows_per_example(load_tokenizer(run.out / "pretrain"), spread(test, 200))
    budget = EVAL_SHARE * run.clock.allot("finetune-small", "finetune-minilm")
    count = int(min(len(test), max(40, budget / (sum(per_window.values()) * windows))))
    run.test = spread(test, count)
    majority, hits = Counter(e.label for e in run.test).most_common(1)[0]
    seen = {e.text for e in run.train}
    run.summary["test"] = {"examples": count, "of": len(test),
                           "also_in_train": sum(e.text in seen for e in run.test),
                           "windows_per_example": round(windows, 3),
                           "seconds_per_step": step_s, "seconds_per_window": per_window,
                           "majority_label": majority,
                           "majority_accuracy": hits / count}
    return (f"{count:,} of {len(test):,} R8 test documents (evenly spaced); majority class "
            f"{majority!r} = {hits / count:.3f}")


def finetune_model(run: DemoRun, name: str, label: str) -> str:
    """Fine-tune one model for one pass over as much of the training split as its share of
    the time allows (after its test-slice scoring time), then score the test slice once."""
    train, test, model_dir = run.train, run.test, dict(_models(run))[name]
    scoring = run.summary["test"]
    step_s = scoring["seconds_per_step"][name]
    budget = max(MIN_STEP_SECONDS, run.clock.allot(f"finetune-{name}"))
    eval_s = scoring["seconds_per_window"][name] * len(test) * scoring["windows_per_example"]
    train_s = max(MIN_STEP_SECONDS, budget - eval_s)
    windows = _windows_per_example(load_tokenizer(model_dir), spread(train, 300))
    # Twice what the timing says fits: the time budget stops the pass, and a timing taken at a
    # busy moment must not leave most of the budget unused (as planning too few steps would).
    count = max(16, int(2 * train_s / step_s * FINETUNE_BATCH / windows))
    subset = stratified(train, count)
    run.subsets[name] = subset
    out = run.out / f"finetune-{name}"
    result = finetune_classifier(
        model_dir, TRAIN_FILE, TEST_FILE, out, text_column="Text", label_column="Category",
        train_examples=subset, eval_examples=test,
        config=FinetuneConfig(epochs=1, learning_rate=FINETUNE_LR[name],
                              batch_size=FINETUNE_BATCH, max_length=FINETUNE_LENGTH,
                              **{**run.settings.run_options(), "max_minutes": train_s / 60}))
    metrics = result.metrics
    planned = result.history[-1]["step"] if result.history else len(result.train_losses)
    run.summary["finetune"][name] = {
        "model": label, "model_dir": str(model_dir), "train_examples": len(subset),
        "learning_rate": FINETUNE_LR[name], "budget_seconds": round(budget, 1),
        "planned_steps": planned, "steps": len(result.train_losses),
        "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
        "mcc": metrics["mcc"], "labels": metrics["labels"],
        "confusion_matrix": metrics["confusion_matrix"], "train_losses": result.train_losses,
    }
    return (f"{label}: {len(result.train_losses)}/{planned} steps on {len(subset):,} training "
            f"documents; test accuracy {metrics['accuracy']:.3f}, macro-F1 "
            f"{metrics['macro_f1']:.3f}")


def finetune_small(run: DemoRun) -> str:
    return finetune_model(run, "small", "small BERT (pretrained here)")


def finetune_minilm(run: DemoRun) -> str:
    return finetune_model(run, "minilm", "all-MiniLM-L6-v2")


def _models(run: DemoRun) -> list[tuple[str, Path]]:
    return [("small", run.out / "pretrain"), ("minilm", fetch(ENCODER, quiet=True))]


def _windows_per_example(tokenizer: Any, examples: Sequence[TextExample]) -> float:
    """Mean number of fine-tuning windows per document (long documents are windowed)."""
    features = classification_features(tokenizer, examples, max_length=FINETUNE_LENGTH)
    return len(features) / max(1, len(examples))


def _finetune_step_seconds(model_dir: Path, num_labels: int) -> float:
    """Time of one fine-tuning step (FINETUNE_BATCH windows of FINETUNE_LENGTH tokens) of a
    randomly initialised classifier of the model's shape."""
    config = dataclasses.replace(BertConfig.from_pretrained(model_dir), num_labels=num_labels,
                                 id2label=None, label2id=None)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, config.vocab_size, (FINETUNE_BATCH, FINETUNE_LENGTH),
                        generator=generator)
    labels = torch.randint(0, num_labels, (FINETUNE_BATCH,), generator=generator)
    return seconds_per_step(BertForSequenceClassification(config),
                            lambda m: m(input_ids=ids, labels=labels).loss, repeats=1)
