"""Fine-tuning run drivers: classify | ner | qa, all on the ONE :class:`~bertkit.training.Trainer`.

A runner reads labelled files, builds windowed features (long inputs are windowed, never
truncated), trains with the generic loop, evaluates on the held-out file **at the end of every
epoch with the task's own metrics** (not just the loss: "best" must mean what the user cares
about), keeps the best weights by a chosen metric, stops early after ``patience`` epochs
without improvement, and writes a run directory:

``OUT/``
    ``config.json`` + ``model.safetensors`` + tokenizer files: the BEST model, a Hugging Face
    directory whose ``config.json`` holds ``id2label``/``label2id`` and ``problem_type``, so
    ``bertkit predict --model OUT`` needs nothing else;
    ``run_config.json``: the fine-tuning settings, data files and task options;
    ``metrics.jsonl``: one record per epoch (train loss, eval metrics);
    ``final_metrics.json``: the best epoch's evaluation;
    ``predictions.jsonl``: that model's predictions on the eval file;
    ``provenance.json``: SHA-256 of every other file and tensor, seed, data fingerprint
    (written last; ``bertkit audit verify OUT`` checks it).

Every file is written atomically (temp file + ``os.replace``): a crash never leaves half a
predictions file. Prediction always goes through the sliding windows of
:mod:`bertkit.data.windows` (classification: window logits averaged, or max; NER: each word
from its max-context window; QA: n-best spans over windows): that shared code is
:mod:`bertkit.tasks.prediction`, the run directory's file names :mod:`bertkit.tasks.runfiles`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from bertkit._fileio import json_ready, write_json
from bertkit.checkpoints.provenance import write_manifest
from bertkit.data.readers import (
    LabelKind,
    LabelMap,
    NerSentence,
    TextExample,
    read_classification,
    read_conll,
    read_squad,
)
from bertkit.errors import ConfigError, DataFormatError, UsageError
from bertkit.tasks.classification import (
    PROBLEM_TYPES,
    classification_features,
    collate_classification,
    encode_targets,
)
from bertkit.tasks.multiple_choice import (
    choice_features,
    choice_logits,
    choice_records,
    collate_choices,
    read_choices,
)
from bertkit.tasks.prediction import classify_run, family_class, ner_run, qa_run
from bertkit.tasks.question_answering import collate_qa, qa_features
from bertkit.tasks.registry import task_spec
from bertkit.tasks.runfiles import (
    FINAL_METRICS,
    METRICS_FILE,
    PREDICTIONS,
    RUN_CONFIG,
    prepare_run_dir,
    require_model_dir,
    run_config,
    write_jsonl,
)
from bertkit.tasks.token_classification import (
    collate_token_classification,
    encode_tags,
    token_classification_features,
)
from bertkit.tokenization import Tokenizer
from bertkit.training import ResumableLoader, TrainConfig, Trainer
from bertkit.training.device import resolve_device
from bertkit.training.rng import seed_everything
from bertkit.training.settings import TrainSettings

__all__ = ["EPOCH_REPORT", "FinetuneConfig", "FinetuneResult", "finetune_classifier",
           "finetune_multiple_choice", "finetune_ner", "finetune_qa", "lower_is_better",
           "write_run_manifest"]

logger = logging.getLogger(__name__)

_LOWER_IS_BETTER = frozenset({"mse", "loss", "hamming_loss"})

EPOCH_REPORT: ContextVar[Callable[[int, float], None] | None] = ContextVar(
    "bertkit_epoch_report", default=None)
"""Set by a caller that watches a run (a hyperparameter search, :mod:`bertkit.runs.search`):
called with ``(epoch, metric value)`` after every evaluation; an exception it raises (a pruned
trial) ends the run. A context variable, so the runners' signatures stay the user's."""


@dataclass(kw_only=True)
class FinetuneConfig(TrainSettings):
    """How to fine-tune: the shared training settings
    (:class:`~bertkit.training.settings.TrainSettings`) plus epochs, evaluation and early
    stopping. Defaults follow the BERT paper's fine-tuning recipe (AdamW, lr in 2e-5…5e-5,
    10 % warmup then linear decay, weight decay 0.01) at a CPU-friendly length.

    ``max_steps`` (when set) overrides ``epochs``; evaluation then still runs every
    ``steps_per_epoch`` steps and once at the end. ``warmup_steps`` (when set) overrides
    ``warmup_ratio``. ``metric`` picks the best epoch (default per task: accuracy / micro_f1 /
    pearson for classification kinds, entity f1 for NER, f1 for QA); ``patience`` epochs
    without improvement stop the run (None: never). ``output_dir`` is where the runner writes
    when its ``out`` argument is None.
    """

    epochs: float = 3.0
    max_steps: int | None = None  # type: ignore[assignment]  # None: epochs decide
    learning_rate: float = 5e-5
    warmup_steps: int | None = None  # type: ignore[assignment]  # None: warmup_ratio decides
    warmup_ratio: float = 0.1
    batch_size: int = 16
    eval_batch_size: int = 64
    max_length: int = 128
    doc_stride: int | None = None
    seed: int = 42
    metric: str | None = None
    patience: int | None = None
    aggregate: Literal["mean", "max"] = "mean"
    progress: bool = False
    # compile: the model is compiled for training; evaluation runs eagerly.

    def validate(self) -> FinetuneConfig:
        """Raise :class:`ConfigError` naming the first field that cannot work."""
        def fail(name: str, expected: str) -> None:
            raise ConfigError(f"FinetuneConfig.{name} must be {expected}, got "
                              f"{getattr(self, name)!r}")
        if not (isinstance(self.epochs, int | float) and self.epochs > 0):
            fail("epochs", "> 0")
        if self.max_steps is not None and (not isinstance(self.max_steps, int)
                                           or self.max_steps < 1):
            fail("max_steps", "an integer >= 1 (or None)")
        if not self.learning_rate > 0:
            fail("learning_rate", "> 0")
        if not 0 <= self.warmup_ratio < 1:
            fail("warmup_ratio", "in [0, 1)")
        if self.warmup_steps is not None and (not isinstance(self.warmup_steps, int)
                                              or self.warmup_steps < 0):
            fail("warmup_steps", "an integer >= 0 (or None)")
        for name in ("batch_size", "eval_batch_size", "max_length", "grad_accum_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                fail(name, "an integer >= 1")
        if self.patience is not None and self.patience < 1:
            fail("patience", "an integer >= 1 (or None)")
        if self.aggregate not in ("mean", "max"):
            fail("aggregate", "'mean' or 'max'")
        return self


@dataclass
class FinetuneResult:
    """What a runner returns: where the run lives, the best epoch and its metrics."""

    output_dir: Path
    best_epoch: int
    metric: str
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    train_losses: list[float] = field(default_factory=list)  # every optimizer step's loss


def lower_is_better(metric: str) -> bool:
    """Whether a smaller ``metric`` is the better one (mse, loss …)."""
    return metric in _LOWER_IS_BETTER
def _run_dir(out: str | Path | None, config: FinetuneConfig) -> str | Path:
    """The runner's ``out`` argument, else ``config.output_dir``."""
    chosen = out if out is not None else config.output_dir
    if chosen is None:
        raise UsageError("no run directory: pass out= or set FinetuneConfig.output_dir")
    return chosen


def _is_better(value: float, best: float | None, metric: str) -> bool:
    if best is None:
        return True
    return value < best if metric in _LOWER_IS_BETTER else value > best



# --------------------------------------------------------------------------- the shared loop


def _train(model: nn.Module, train_len: int, collate: Callable[[list[int]], dict[str, Any]],
           evaluate_fn: Callable[[nn.Module], tuple[dict[str, Any], list[dict[str, Any]]]],
           metric: str, config: FinetuneConfig, out: Path,
           save: Callable[[nn.Module, dict[str, Any]], None]) -> FinetuneResult:
    """Train with the generic Trainer; evaluate each epoch; keep the best; stop early.

    The best weights are kept as a CPU copy (not a checkpoint on disk per epoch: a fine-tuning
    run wants its best model, not resumable history) and written once at the end.
    """
    loader = ResumableLoader(range(train_len), config.batch_size, collate_fn=collate,
                             shuffle=True, seed=config.seed, drop_last=False)
    steps_per_epoch = max(1, len(loader) // config.grad_accum_steps)  # optimizer steps
    total = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    warmup = config.warmup_steps
    train_config = TrainConfig(
        **{**config.shared(), "output_dir": None, "max_steps": total,
           "warmup_steps": round(config.warmup_ratio * total) if warmup is None else warmup},
        # The progress line is drawn on logging steps; with no output_dir nothing is written.
        log_every=max(1, total // 50) if config.progress else 0, eps=1e-8,
    )

    def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        return model(**batch).loss, {}

    trainer = Trainer(model, loss_fn, loader, train_config)
    history: list[dict[str, Any]] = []
    losses: list[float] = []
    state: dict[str, Any] = {"best": None, "best_epoch": 0, "weights": None, "since": 0,
                             "loss_sum": 0.0, "loss_n": 0, "metrics": None, "predictions": None,
                             "early": False}

    def on_step(trainer: Trainer, info: dict[str, Any]) -> None:
        if not info.get("final"):  # the final call only evaluates; it trained nothing
            losses.append(float(info["loss"]))
            state["loss_sum"] += losses[-1]
            state["loss_n"] += 1
        step = info["step"]
        if step % steps_per_epoch and step != total:
            return
        epoch = math.ceil(step / steps_per_epoch)
        scores, predictions = evaluate_fn(trainer.module)
        trainer.module.train()
        if metric not in scores:
            raise UsageError(f"metric {metric!r} is not among this task's metrics: "
                             f"{sorted(k for k, v in scores.items() if _scalar(v))}")
        record = {"epoch": epoch, "step": step,
                  "train_loss": state["loss_sum"] / max(state["loss_n"], 1),
                  **{k: v for k, v in scores.items() if _scalar(v)}}
        state["loss_sum"], state["loss_n"] = 0.0, 0
        history.append(record)
        write_jsonl(out / METRICS_FILE, history)
        value = float(scores[metric])
        if _is_better(value, state["best"], metric):
            state.update(best=value, best_epoch=epoch, since=0, metrics=scores,
                         predictions=predictions,
                         weights={k: v.detach().to("cpu", copy=True)
                                  for k, v in trainer.module.state_dict().items()})
        else:
            state["since"] += 1
            if config.patience is not None and state["since"] >= config.patience:
                state["early"] = True
                trainer.request_stop()
        watcher = EPOCH_REPORT.get()
        if watcher is not None:
            watcher(epoch, value)

    trainer.add_callback("on_step_end", on_step)
    trainer.fit()
    if state["weights"] is None:  # stopped (time budget) before the first evaluation
        on_step(trainer, {"step": total, "final": True})
    model.load_state_dict(state["weights"])
    model.to("cpu").eval()
    final = {"best_epoch": state["best_epoch"], "metric": metric, **state["metrics"]}
    save(model, final)
    write_json(out / FINAL_METRICS, final)
    write_jsonl(out / PREDICTIONS, state["predictions"])
    write_run_manifest(out, config.seed)
    return FinetuneResult(out, state["best_epoch"], metric, final, history, state["early"],
                          losses)


def write_run_manifest(out: Path, seed: int) -> None:
    """The provenance manifest, written last: it lists every file of the run directory, so a
    file added after it would be reported as unexpected. The training file is fingerprinted
    when the run read one (not when it was given examples already read)."""
    run = run_config(out)
    train = Path(run["train"]) if run.get("train") else None
    write_manifest(out, seed=seed, extra={"task": run.get("task")},
                   training_data=[train] if train is not None and train.is_file() else None)


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)



def _save_model(out: Path, tokenizer: Tokenizer, run: dict[str, Any]) -> Callable:
    def save(model: nn.Module, final: dict[str, Any]) -> None:
        model.save_pretrained(out)  # type: ignore[operator]
        tokenizer.save_pretrained(out)
        write_json(out / RUN_CONFIG, {**run, "best_epoch": final["best_epoch"]})
    return save



# --------------------------------------------------------------------------- classification


def finetune_classifier(
    model: str | Path, train: str | Path, eval: str | Path, out: str | Path | None, *,
    text_column: str = "text", text_pair_column: str | None = None,
    label_column: str = "label", label_kind: LabelKind = "multiclass",
    label_separator: str | None = None, config: FinetuneConfig | None = None,
    train_examples: Sequence[TextExample] | None = None,
    eval_examples: Sequence[TextExample] | None = None,
) -> FinetuneResult:
    """Fine-tune a sequence classifier (single texts or pairs; multiclass, multilabel or
    regression, chosen explicitly) and write the run directory ``out``.

    ``train_examples``/``eval_examples`` (already read) replace reading ``train``/``eval``:
    handy for slices of a big file.
    """
    spec = task_spec("classify")
    config = (config or FinetuneConfig(max_length=spec.max_length)).validate()
    if label_kind not in PROBLEM_TYPES:
        raise UsageError(f"label_kind={label_kind!r}; expected one of {list(PROBLEM_TYPES)}")
    read = dict(text_column=text_column, text_pair_column=text_pair_column,
                label_column=label_column, label_kind=label_kind,
                label_separator=label_separator)
    train_ex = list(train_examples) if train_examples is not None else \
        read_classification(train, **read)  # type: ignore[arg-type]
    eval_ex = list(eval_examples) if eval_examples is not None else \
        read_classification(eval, **read)  # type: ignore[arg-type]
    out = prepare_run_dir(_run_dir(out, config))
    model_dir = require_model_dir(model)
    tokenizer = Tokenizer.from_pretrained(model_dir)
    label_map = None if label_kind == "regression" else LabelMap.from_examples(train_ex)
    overrides: dict[str, Any] = {"problem_type": PROBLEM_TYPES[label_kind]}
    if label_map is None:
        overrides["num_labels"] = 1
    else:
        overrides.update(num_labels=len(label_map), id2label=label_map.id2label,
                         label2id=label_map.label2id)
    seed_everything(config.seed)  # the new head's initialisation is part of the seed
    net = family_class(spec.model_class, model_dir).from_pretrained(
        model_dir, **overrides)
    features = classification_features(tokenizer, train_ex, label_kind=label_kind,
                                       label_map=label_map, max_length=config.max_length,
                                       doc_stride=config.doc_stride)
    encode_targets(eval_ex, label_kind, label_map)  # unknown eval labels: fail before training
    pad = tokenizer.pad_token_id
    device = resolve_device(config.device)
    default_metric = {"multiclass": "accuracy", "multilabel": "micro_f1",
                      "regression": "pearson"}[label_kind]
    run = {"task": spec.name, "base_model": str(model), "train": str(train),
           "eval": str(eval), "text_column": text_column, "text_pair_column": text_pair_column,
           "label_column": label_column, "label_kind": label_kind,
           "label_separator": label_separator, "finetune": json_ready(asdict(config)),
           "train_examples": len(train_ex), "train_windows": len(features)}

    def evaluate_fn(m: nn.Module) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        scores, records = classify_run(
            m, tokenizer, eval_ex, label_kind, label_map, max_length=config.max_length,
            doc_stride=config.doc_stride, batch_size=config.eval_batch_size,
            aggregate=config.aggregate, device=device, labelled=True)
        return scores or {}, records

    return _train(net, len(features),
                  lambda idx: collate_classification(features, idx, pad_id=pad,
                                                     label_kind=label_kind),
                  evaluate_fn, config.metric or default_metric, config, out,
                  _save_model(out, tokenizer, run))


# --------------------------------------------------------------------------- NER


def finetune_ner(model: str | Path, train: str | Path, eval: str | Path, out: str | Path | None, *,
                 config: FinetuneConfig | None = None, label_all_pieces: bool = False,
                 train_sentences: Sequence[NerSentence] | None = None,
                 eval_sentences: Sequence[NerSentence] | None = None) -> FinetuneResult:
    """Fine-tune a token classifier on CoNLL-style BIO files; entity F1 picks the best epoch."""
    spec = task_spec("ner")
    config = (config or FinetuneConfig(max_length=spec.max_length)).validate()
    train_s = list(train_sentences) if train_sentences is not None else read_conll(train)
    eval_s = list(eval_sentences) if eval_sentences is not None else read_conll(eval)
    if not train_s:
        raise DataFormatError("no sentences; expected CoNLL lines 'token<TAB>tag'", train)
    if not eval_s:
        raise DataFormatError("no sentences; expected CoNLL lines 'token<TAB>tag'", eval)
    out = prepare_run_dir(_run_dir(out, config))
    model_dir = require_model_dir(model)
    tokenizer = Tokenizer.from_pretrained(model_dir)
    label_map = LabelMap.from_sentences(train_s)
    encode_tags(eval_s, label_map)
    seed_everything(config.seed)
    net = family_class(spec.model_class, model_dir).from_pretrained(
        model_dir, num_labels=len(label_map), id2label=label_map.id2label,
        label2id=label_map.label2id)
    features = token_classification_features(tokenizer, train_s, label_map=label_map,
                                             max_length=config.max_length,
                                             doc_stride=config.doc_stride,
                                             label_all_pieces=label_all_pieces)
    pad = tokenizer.pad_token_id
    device = resolve_device(config.device)
    run = {"task": spec.name, "base_model": str(model), "train": str(train), "eval": str(eval),
           "label_all_pieces": label_all_pieces, "finetune": json_ready(asdict(config)),
           "train_sentences": len(train_s), "train_windows": len(features)}

    def evaluate_fn(m: nn.Module) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        scores, records = ner_run(m, tokenizer, eval_s, label_map,
                                   max_length=config.max_length, doc_stride=config.doc_stride,
                                   batch_size=config.eval_batch_size, device=device,
                                   labelled=True)
        return scores or {}, records

    return _train(net, len(features),
                  lambda idx: collate_token_classification(features, idx, pad_id=pad),
                  evaluate_fn, config.metric or "f1", config, out,
                  _save_model(out, tokenizer, run))


# --------------------------------------------------------------------------- QA


def finetune_qa(model: str | Path, train: str | Path, eval: str | Path, out: str | Path | None, *,
                config: FinetuneConfig | None = None, doc_stride: int = 128,
                max_answer_length: int = 30) -> FinetuneResult:
    """Fine-tune extractive QA on SQuAD 1.1/2.0 JSON; for 2.0 the null-score threshold is
    tuned on the eval (dev) file each epoch and saved with the model."""
    spec = task_spec("qa")
    config = (config or FinetuneConfig(max_length=spec.max_length)).validate()
    train_data, eval_data = read_squad(train), read_squad(eval)
    out = prepare_run_dir(_run_dir(out, config))
    model_dir = require_model_dir(model)
    tokenizer = Tokenizer.from_pretrained(model_dir)
    seed_everything(config.seed)
    net = family_class(spec.model_class, model_dir).from_pretrained(model_dir)
    features = qa_features(tokenizer, train_data.examples, max_length=config.max_length,
                           doc_stride=doc_stride, training=True)
    pad = tokenizer.pad_token_id
    device = resolve_device(config.device)
    version = eval_data.version
    run = {"task": spec.name, "base_model": str(model), "train": str(train), "eval": str(eval),
           "version": version, "doc_stride": doc_stride, "max_answer_length": max_answer_length,
           "finetune": json_ready(asdict(config)), "train_windows": len(features)}

    def evaluate_fn(m: nn.Module) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        scores, records, _ = qa_run(m, tokenizer, eval_data.examples, version,
                                     max_length=config.max_length, doc_stride=doc_stride,
                                     batch_size=config.eval_batch_size, device=device,
                                     labelled=True, null_threshold=None,
                                     max_answer_length=max_answer_length)
        return scores or {}, records

    def save(m: nn.Module, final: dict[str, Any]) -> None:
        run["null_threshold"] = final.get("null_threshold", 0.0)
        _save_model(out, tokenizer, run)(m, final)

    return _train(net, len(features), lambda idx: collate_qa(features, idx, pad_id=pad),
                  evaluate_fn, config.metric or "f1", config, out, save)



# --------------------------------------------------------------------------- multiple choice


def finetune_multiple_choice(model: str | Path, train: str | Path, eval: str | Path,
                             out: str | Path, *, config: FinetuneConfig | None = None
                             ) -> FinetuneResult:
    """Fine-tune a multiple-choice scorer on JSONL ``{context, choices, label}`` files
    (:mod:`bertkit.tasks.multiple_choice`); accuracy picks the best epoch."""
    spec = task_spec("multiple-choice")
    config = (config or FinetuneConfig(max_length=spec.max_length)).validate()
    train_ex, eval_ex = read_choices(train), read_choices(eval)
    out = prepare_run_dir(out)
    model_dir = require_model_dir(model)
    tokenizer = Tokenizer.from_pretrained(model_dir)
    seed_everything(config.seed)
    net = family_class(spec.model_class, model_dir).from_pretrained(model_dir)
    features = choice_features(tokenizer, train_ex, max_length=config.max_length)
    eval_features = choice_features(tokenizer, eval_ex, max_length=config.max_length)
    pad = tokenizer.pad_token_id
    device = resolve_device(config.device)
    run = {"task": spec.name, "base_model": str(model), "train": str(train), "eval": str(eval),
           "finetune": json_ready(asdict(config)), "train_examples": len(train_ex),
           "choices": len(train_ex[0].choices)}

    def evaluate_fn(m: nn.Module) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        logits = choice_logits(m, eval_features, pad_id=pad,
                               batch_size=config.eval_batch_size, device=device)
        scores, records = choice_records(eval_ex, logits, labelled=True)
        return scores or {}, records

    return _train(net, len(features), lambda idx: collate_choices(features, idx, pad_id=pad),
                  evaluate_fn, config.metric or "accuracy", config, out,
                  _save_model(out, tokenizer, run))
