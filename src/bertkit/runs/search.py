"""Hyperparameter search over a fine-tuning run with Optuna (optional extra ``search``): the
library ``transformers``' ``Trainer.hyperparameter_search`` uses, with the same habits.

Each trial is one ordinary fine-tuning run (any task's runner) with sampled learning rate,
batch size, epochs, warmup, weight decay and seed, evaluated after every epoch on the runner's
``eval`` file — the DEV split: the search never sees a test file (score the chosen model on
test afterwards with ``bertkit evaluate``). Every epoch's dev score is reported to Optuna; the
median pruner stops a trial whose score falls below the median of earlier trials at the same
epoch. Sampling is TPE with a fixed seed, so a search is repeatable.

The final model is the best trial's, KEPT (not retrained): a trial is a complete, seeded run
whose best epoch was picked on dev, so retraining the same configuration would reproduce it.
Its run directory becomes ``OUT`` (``bertkit predict --model OUT`` works as after a plain
run), beside ``search.json``: every trial's parameters, state (complete / pruned) and dev
score, the best trial and the statement ``"final_model": "kept best trial"``. The other trials'
weights are deleted as soon as they are beaten; their metrics stay in ``search.json``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bertkit._fileio import write_json
from bertkit.errors import ConfigError, UsageError
from bertkit.runs.finetune import (
    EPOCH_REPORT,
    FinetuneConfig,
    FinetuneResult,
    lower_is_better,
    write_run_manifest,
)
from bertkit.tasks.runfiles import prepare_run_dir

__all__ = ["SEARCH_FILE", "SearchResult", "SearchSpace", "search_finetune"]

logger = logging.getLogger(__name__)

SEARCH_FILE = "search.json"
Runner = Callable[[FinetuneConfig, Path], FinetuneResult]
"""``runner(config, out) → result``: one fine-tuning run (e.g. ``finetune_classifier`` with
its data and model bound)."""


@dataclass(frozen=True)
class SearchSpace:
    """What a trial may pick: learning rate log-uniform in ``learning_rate``, one of
    ``batch_sizes``, an integer number of ``epochs``, ``warmup_ratio`` and ``weight_decay``
    uniform, a seed in ``seeds``. The defaults bracket BERT's fine-tuning recipe."""

    learning_rate: tuple[float, float] = (1e-5, 5e-4)
    batch_sizes: tuple[int, ...] = (8, 16, 32)
    epochs: tuple[int, int] = (1, 4)
    warmup_ratio: tuple[float, float] = (0.0, 0.2)
    weight_decay: tuple[float, float] = (0.0, 0.1)
    seeds: tuple[int, int] = (0, 999)

    def sample(self, trial: Any, base: FinetuneConfig) -> FinetuneConfig:
        """``base`` with the trial's choices (max_steps cleared: epochs decide the length)."""
        return replace(
            base, max_steps=None,
            learning_rate=trial.suggest_float("learning_rate", *self.learning_rate, log=True),
            batch_size=trial.suggest_categorical("batch_size", list(self.batch_sizes)),
            epochs=float(trial.suggest_int("epochs", *self.epochs)),
            warmup_ratio=trial.suggest_float("warmup_ratio", *self.warmup_ratio),
            weight_decay=trial.suggest_float("weight_decay", *self.weight_decay),
            seed=trial.suggest_int("seed", *self.seeds))


@dataclass
class SearchResult:
    """The kept best run and every trial's record (as ``search.json`` holds them)."""

    best: FinetuneResult
    best_trial: int
    best_params: dict[str, Any]
    trials: list[dict[str, Any]]


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise UsageError("--search needs Optuna: pip install 'bertkit[search]'") from None
    return optuna


def search_finetune(runner: Runner, base: FinetuneConfig, out: str | Path, *, trials: int,
                    space: SearchSpace | None = None, seed: int = 0,
                    prune: bool = True) -> SearchResult:
    """Run ``trials`` fine-tuning trials of ``runner`` and keep the best as ``out``.

    ``base`` gives everything not searched (max length, metric, device …); its ``metric``
    (default: the task's, all higher-is-better) is the dev score Optuna optimises.
    """
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"search trials must be an integer >= 1, got {trials!r}")
    optuna = _optuna()
    space = space or SearchSpace()
    out = prepare_run_dir(out)
    scratch = out / ".trials"
    direction = "minimize" if base.metric and lower_is_better(base.metric) else "maximize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction=direction, sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=(optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
                if prune else optuna.pruners.NopPruner()))
    results: dict[int, FinetuneResult] = {}

    def objective(trial: Any) -> float:
        config = space.sample(trial, base).validate()

        def report(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: {value:.4f} below the median")

        token = EPOCH_REPORT.set(report)
        try:
            result = runner(config, scratch / f"trial-{trial.number:03d}")
        finally:
            EPOCH_REPORT.reset(token)
        results[trial.number] = result
        return float(result.metrics[result.metric])

    def forget_beaten(study: Any, trial: Any) -> None:
        """Only the best trial's weights are kept on disk."""
        best = study.best_trial.number if study.best_trials else None
        for number in list(results):
            if number != best:
                shutil.rmtree(results.pop(number).output_dir, ignore_errors=True)
        if trial.state != optuna.trial.TrialState.COMPLETE:
            shutil.rmtree(scratch / f"trial-{trial.number:03d}", ignore_errors=True)

    study.optimize(objective, n_trials=trials, callbacks=[forget_beaten], catch=())
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise UsageError(f"no trial of {trials} completed; nothing to keep")
    best = study.best_trial
    for path in results[best.number].output_dir.iterdir():
        shutil.move(str(path), out / path.name)
    shutil.rmtree(scratch, ignore_errors=True)
    kept = replace(results[best.number], output_dir=out)
    records = [{"trial": t.number, "state": t.state.name.lower(), "params": t.params,
                "dev_" + kept.metric: t.value,
                "dev_by_epoch": {str(k): v for k, v in sorted(t.intermediate_values.items())}}
               for t in study.trials]
    write_json(out / SEARCH_FILE, {
        "trials": records, "best_trial": best.number, "best_params": best.params,
        "metric": kept.metric, "direction": direction, "split": "dev (the --eval file)",
        "final_model": "kept best trial (its run directory is this one; not retrained)",
        "pruner": "median" if prune else "none", "sampler_seed": seed,
        "space": asdict(space)})
    write_run_manifest(out, best.params["seed"])  # search.json is part of the run now
    return SearchResult(kept, best.number, dict(best.params), records)
