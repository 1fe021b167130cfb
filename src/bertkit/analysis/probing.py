"""Probe frozen models layer by layer: task accuracy, control accuracy, selectivity.

For each model (and, by default, a randomly initialised model of the same shape) this
extracts every requested layer's item vectors once (:mod:`bertkit.analysis.extract`, streamed
to float16 memmaps in a scratch folder), then fits two linear probes per layer, one at a time:
on the task's labels and on its control labels (:mod:`bertkit.analysis.control`). Held-out
accuracy of both and their difference, selectivity, make one :class:`LayerScore`. The
majority and most-frequent-label-per-type baselines are computed on the same splits.

Only one layer's training vectors are in memory (as float32) at a time.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertkit.analysis.control import (
    control_labels,
    label_distribution,
    majority_accuracy,
    per_type_accuracy,
)
from bertkit.analysis.extract import (
    Representations,
    all_layers,
    sentence_representations,
    word_representations,
)
from bertkit.analysis.linear_probe import LinearProbe, ProbeSettings
from bertkit.analysis.tasks import WORD, ProbeSplit, ProbeTask, build_task
from bertkit.errors import UsageError
from bertkit.inference.engine import Engine
from bertkit.inference.fastpath import to_fast_form
from bertkit.model.pretrained import BertModel

TRAINED, RANDOM = "trained", "random-init"
DEFAULT_MAX_TRAIN, DEFAULT_MAX_TEST = 3000, 1000


@dataclass(frozen=True)
class LayerScore:
    layer: int
    accuracy: float
    control_accuracy: float

    @property
    def selectivity(self) -> float:
        """Task accuracy minus control accuracy (Hewitt & Liang 2019)."""
        return self.accuracy - self.control_accuracy


@dataclass
class ModelCurve:
    """One model's scores, layer by layer; ``kind`` is ``trained`` or ``random-init``."""

    name: str
    path: str
    kind: str
    scores: list[LayerScore]
    train_items: int
    test_items: int
    skipped_sentences: int
    seconds: float

    def best(self) -> LayerScore:
        return max(self.scores, key=lambda s: s.accuracy)


@dataclass
class ProbeResult:
    """Everything a probe run measured: the table, the JSON file and the plot read this."""

    task: str
    level: str
    pooling: str
    source: str
    label_names: list[str]
    train_items: int
    test_items: int
    baselines: dict[str, float]
    curves: list[ModelCurve] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for curve, data in zip(self.curves, out["curves"], strict=True):
            for score, row in zip(curve.scores, data["scores"], strict=True):
                row["selectivity"] = score.selectivity
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeResult:
        curves = []
        for c in data["curves"]:
            scores = [LayerScore(s["layer"], s["accuracy"], s["control_accuracy"])
                      for s in c["scores"]]
            curves.append(ModelCurve(**{**c, "scores": scores}))
        return cls(**{**data, "curves": curves})


def random_twin(engine: Engine, seed: int = 0) -> Engine:
    """A model of the same configuration with BERT's random initialisation, same tokenizer."""
    config = engine.model.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel.for_family(config.model_type)(config)
        model.init_weights()
    model.to(device=engine.device, dtype=engine.dtype)
    return Engine(to_fast_form(model.eval()), engine.tokenizer, batch_size=engine.batch_size)


def default_pooling(level: str) -> str:
    return "first" if level == WORD else "cls"


def _extract(engine: Engine, task: ProbeTask, split: ProbeSplit, layers: list[int],
             pooling: str, store: Path, progress: bool) -> Representations:
    extract = word_representations if task.level == WORD else sentence_representations
    return extract(engine, split.sentences, layers=layers, pooling=pooling, store=store,
                   progress=progress)


def probe_engine(engine: Engine, task: ProbeTask, *, name: str, path: str = "",
                 kind: str = TRAINED, layers: int | Sequence[int] | None = None,
                 pooling: str | None = None, settings: ProbeSettings | None = None,
                 scratch: str | Path | None = None, control_seed: int = 0,
                 progress: bool = False) -> ModelCurve:
    """Task and control probes on every requested layer of one model."""
    start = time.perf_counter()
    positions = all_layers(engine, layers)
    pooling = pooling or default_pooling(task.level)
    settings = settings or ProbeSettings()
    if settings.device is None:
        settings = dataclasses.replace(settings, device=str(engine.device))
    if scratch is not None:
        Path(scratch).mkdir(parents=True, exist_ok=True)
    distribution = label_distribution(task.train.labels, task.num_classes)
    with tempfile.TemporaryDirectory(prefix="bertkit-probe-", dir=scratch) as folder:
        train = _extract(engine, task, task.train, positions, pooling, Path(folder) / "train",
                         progress)
        test = _extract(engine, task, task.test, positions, pooling, Path(folder) / "test",
                        progress)
        targets = {}
        for split, reps in (("train", train), ("test", test)):
            part: ProbeSplit = getattr(task, split)
            control = control_labels(part.types, distribution, seed=control_seed)
            targets[split] = (part.labels[reps.kept], control[reps.kept])
        if len(np.unique(targets["train"][0])) < 2 or not len(targets["test"][0]):
            raise UsageError(f"{name}: too few items fit the model to probe (sentences longer "
                             f"than {engine.max_length} tokens are skipped)")
        scores = []
        for position in positions:
            x_train = np.asarray(train.layer(position)[train.kept], dtype=np.float32)
            x_test = test.layer(position)[test.kept]
            accuracy = [LinearProbe(task.num_classes, settings)
                        .fit(x_train, targets["train"][which])
                        .accuracy(x_test, targets["test"][which]) for which in (0, 1)]
            scores.append(LayerScore(position, *accuracy))
        skipped = train.skipped_sentences + test.skipped_sentences
        del train, test, x_train, x_test  # close the memmaps before the folder goes
    return ModelCurve(name, path, kind, scores, len(targets["train"][0]),
                      len(targets["test"][0]), skipped, time.perf_counter() - start)


def baselines(task: ProbeTask) -> dict[str, float]:
    """Majority and (word tasks) most-frequent-label-per-word accuracy on the held-out split."""
    out = {"majority": majority_accuracy(task.train.labels, task.test.labels)}
    if task.level == WORD:
        out["per-word"] = per_type_accuracy(task.train.types, task.train.labels,
                                            task.test.types, task.test.labels)
    return out


def probe(models: Sequence[str | Path], task: str | ProbeTask, *,
          layers: int | Sequence[int] | None = None, pooling: str | None = None,
          random_baseline: bool = True, settings: ProbeSettings | None = None,
          max_train: int | None = DEFAULT_MAX_TRAIN, max_test: int | None = DEFAULT_MAX_TEST,
          brown: Path | None = None, text: Path | None = None, data: Path | None = None,
          device: str | None = None, batch_size: int = 32, scratch: str | Path | None = None,
          names: Sequence[str] | None = None, seed: int = 0,
          progress: bool = False) -> ProbeResult:
    """Probe each model directory in ``models`` (and its random twin) on ``task``.

    ``task`` is a name of :data:`bertkit.analysis.tasks.TASKS` (built from ``brown`` /
    ``text`` / ``data`` and capped to ``max_train`` / ``max_test``) or a built
    :class:`ProbeTask`. ``layers`` default to all (0 = embeddings … L); an index out of range
    is an error naming the valid range, raised before any extraction runs.
    """
    if not models:
        raise UsageError("no model to probe: pass at least one model directory")
    engines = [Engine.from_pretrained(m, device=device, batch_size=batch_size) for m in models]
    for engine in engines:
        all_layers(engine, layers)
    if isinstance(task, str):
        task = build_task(task, brown=brown, text=text, data=data, max_train=max_train,
                          max_test=max_test)
    pooling = pooling or default_pooling(task.level)
    labels = list(names) if names is not None else [Path(m).name for m in models]
    if len(labels) != len(engines):
        raise UsageError(f"{len(labels)} names for {len(engines)} models")
    result = ProbeResult(task.name, task.level, pooling, task.source, task.label_names,
                         len(task.train.labels), len(task.test.labels), baselines(task),
                         settings=asdict(settings or ProbeSettings()) | {"seed": seed})
    common = dict(layers=layers, pooling=pooling, settings=settings, scratch=scratch,
                  control_seed=seed, progress=progress)
    for model, label, engine in zip(models, labels, engines, strict=True):
        result.curves.append(probe_engine(engine, task, name=label, path=str(model), **common))
        if random_baseline:
            result.curves.append(probe_engine(random_twin(engine, seed), task,
                                              name=f"{label} (random init)", path=str(model),
                                              kind=RANDOM, **common))
    return result
