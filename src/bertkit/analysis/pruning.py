"""Which heads a fine-tuned model can lose, and losing them for real (Michel et al. 2019, "Are
Sixteen Heads Really Better than One?").

Importance of head h is the expected absolute gradient of the task loss with respect to a
mask ξ_h that multiplies the head's output, at ξ = 1: I_h = E_x |∂L(x)/∂ξ_h|, the first-order
estimate of how much the loss moves if the head is removed. As in the paper's released code
(and ``transformers``' ``run_bertology``), scores are normalised per layer (ℓ2), which made
pruning across layers work better in their experiments.

Pruning removes the least important heads globally, with one rule of bertkit's: every layer
keeps at least one head (its most important). ``transformers`` allows a layer with no heads;
bertkit refuses one (:meth:`BertConfig._validate_pruned_heads` says why), and the plan here
never asks for it.
The model then has smaller query / key / value rows and output columns, and
``config.pruned_heads`` names what went, so it saves, loads (here and, by the same convention,
in ``transformers``) and runs faster.

Shape legend: L layers, N heads per unpruned layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bertkit._fileio import write_json
from bertkit.data.readers import LabelMap, read_classification
from bertkit.errors import UsageError
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import BertForSequenceClassification
from bertkit.tasks.classification import classification_features, collate_classification
from bertkit.tokenization import Tokenizer


def head_importance(model: BertForSequenceClassification, batches: Iterable[dict[str, Tensor]],
                    *, normalize_layers: bool = True) -> np.ndarray:
    """(L, N) importance of every head of ``model`` on labelled ``batches`` (model inputs and
    ``labels``); NaN for heads already pruned. Dropout is off (eval mode) and the parameters'
    gradients are not computed: only the mask's."""
    encoder = model.bert
    N = model.config.num_attention_heads
    weight = encoder.embeddings.word.weight
    masks = [torch.ones(layer.attention.num_heads, requires_grad=True, device=weight.device,
                        dtype=weight.dtype) for layer in encoder.layers]
    totals = [torch.zeros(m.shape, dtype=torch.float64) for m in masks]
    was_training = model.training
    model.eval()
    seen = 0
    try:
        with torch.enable_grad():
            for batch in batches:
                out = model(**batch, head_mask=masks)
                if out.loss is None:
                    raise UsageError("head importance needs labelled batches (a 'labels' key)")
                grads = torch.autograd.grad(out.loss, masks)
                for total, grad in zip(totals, grads, strict=True):
                    total += grad.abs().double().cpu()
                seen += 1
    finally:
        model.train(was_training)
    if not seen:
        raise UsageError("head importance needs at least one batch of labelled examples")
    scores = np.full((len(masks), N), np.nan)
    for layer, total in enumerate(totals):
        values = total.numpy() / seen
        if normalize_layers:
            values = values / max(float(np.sqrt((values ** 2).sum())), 1e-20)
        alive = [h for h in range(N) if h not in model.config.pruned_heads.get(layer, ())]
        scores[layer, alive] = values
    return scores


def pruning_plan(importance: np.ndarray, fraction: float) -> dict[int, list[int]]:
    """The ``fraction`` of all heads (of the unpruned model, rounded) with the lowest
    importance, layer → heads; each layer's most important head is never chosen. NaN entries
    (heads pruned before) count as gone."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) \
            or not 0.0 < fraction < 1.0:
        raise UsageError(f"fraction={fraction!r}; expected a number strictly between 0 and 1 "
                         "(the share of all heads to remove)")
    alive = ~np.isnan(importance)
    wanted = round(fraction * importance.size) - int((~alive).sum())
    keepers = {(layer, int(np.nanargmax(row))) for layer, row in enumerate(importance)
               if alive[layer].any()}
    candidates = sorted(((float(importance[layer, head]), layer, head)
                         for layer, head in zip(*np.nonzero(alive), strict=True)
                         if (layer, head) not in keepers))
    plan: dict[int, list[int]] = {}
    for _, layer, head in candidates[:max(wanted, 0)]:
        plan.setdefault(int(layer), []).append(int(head))
    return {layer: sorted(heads) for layer, heads in sorted(plan.items())}


def prune_least_important(model: BertForSequenceClassification, importance: np.ndarray,
                          fraction: float) -> dict[int, list[int]]:
    """Prune ``model`` in place by :func:`pruning_plan`; returns the plan applied."""
    plan = pruning_plan(importance, fraction)
    model.prune_heads(plan)
    return plan


def load_task_model(model_dir: str | Path) -> BertForSequenceClassification:
    """A fine-tuned sequence classifier, or a :class:`UsageError` saying the directory has no
    task head (a bare encoder or a pretraining checkpoint: their classifier would be random,
    and so would every importance score)."""
    path = Path(model_dir)
    config = BertConfig.from_pretrained(path)
    architectures = config.extra.get("architectures") or []
    model_class = BertForSequenceClassification.for_family(config.model_type)
    if model_class.__name__ not in architectures or config.id2label is None:
        raise UsageError(f"{path}: no task head to prune for: config.json's architectures is "
                         f"{architectures} (expected {model_class.__name__} with id2label); "
                         "fine-tune a classifier first (bertkit finetune classify …)")
    model, report = model_class.from_pretrained(path, output_loading_info=True)
    fresh = [name for name in report.new if name.startswith("classifier.")]
    if fresh:
        raise UsageError(f"{path}: no task head to prune for: model.safetensors lacks the "
                         f"classifier weights ({', '.join(fresh)})")
    return model


def task_batches(model: BertForSequenceClassification, tokenizer: Tokenizer,
                 task_data: str | Path, *, text_column: str = "text",
                 label_column: str = "label", max_length: int = 128, batch_size: int = 16,
                 max_examples: int | None = None) -> list[dict[str, Tensor]]:
    """Labelled batches of ``task_data`` (CSV / TSV / JSONL / .tab) under the model's own
    label ids; a label the model was not trained on fails naming file and line."""
    examples = read_classification(task_data, text_column=text_column,
                                   label_column=label_column)[:max_examples]
    labels = LabelMap.from_config({"id2label": model.config.id2label})
    features = classification_features(tokenizer, examples, label_kind="multiclass",
                                       label_map=labels, max_length=max_length)
    pad = tokenizer.pad_token_id
    return [collate_classification(features, list(range(start, min(start + batch_size,
                                                                   len(features)))),
                                   pad_id=pad, label_kind="multiclass")
            for start in range(0, len(features), batch_size)]


def prune_model(model_dir: str | Path, task_data: str | Path, fraction: float,
                out: str | Path, **batching: Any) -> dict[str, Any]:
    """Score the heads of a fine-tuned classifier on ``task_data``, prune ``fraction`` of
    them, and write the smaller model (with its tokenizer) and ``importance.json`` to ``out``.
    Returns what ``importance.json`` holds."""
    pruning_plan(np.zeros((1, 2)), fraction)  # a bad fraction fails before any compute
    model = load_task_model(model_dir)
    tokenizer = Tokenizer.from_pretrained(model_dir)
    importance = head_importance(model, task_batches(model, tokenizer, task_data, **batching))
    plan = prune_least_important(model, importance, fraction)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    heads = model.config.num_attention_heads * model.config.num_hidden_layers
    summary = {"model": str(model_dir), "task_data": str(task_data), "fraction": fraction,
               "pruned_heads": {str(k): v for k, v in plan.items()},
               "heads_removed": sum(len(v) for v in plan.values()), "heads_total": heads,
               "importance": [[None if np.isnan(v) else round(float(v), 6) for v in row]
                              for row in importance]}
    write_json(out / "importance.json", summary)
    return summary
