"""Fine-tuning runners: classify | ner | qa, all on the ONE :class:`~bertkit.training.Trainer`.

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
from its max-context window; QA: n-best spans over windows).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from bertkit._fileio import read_json, write_json, write_text
from bertkit.checkpoints.provenance import write_manifest
from bertkit.data.readers import (
    LabelKind,
    LabelMap,
    NerSentence,
    QAExample,
    TextExample,
    gold_answers,
    read_classification,
    read_conll,
    read_squad,
)
from bertkit.errors import ConfigError, DataFormatError, UsageError
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import (
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    PreTrainedModel,
)
from bertkit.tasks import metrics as M
from bertkit.tasks.classification import (
    PROBLEM_TYPES,
    aggregate_windows,
    classification_features,
    collate_classification,
    encode_targets,
)
from bertkit.tasks.question_answering import (
    apply_null_threshold,
    collate_qa,
    postprocess_qa,
    qa_features,
    tune_null_threshold,
)
from bertkit.tasks.token_classification import (
    collate_token_classification,
    decode_entities,
    encode_tags,
    token_classification_features,
)
from bertkit.tokenization import Tokenizer
from bertkit.training import ResumableLoader, TrainConfig, Trainer
from bertkit.training.device import resolve_device
from bertkit.training.rng import seed_everything

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "evaluate",
    "finetune_classifier",
    "finetune_ner",
    "finetune_qa",
    "predict",
]

logger = logging.getLogger(__name__)

Task = Literal["classify", "ner", "qa"]
TASKS: tuple[str, ...] = ("classify", "ner", "qa")
RUN_CONFIG = "run_config.json"
METRICS_FILE = "metrics.jsonl"
FINAL_METRICS = "final_metrics.json"
PREDICTIONS = "predictions.jsonl"
_LOWER_IS_BETTER = frozenset({"mse", "loss", "hamming_loss"})


@dataclass
class FinetuneConfig:
    """How to fine-tune. Defaults follow the BERT paper's fine-tuning recipe (AdamW, lr in
    2e-5…5e-5, 10 % warmup then linear decay, weight decay 0.01) at a CPU-friendly length.

    ``max_steps`` (when set) overrides ``epochs``; evaluation then still runs every
    ``steps_per_epoch`` steps and once at the end. ``metric`` picks the best epoch (default per
    task: accuracy / micro_f1 / pearson for classification kinds, entity f1 for NER, f1 for
    QA); ``patience`` epochs without improvement stop the run (None: never).
    """

    epochs: float = 3.0
    max_steps: int | None = None
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    batch_size: int = 16
    eval_batch_size: int = 64
    max_length: int = 128
    doc_stride: int | None = None
    seed: int = 42
    metric: str | None = None
    patience: int | None = None
    aggregate: Literal["mean", "max"] = "mean"
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    max_minutes: float | None = None
    progress: bool = False

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
        for name in ("batch_size", "eval_batch_size", "max_length"):
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


# --------------------------------------------------------------------------- small helpers


def _write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """All records at once, atomically: a reader never sees half a file."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    write_text(path, text)


def _model_dir(path: str | Path) -> Path:
    """A model directory (``config.json`` inside); a friendly error otherwise."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise UsageError(f"{path}: not a model directory (no config.json); expected a Hugging "
                         "Face / bertkit model folder or a fine-tuning run directory")
    return path


def _run_config(model_dir: Path) -> dict[str, Any]:
    """The fine-tuning settings saved beside the model, or ``{}`` for a plain checkpoint."""
    path = model_dir / RUN_CONFIG
    return read_json(path) if path.is_file() else {}


@torch.no_grad()
def _forward_windows(model: nn.Module, n: int, collate: Callable[[list[int]], dict[str, Any]],
                     batch_size: int, device: torch.device,
                     outputs: Callable[[Any, dict[str, Any]], list[Any]]) -> list[Any]:
    """Run ``model`` over windows ``0..n-1`` in batches; ``outputs`` turns one batch's model
    output into one entry per window (trimmed to the window's real length)."""
    model.eval()
    results: list[Any] = []
    for begin in range(0, n, batch_size):
        batch = collate(list(range(begin, min(n, begin + batch_size))))
        inputs = {k: v.to(device) for k, v in batch.items()
                  if k in ("input_ids", "attention_mask", "token_type_ids")}
        results.extend(outputs(model(**inputs), batch))
    return results


def _trim(tensor: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> list[np.ndarray]:
    """Per-row arrays cut to each row's real (unpadded) length."""
    lengths = batch["attention_mask"].sum(-1).tolist()
    rows = tensor.detach().float().cpu().numpy()
    return [row[:int(length)] for row, length in zip(rows, lengths, strict=True)]


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
    steps_per_epoch = len(loader)
    total = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    train_config = TrainConfig(
        output_dir=None, max_steps=total, max_minutes=config.max_minutes,
        learning_rate=config.learning_rate, weight_decay=config.weight_decay,
        warmup_steps=round(config.warmup_ratio * total), seed=config.seed,
        device=config.device, precision=config.precision,
        # The progress line is drawn on logging steps; with no output_dir nothing is written.
        log_every=max(1, total // 50) if config.progress else 0,
        progress=config.progress, eps=1e-8,
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
        _write_jsonl(out / METRICS_FILE, history)
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

    trainer.add_callback("on_step_end", on_step)
    trainer.fit()
    if state["weights"] is None:  # stopped (time budget) before the first evaluation
        on_step(trainer, {"step": total, "final": True})
    model.load_state_dict(state["weights"])
    model.to("cpu").eval()
    final = {"best_epoch": state["best_epoch"], "metric": metric, **state["metrics"]}
    save(model, final)
    write_json(out / FINAL_METRICS, final)
    _write_jsonl(out / PREDICTIONS, state["predictions"])
    _write_manifest(out, config.seed)
    return FinetuneResult(out, state["best_epoch"], metric, final, history, state["early"],
                          losses)


def _write_manifest(out: Path, seed: int) -> None:
    """The provenance manifest, written last: it lists every file of the run directory, so a
    file added after it would be reported as unexpected. The training file is fingerprinted
    when the run read one (not when it was given examples already read)."""
    run = _run_config(out)
    train = Path(run["train"]) if run.get("train") else None
    write_manifest(out, seed=seed, extra={"task": run.get("task")},
                   training_data=[train] if train is not None and train.is_file() else None)


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _prepare_out(out: str | Path) -> Path:
    """The run directory; refuses one holding an earlier run (nothing silently mixed)."""
    out = Path(out)
    if (out / RUN_CONFIG).exists():
        raise UsageError(f"{out} already holds a fine-tuning run ({RUN_CONFIG}); choose another "
                         "--out directory or remove it")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _save_model(out: Path, tokenizer: Tokenizer, run: dict[str, Any]) -> Callable:
    def save(model: nn.Module, final: dict[str, Any]) -> None:
        model.save_pretrained(out)  # type: ignore[operator]
        tokenizer.save_pretrained(out)
        write_json(out / RUN_CONFIG, {**run, "best_epoch": final["best_epoch"]})
    return save


# --------------------------------------------------------------------------- classification


def _classify_metrics(label_kind: str, label_map: LabelMap | None, gold: Any,
                      scores: np.ndarray) -> dict[str, Any]:
    """The task's metrics from aggregated logits ``scores`` ``(E, C)``."""
    if label_kind == "regression":
        pred = scores.reshape(-1)
        return {"mse": M.mse(gold, pred), "pearson": M.pearson(gold, pred),
                "spearman": M.spearman(gold, pred)}
    if label_kind == "multilabel":
        pred = (scores > 0).astype(int)  # sigmoid > 0.5
        return dict(M.multilabel_metrics(np.asarray(gold, dtype=int), pred))
    pred = scores.argmax(-1)
    n = len(label_map)  # type: ignore[arg-type]
    macro = M.precision_recall_f1(gold, pred, "macro", labels=list(range(n)))
    micro = M.precision_recall_f1(gold, pred, "micro", labels=list(range(n)))
    return {
        "accuracy": M.accuracy(gold, pred),
        "macro_f1": macro.f1,  # type: ignore[union-attr]
        "micro_f1": micro.f1,  # type: ignore[union-attr]
        "mcc": M.matthews_corrcoef(gold, pred),
        "confusion_matrix": M.confusion_matrix(gold, pred, n).tolist(),
        "labels": list(label_map.labels),  # type: ignore[union-attr]
        "report": M.classification_report(gold, pred, labels=list(range(n)),
                                          names=list(label_map.labels)),  # type: ignore[union-attr]
    }


def _classify_records(examples: Sequence[TextExample], label_kind: str,
                      label_map: LabelMap | None, scores: np.ndarray) -> list[dict[str, Any]]:
    records = []
    for example, row in zip(examples, scores, strict=True):
        record: dict[str, Any] = {"line": example.line, "text": example.text}
        if example.text_pair is not None:
            record["text_pair"] = example.text_pair
        if label_kind == "regression":
            record["score"] = float(np.asarray(row).reshape(-1)[0])
        elif label_kind == "multilabel":
            probs = 1 / (1 + np.exp(-row))
            record["labels"] = [lab for lab, p in zip(label_map.labels, probs, strict=True)  # type: ignore[union-attr]
                                if p > 0.5]
            record["scores"] = {lab: round(float(p), 6)
                                for lab, p in zip(label_map.labels, probs, strict=True)}  # type: ignore[union-attr]
        else:
            probs = np.exp(row - row.max())
            probs /= probs.sum()
            record["label"] = label_map.labels[int(row.argmax())]  # type: ignore[union-attr]
            record["scores"] = {lab: round(float(p), 6)
                                for lab, p in zip(label_map.labels, probs, strict=True)}  # type: ignore[union-attr]
        if example.label is not None:
            record["gold"] = list(example.label) if isinstance(example.label, tuple) \
                else example.label
        records.append(record)
    return records


def _classify_run(model: nn.Module, tokenizer: Tokenizer, examples: Sequence[TextExample],
                  label_kind: str, label_map: LabelMap | None, *, max_length: int,
                  doc_stride: int | None, batch_size: int, aggregate: str,
                  device: torch.device, labelled: bool
                  ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Predict ``examples`` through windows (and score them when ``labelled``)."""
    features = classification_features(tokenizer, examples, max_length=max_length,
                                       doc_stride=doc_stride)
    gold = None
    if labelled:  # unknown labels fail here, naming path:line, before any compute
        gold = encode_targets(examples, label_kind, label_map)  # type: ignore[arg-type]
    pad = tokenizer.pad_token_id
    model.to(device)
    logits = _forward_windows(
        model, len(features), lambda idx: collate_classification(features, idx, pad_id=pad),
        batch_size, device, lambda out, batch: list(out.logits.detach().float().cpu().numpy()))
    scores = aggregate_windows(np.stack(logits), features.windows.window_example,
                               len(examples), how=aggregate)  # type: ignore[arg-type]
    records = _classify_records(examples, label_kind, label_map, scores)
    metrics = _classify_metrics(label_kind, label_map, gold, scores) if labelled else None
    return metrics, records


def finetune_classifier(
    model: str | Path, train: str | Path, eval: str | Path, out: str | Path, *,
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
    config = (config or FinetuneConfig()).validate()
    if label_kind not in PROBLEM_TYPES:
        raise UsageError(f"label_kind={label_kind!r}; expected one of {list(PROBLEM_TYPES)}")
    read = dict(text_column=text_column, text_pair_column=text_pair_column,
                label_column=label_column, label_kind=label_kind,
                label_separator=label_separator)
    train_ex = list(train_examples) if train_examples is not None else \
        read_classification(train, **read)  # type: ignore[arg-type]
    eval_ex = list(eval_examples) if eval_examples is not None else \
        read_classification(eval, **read)  # type: ignore[arg-type]
    out = _prepare_out(out)
    model_dir = _model_dir(model)
    tokenizer = Tokenizer.from_pretrained(model_dir)
    label_map = None if label_kind == "regression" else LabelMap.from_examples(train_ex)
    overrides: dict[str, Any] = {"problem_type": PROBLEM_TYPES[label_kind]}
    if label_map is None:
        overrides["num_labels"] = 1
    else:
        overrides.update(num_labels=len(label_map), id2label=label_map.id2label,
                         label2id=label_map.label2id)
    seed_everything(config.seed)  # the new head's initialisation is part of the seed
    net = _family_class(BertForSequenceClassification, model_dir).from_pretrained(
        model_dir, **overrides)
    features = classification_features(tokenizer, train_ex, label_kind=label_kind,
                                       label_map=label_map, max_length=config.max_length,
                                       doc_stride=config.doc_stride)
    encode_targets(eval_ex, label_kind, label_map)  # unknown eval labels: fail before training
    pad = tokenizer.pad_token_id
    device = resolve_device(config.device)
    default_metric = {"multiclass": "accuracy", "multilabel": "micro_f1",
                      "regression": "pearson"}[label_kind]
    run = {"task": "classify", "base_model": str(model), "train": str(train),
           "eval": str(eval), "text_column": text_column, "text_pair_column": text_pair_column,
           "label_column": label_column, "label_kind": label_kind,
           "label_separator": label_separator, "finetune": asdict(config),
           "train_examples": len(train_ex), "train_windows": len(features)}

    def evaluate_fn(m: nn.Module) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        scores, records = _classify_run(
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


def _ner_run(model: nn.Module, tokenizer: Tokenizer, sentences: Sequence[NerSentence],
             label_map: LabelMap, *, max_length: int, doc_stride: int | None,
             batch_size: int, device: torch.device, labelled: bool
             ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    if labelled:  # an unknown tag fails here with its file line
        encode_tags(sentences, label_map)
    features = token_classification_features(tokenizer, sentences, max_length=max_length,
                                             doc_stride=doc_stride)
    pad = tokenizer.pad_token_id
    model.to(device)
    rows = _forward_windows(
        model, len(features),
        lambda idx: collate_token_classification(features, idx, pad_id=pad),
        batch_size, device, lambda out, batch: [r.argmax(-1) for r in _trim(out.logits, batch)])
    decoded = decode_entities(features.windows, rows, label_map)
    records = []
    for sentence, pred in zip(sentences, decoded, strict=True):
        record: dict[str, Any] = {"line": sentence.line, "words": pred.words, "tags": pred.tags,
                                  "entities": [{"type": e.type, "start": e.start, "end": e.end,
                                                "text": e.text} for e in pred.entities]}
        if sentence.tags is not None:
            record["gold"] = list(sentence.tags)
        records.append(record)
    if not labelled:
        return None, records
    gold = [list(s.tags or ()) for s in sentences]
    pred_tags = [p.tags for p in decoded]
    scores = M.entity_scores(gold, pred_tags)
    metrics = {"precision": scores.micro.precision, "recall": scores.micro.recall,
               "f1": scores.micro.f1, "token_accuracy": M.token_accuracy(gold, pred_tags),
               "report": scores.as_dict()}
    return metrics, records


def finetune_ner(model: str | Path, train: str | Path, eval: str | Path, out: str | Path, *,
                 config: FinetuneConfig | None = None, label_all_pieces: bool = False,
                 train_sentences: Sequence[NerSentence] | None = None,
                 eval_sentences: Sequence[NerSentence] | None = None) -> FinetuneResult:
    """Fine-tune a token classifier on CoNLL-style BIO files; entity F1 picks the best epoch."""
    config = (config or FinetuneConfig()).validate()
    train_s = list(train_sentences) if train_sentences is not None else read_conll(train)
    eval_s = list(eval_sentences) if eval_sentences is not None else read_conll(eval)
    if not train_s:
        raise DataFormatError("no sentences; expected CoNLL lines 'token<TAB>tag'", train)
    if not eval_s:
        raise DataFormatError("no sentences; expected CoNLL lines 'token<TAB>tag'", eval)
    out = _prepare_out(out)
    model_dir = _model_dir(model)
    tokenizer = Tokenizer.from_pretrained(model_dir)
    label_map = LabelMap.from_sentences(train_s)
    encode_tags(eval_s, label_map)
    seed_everything(config.seed)
    net = _family_class(BertForTokenClassification, model_dir).from_pretrained(
        model_dir, num_labels=len(label_map), id2label=label_map.id2label,
        label2id=label_map.label2id)
    features = token_classification_features(tokenizer, train_s, label_map=label_map,
                                             max_length=config.max_length,
                                             doc_stride=config.doc_stride,
                                             label_all_pieces=label_all_pieces)
    pad = tokenizer.pad_token_id
    device = resolve_device(config.device)
    run = {"task": "ner", "base_model": str(model), "train": str(train), "eval": str(eval),
           "label_all_pieces": label_all_pieces, "finetune": asdict(config),
           "train_sentences": len(train_s), "train_windows": len(features)}

    def evaluate_fn(m: nn.Module) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        scores, records = _ner_run(m, tokenizer, eval_s, label_map,
                                   max_length=config.max_length, doc_stride=config.doc_stride,
                                   batch_size=config.eval_batch_size, device=device,
                                   labelled=True)
        return scores or {}, records

    return _train(net, len(features),
                  lambda idx: collate_token_classification(features, idx, pad_id=pad),
                  evaluate_fn, config.metric or "f1", config, out,
                  _save_model(out, tokenizer, run))


# --------------------------------------------------------------------------- QA


def _qa_run(model: nn.Module, tokenizer: Tokenizer, examples: Sequence[QAExample],
            version: str, *, max_length: int, doc_stride: int, batch_size: int,
            device: torch.device, labelled: bool, null_threshold: float | None,
            max_answer_length: int = 30) -> tuple[dict[str, Any] | None, list[dict[str, Any]],
                                                  float]:
    """Predict answers; on labelled SQuAD 2.0 data tune the null threshold on these examples
    (``null_threshold=None``) or apply the given one."""
    features = qa_features(tokenizer, examples, max_length=max_length, doc_stride=doc_stride)
    pad = tokenizer.pad_token_id
    model.to(device)
    pairs = _forward_windows(
        model, len(features), lambda idx: collate_qa(features, idx, pad_id=pad), batch_size,
        device, lambda out, batch: list(zip(_trim(out.start_logits, batch),
                                            _trim(out.end_logits, batch), strict=True)))
    preds = postprocess_qa(features, [p[0] for p in pairs], [p[1] for p in pairs],
                           version=version, max_answer_length=max_answer_length)  # type: ignore[arg-type]
    threshold = 0.0 if null_threshold is None else null_threshold
    metrics = None
    if labelled:
        gold = gold_answers(examples)
        if version == "2.0" and null_threshold is None:
            _, threshold = tune_null_threshold(examples, preds, "f1")
            if not math.isfinite(threshold):
                threshold = 0.0
        answers = apply_null_threshold(preds, threshold) if version == "2.0" else \
            {q: p.best_text for q, p in preds.items()}
        metrics = dict(M.squad_evaluate(gold, answers, version=version))  # type: ignore[arg-type]
        metrics["null_threshold"] = threshold
    else:
        answers = apply_null_threshold(preds, threshold) if version == "2.0" else \
            {q: p.best_text for q, p in preds.items()}
    records = [{"id": qid, "answer": answers[qid], "best_span": p.best_text,
                "null_score_diff": p.null_score_diff if p.null_score_diff is None
                or math.isfinite(p.null_score_diff) else None}
               for qid, p in preds.items()]
    return metrics, records, threshold


def finetune_qa(model: str | Path, train: str | Path, eval: str | Path, out: str | Path, *,
                config: FinetuneConfig | None = None, doc_stride: int = 128,
                max_answer_length: int = 30) -> FinetuneResult:
    """Fine-tune extractive QA on SQuAD 1.1/2.0 JSON; for 2.0 the null-score threshold is
    tuned on the eval (dev) file each epoch and saved with the model."""
    config = (config or FinetuneConfig(max_length=384)).validate()
    train_data, eval_data = read_squad(train), read_squad(eval)
    out = _prepare_out(out)
    model_dir = _model_dir(model)
    tokenizer = Tokenizer.from_pretrained(model_dir)
    seed_everything(config.seed)
    net = _family_class(BertForQuestionAnswering, model_dir).from_pretrained(model_dir)
    features = qa_features(tokenizer, train_data.examples, max_length=config.max_length,
                           doc_stride=doc_stride, training=True)
    pad = tokenizer.pad_token_id
    device = resolve_device(config.device)
    version = eval_data.version
    run = {"task": "qa", "base_model": str(model), "train": str(train), "eval": str(eval),
           "version": version, "doc_stride": doc_stride, "max_answer_length": max_answer_length,
           "finetune": asdict(config), "train_windows": len(features)}

    def evaluate_fn(m: nn.Module) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        scores, records, _ = _qa_run(m, tokenizer, eval_data.examples, version,
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


def _family_class(head: type[PreTrainedModel], model_dir: Path) -> type[PreTrainedModel]:
    """``head``'s class in the checkpoint's own family: an ELECTRA discriminator or an ALBERT
    checkpoint fine-tunes through the same code as BERT (``ElectraForSequenceClassification``
    …), and a family without that head gets a clear error."""
    return head.for_family(BertConfig.from_pretrained(model_dir).model_type)


# --------------------------------------------------------------------------- evaluate / predict


def _load_for(task: str, model_dir: Path) -> tuple[nn.Module, Tokenizer, dict[str, Any]]:
    if task not in TASKS:
        raise UsageError(f"task {task!r}; expected one of {list(TASKS)}")
    cls = {"classify": BertForSequenceClassification, "ner": BertForTokenClassification,
           "qa": BertForQuestionAnswering}[task]
    model = _family_class(cls, model_dir).from_pretrained(model_dir)
    return model, Tokenizer.from_pretrained(model_dir), _run_config(model_dir)


def _label_kind(model: nn.Module, run: Mapping[str, Any]) -> str:
    problem = model.config.problem_type  # type: ignore[union-attr]
    for kind, name in PROBLEM_TYPES.items():
        if name == problem:
            return kind
    return str(run.get("label_kind", "multiclass"))


def _infer(task: str, model_dir: str | Path, path: str | Path | None, *, labelled: bool,
           texts: Sequence[str] | None = None, text_column: str | None = None,
           text_pair_column: str | None = None, label_column: str | None = None,
           batch_size: int = 32, device: str = "auto", max_length: int | None = None,
           ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    model_dir = _model_dir(model_dir)
    model, tokenizer, run = _load_for(task, model_dir)
    settings = run.get("finetune", {})
    length = max_length or settings.get("max_length") or tokenizer.model_max_length
    stride = settings.get("doc_stride")
    dev = resolve_device(device)
    if task == "classify":
        kind = _label_kind(model, run)
        label_map = None if kind == "regression" else LabelMap.from_config(
            model.config.to_dict())  # type: ignore[operator]
        if texts is not None:
            examples = [TextExample(t, line=i + 1) for i, t in enumerate(texts)]
        else:
            examples = read_classification(
                path,  # type: ignore[arg-type]
                text_column=text_column or run.get("text_column", "text"),
                text_pair_column=text_pair_column or run.get("text_pair_column"),
                label_column=(label_column or run.get("label_column", "label")) if labelled
                else None,
                label_kind=kind,  # type: ignore[arg-type]
                label_separator=run.get("label_separator"))
        return _classify_run(model, tokenizer, examples, kind, label_map, max_length=length,
                             doc_stride=stride, batch_size=batch_size,
                             aggregate=settings.get("aggregate", "mean"), device=dev,
                             labelled=labelled)
    if task == "ner":
        label_map = LabelMap.from_config(model.config.to_dict())  # type: ignore[operator]
        if texts is not None:
            sentences = [NerSentence(t.split(), None, None, i + 1) for i, t in enumerate(texts)]
        else:
            sentences = read_conll(path, has_tags=labelled)  # type: ignore[arg-type]
        if not sentences:
            raise DataFormatError("no sentences; expected CoNLL lines", path)
        return _ner_run(model, tokenizer, sentences, label_map, max_length=length,
                        doc_stride=stride, batch_size=batch_size, device=dev,
                        labelled=labelled)
    data = read_squad(path)  # type: ignore[arg-type]
    metrics, records, _ = _qa_run(
        model, tokenizer, data.examples, data.version, max_length=length,
        doc_stride=run.get("doc_stride", 128), batch_size=batch_size, device=dev,
        labelled=labelled, null_threshold=run.get("null_threshold", 0.0),
        max_answer_length=run.get("max_answer_length", 30))
    return metrics, records


def evaluate(task: Task, model: str | Path, data: str | Path, *,
             output: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """The task's metrics of a fine-tuned ``model`` on labelled ``data`` (same formats as
    training; column names default to the training run's). A label the model was not trained
    on is a :class:`DataFormatError` naming it and its line. ``output`` also writes the
    metrics JSON (atomically)."""
    metrics, _ = _infer(task, model, data, labelled=True, **options)
    assert metrics is not None
    if output is not None:
        write_json(output, metrics)
    return metrics


def predict(task: Task, model: str | Path, data: str | Path | None = None, *,
            texts: Sequence[str] | None = None, output: str | Path | None = None,
            **options: Any) -> list[dict[str, Any]]:
    """Predictions of a fine-tuned ``model``: on a file (classification table, CoNLL words,
    SQuAD JSON) or on raw ``texts`` (classify; NER splits them at whitespace). ``output``
    writes them as JSONL, atomically."""
    if texts is None and data is None:
        raise UsageError("predict needs a data file or texts")
    if texts is not None and task == "qa":
        raise UsageError("QA prediction needs a SQuAD-format file (questions with contexts)")
    _, records = _infer(task, model, data, labelled=False, texts=texts, **options)
    if output is not None:
        _write_jsonl(Path(output), records)
    return records
