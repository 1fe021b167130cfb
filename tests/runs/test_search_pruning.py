"""``search_finetune``'s own logic with a stand-in runner (no model trained): the median
pruner stops a trial whose dev score falls below the earlier trials' median at an epoch, the
pruned trial's weights are gone, and the kept run is the best complete trial's."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from bertkit._fileio import write_json
from bertkit.runs.finetune import EPOCH_REPORT, FinetuneConfig, FinetuneResult
from bertkit.runs.search import SearchSpace, search_finetune

pytest.importorskip("optuna", reason="optuna not installed (pip install 'bertkit[search]')")
EPOCHS = 3


def runner(config: FinetuneConfig, out: Path) -> FinetuneResult:
    """A "run" whose dev accuracy is a fixed function of its learning rate, reported after
    each epoch as the real runner does; it writes a run directory like one."""
    out.mkdir(parents=True)
    save_file({"weight": torch.zeros(2)}, str(out / "model.safetensors"))
    write_json(out / "run_config.json", {"task": "classify"})
    score = min(1.0, config.learning_rate * 2000)    # higher learning rate, better here
    report = EPOCH_REPORT.get()
    assert report is not None, "the search must watch every epoch"
    for epoch in range(1, EPOCHS + 1):
        report(epoch, score)
    return FinetuneResult(out, EPOCHS, "accuracy", {"accuracy": score})


def test_median_pruner_stops_poor_trials_and_the_best_complete_one_is_kept(tmp_path):
    space = SearchSpace(learning_rate=(1e-5, 5e-4), epochs=(EPOCHS, EPOCHS))
    found = search_finetune(runner, FinetuneConfig(), tmp_path / "out", trials=10,
                            space=space)
    states = {t["trial"]: t["state"] for t in found.trials}
    records = json.loads((tmp_path / "out" / "search.json").read_text())["trials"]
    complete = [t for t in records if t["state"] == "complete"]
    pruned = [t for t in records if t["state"] == "pruned"]
    assert pruned, states
    # Each pruned trial scored below the median of the complete trials before it at epoch 1,
    # and stopped there; no complete trial after the first two did.
    for trial in pruned:
        earlier = [t["dev_by_epoch"]["1"] for t in complete if t["trial"] < trial["trial"]]
        assert len(earlier) >= 2 and trial["dev_by_epoch"]["1"] < statistics.median(earlier)
        assert list(trial["dev_by_epoch"]) == ["1"]
    for trial in complete:
        earlier = [t["dev_by_epoch"]["1"] for t in complete if t["trial"] < trial["trial"]]
        assert len(earlier) < 2 or trial["dev_by_epoch"]["1"] >= statistics.median(earlier)
    best = max(complete, key=lambda t: t["dev_accuracy"])
    assert found.best_trial == best["trial"]
    assert found.best.metrics["accuracy"] == best["dev_accuracy"]
    assert list((tmp_path / "out").rglob("*.safetensors")) == [
        tmp_path / "out" / "model.safetensors"]


def test_without_pruning_every_trial_completes(tmp_path):
    found = search_finetune(runner, FinetuneConfig(), tmp_path / "out", trials=4,
                            space=SearchSpace(epochs=(EPOCHS, EPOCHS)), prune=False)
    assert [t["state"] for t in found.trials] == ["complete"] * 4
