"""Multiple-choice data (SWAG / RACE / ARC style): JSONL ``{context, choices, label}`` → one
``(context, choice)`` sequence per choice → a ``(B, C, T)`` batch for
:class:`~bertkit.model.pretrained.BertForMultipleChoice`, which scores each choice and picks
the highest.

Every choice is encoded as the pair ``[CLS] context [SEP] choice [SEP]``; when a pair is longer
than the window the CONTEXT is cut (``truncation="only_first"``, as ``transformers``' multiple
-choice examples do): the choice is what is being judged, so it is kept whole. ``label`` is the
index of the right choice (0-based) or the right choice's text. Every example of a file has the
same number of choices (the model's ``(B, C)`` logits need it): the first line fixes it, and a
line that differs is named.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from bertkit.errors import DataFormatError, UsageError

if TYPE_CHECKING:
    from torch import nn

    from bertkit.tokenization import Tokenizer

__all__ = ["ChoiceExample", "ChoiceFeatures", "choice_features", "choice_records",
           "collate_choices", "read_choices"]


@dataclass(frozen=True)
class ChoiceExample:
    """One question: its context, the candidate choices, the right one's index when known."""

    context: str
    choices: tuple[str, ...]
    label: int | None = None
    path: Path | None = None
    line: int | None = None


def _example(record: Any, labelled: bool, path: Path, line: int) -> ChoiceExample:
    def fail(message: str) -> DataFormatError:
        return DataFormatError(message, path, line)
    if not isinstance(record, dict):
        raise fail(f"got {type(record).__name__}; expected a JSON object "
                   '{"context", "choices", "label"}')
    context, choices = record.get("context"), record.get("choices")
    if not isinstance(context, str) or not context.strip():
        raise fail('field "context": expected a non-empty string')
    if (not isinstance(choices, list) or len(choices) < 2
            or not all(isinstance(c, str) and c.strip() for c in choices)):
        raise fail('field "choices": expected a list of at least 2 non-empty strings')
    label = None
    if labelled:
        raw = record.get("label")
        if isinstance(raw, str) and raw in choices:
            label = choices.index(raw)
        elif isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < len(choices):
            label = raw
        else:
            raise fail(f'field "label" = {raw!r}: expected a choice index 0..{len(choices) - 1} '
                       "or the text of one of the choices")
    return ChoiceExample(context, tuple(choices), label, path, line)


def read_choices(path: str | Path, *, labelled: bool = True) -> list[ChoiceExample]:
    """The examples of a JSONL file (blank lines skipped); every mistake names its line."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("file not found; expected JSONL lines "
                              '{"context", "choices", "label"}', path)
    examples: list[ChoiceExample] = []
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"not JSON ({err.msg} at column {err.colno}); expected "
                                      '{"context", "choices", "label"}', path, number) from None
            example = _example(record, labelled, path, number)
            if examples and len(example.choices) != len(examples[0].choices):
                raise DataFormatError(
                    f"{len(example.choices)} choices; line {examples[0].line} has "
                    f"{len(examples[0].choices)} and every example of a file needs the same "
                    "number", path, number)
            examples.append(example)
    if not examples:
        raise DataFormatError('no examples; expected JSONL lines {"context", "choices", '
                              '"label"}', path)
    return examples


@dataclass
class ChoiceFeatures:
    """Per example, per choice: token ids and token type ids; the labels when known."""

    input_ids: list[list[list[int]]]
    token_type_ids: list[list[list[int]]]
    labels: list[int] | None

    def __len__(self) -> int:
        return len(self.input_ids)


def choice_features(tokenizer: Tokenizer, examples: Sequence[ChoiceExample], *,
                    max_length: int, labelled: bool = True) -> ChoiceFeatures:
    """Encode every ``(context, choice)`` pair, the context cut to fit ``max_length``."""
    if not examples:
        raise UsageError("no multiple-choice examples")
    width = len(examples[0].choices)
    if any(len(e.choices) != width for e in examples):
        raise UsageError("every example needs the same number of choices")
    contexts = [e.context for e in examples for _ in e.choices]
    choices = [c for e in examples for c in e.choices]
    encoded = tokenizer(contexts, choices, truncation="only_first", max_length=max_length)
    ids, types = encoded["input_ids"], encoded["token_type_ids"]
    labels = None
    if labelled:
        if any(e.label is None for e in examples):
            raise UsageError("labelled features need every example's label")
        labels = [int(e.label) for e in examples]  # type: ignore[arg-type]
    return ChoiceFeatures([list(ids[i:i + width]) for i in range(0, len(ids), width)],
                          [list(types[i:i + width]) for i in range(0, len(types), width)],
                          labels)


def collate_choices(features: ChoiceFeatures, indices: Sequence[int], *,
                    pad_id: int) -> dict[str, torch.Tensor]:
    """``input_ids``/``attention_mask``/``token_type_ids`` ``(B, C, T)`` padded to the longest
    choice of the batch, plus ``labels`` ``(B,)`` when known."""
    rows = [features.input_ids[i] for i in indices]
    width = max(len(ids) for choices in rows for ids in choices)
    shape = (len(rows), len(rows[0]), width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    types = torch.zeros(shape, dtype=torch.long)
    mask = torch.zeros(shape, dtype=torch.long)
    for b, index in enumerate(indices):
        for c, (ids, tt) in enumerate(zip(features.input_ids[index],
                                          features.token_type_ids[index], strict=True)):
            input_ids[b, c, :len(ids)] = torch.tensor(ids)
            types[b, c, :len(tt)] = torch.tensor(tt)
            mask[b, c, :len(ids)] = 1
    batch = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": types}
    if features.labels is not None:
        batch["labels"] = torch.tensor([features.labels[i] for i in indices])
    return batch


@torch.no_grad()
def choice_logits(model: nn.Module, features: ChoiceFeatures, *, pad_id: int,
                  batch_size: int, device: torch.device) -> np.ndarray:
    """``(E, C)`` logits of every example (the model in eval mode, batches of ``batch_size``)."""
    model.eval()
    rows = []
    for begin in range(0, len(features), batch_size):
        batch = collate_choices(features, range(begin, min(len(features), begin + batch_size)),
                                pad_id=pad_id)
        batch.pop("labels", None)
        out = model(**{k: v.to(device) for k, v in batch.items()})
        rows.append(out.logits.detach().float().cpu().numpy())
    return np.concatenate(rows)


def choice_records(examples: Sequence[ChoiceExample], logits: np.ndarray,
                   labelled: bool) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Per example ``{"line", "label" (index), "choice" (its text), "scores" (softmax)}``;
    with ``labelled`` also ``accuracy`` and ``total``."""
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    probs = shifted / shifted.sum(-1, keepdims=True)
    picks = logits.argmax(-1)
    records = [{"line": e.line, "label": int(pick), "choice": e.choices[int(pick)],
                "scores": [round(float(p), 6) for p in row]}
               for e, pick, row in zip(examples, picks, probs, strict=True)]
    if not labelled:
        return None, records
    gold = np.array([e.label for e in examples])
    return {"accuracy": float((picks == gold).mean()), "total": len(examples)}, records
