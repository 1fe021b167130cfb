"""Batches: pad and stack examples into tensors, and draw a fresh mask per batch.

A :class:`Batch` is what every training and inference step consumes. Two ways lead to one:

- :func:`collate` pads already-finished :class:`Example` s (e.g. statically masked
  sentence pairs read from shards) — it adds no randomness;
- :class:`DynamicMaskingCollator` pads raw id sequences and masks them on the spot, so every
  time a sequence is drawn it gets a new mask (RoBERTa's dynamic masking).

Padding goes to the longest sequence of the batch, optionally rounded up to a multiple of 8
(tensor cores and oneDNN kernels prefer such shapes), never to a fixed maximum: short batches
then cost short compute.

Legend: B batch, T tokens, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from bertkit.data.masking import IGNORE_INDEX, MaskingConfig, word_starts_from_continuation
from bertkit.errors import UsageError

IdSequence = Sequence[int] | Tensor


@dataclass
class Example:
    """One unpadded training example.

    ``mlm_labels`` is aligned with ``input_ids`` (:data:`IGNORE_INDEX` where nothing is
    predicted); ``token_type_ids`` defaults to all zeros (a single segment).
    """

    input_ids: Tensor  # (T,)
    token_type_ids: Tensor | None = None  # (T,)
    mlm_labels: Tensor | None = None  # (T,)
    next_sentence_label: int | None = None


@dataclass
class Batch:
    """Padded tensors for one step; optional fields are ``None`` when a task has no such label.

    ``next_sentence_labels`` is 1 for a random (NSP) or swapped (SOP) second segment, 0 for the
    true continuation — the convention of Google's ``is_random_next``.
    """

    input_ids: Tensor  # (B, T) long
    token_type_ids: Tensor  # (B, T) long
    attention_mask: Tensor  # (B, T) long, 1 = real token, 0 = padding
    mlm_labels: Tensor | None = None  # (B, T) long, IGNORE_INDEX where not predicted
    next_sentence_labels: Tensor | None = None  # (B,) long

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device`` (``non_blocking`` pays off from pinned memory)."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Pinned copy; ``DataLoader(pin_memory=True)`` calls this on custom batch types."""
        return self._map(Tensor.pin_memory)

    def _map(self, fn: Any) -> Batch:
        return replace(self, **{f.name: fn(getattr(self, f.name)) for f in fields(self)
                                if getattr(self, f.name) is not None})


def pad_sequences(sequences: Sequence[IdSequence], *, pad_value: int,
                  pad_to_multiple_of: int | None = None) -> Tensor:
    """Stack variable-length id sequences into a (B, T) long tensor, right-padded.

    ``T`` is the longest length, rounded up to ``pad_to_multiple_of`` when given.
    """
    if not sequences:
        raise UsageError("cannot pad an empty list of sequences into a batch")
    rows = [torch.as_tensor(s, dtype=torch.long).reshape(-1) for s in sequences]
    out = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=pad_value)
    if pad_to_multiple_of and out.shape[1] % pad_to_multiple_of:
        extra = pad_to_multiple_of - out.shape[1] % pad_to_multiple_of
        out = torch.nn.functional.pad(out, (0, extra), value=pad_value)
    return out


def collate(examples: Sequence[Example], *, pad_id: int,
            pad_to_multiple_of: int | None = None) -> Batch:
    """Pad finished examples into a :class:`Batch`; labels present on all or none of them.

    Raises:
        UsageError: the list is empty, or only some examples carry a given label.
    """
    if not examples:
        raise UsageError("cannot collate an empty list of examples")
    input_ids = pad_sequences([e.input_ids for e in examples], pad_value=pad_id,
                              pad_to_multiple_of=pad_to_multiple_of)
    attention_mask = pad_sequences([torch.ones(len(e.input_ids), dtype=torch.long)
                                    for e in examples], pad_value=0,
                                   pad_to_multiple_of=pad_to_multiple_of)
    types = [e.token_type_ids if e.token_type_ids is not None
             else torch.zeros(len(e.input_ids), dtype=torch.long) for e in examples]
    token_type_ids = pad_sequences(types, pad_value=0, pad_to_multiple_of=pad_to_multiple_of)
    mlm = _all_or_none(examples, "mlm_labels")
    nsp = _all_or_none(examples, "next_sentence_label")
    return Batch(
        input_ids=input_ids,
        token_type_ids=token_type_ids,
        attention_mask=attention_mask,
        mlm_labels=None if mlm is None else pad_sequences(
            mlm, pad_value=IGNORE_INDEX, pad_to_multiple_of=pad_to_multiple_of),
        next_sentence_labels=None if nsp is None else torch.tensor(nsp, dtype=torch.long),
    )


def _all_or_none(examples: Sequence[Example], name: str) -> list[Any] | None:
    values = [getattr(e, name) for e in examples]
    present = sum(v is not None for v in values)
    if present == 0:
        return None
    if present != len(values):
        raise UsageError(f"{present} of {len(values)} examples have {name}; a batch needs all "
                         "or none")
    return values


class DynamicMaskingCollator:
    """``DataLoader`` ``collate_fn`` that masks afresh every time a batch is drawn.

    Takes a list of token-id sequences (e.g. from :func:`~bertkit.data.instances.pack_sequences`)
    and returns a :class:`Batch` with ``mlm_labels`` and no NSP labels. All randomness comes
    from one seeded generator, so a run is reproducible; :meth:`state_dict` /
    :meth:`load_state_dict` carry it through a checkpoint for exact resume.

    With ``DataLoader(num_workers>0)`` each worker holds a copy of the collator: on first use in
    a worker the generator is re-seeded with ``seed + 1 + worker_id`` so workers do not repeat
    each other's masks (reproducible for a fixed worker count).

    Args:
        masking: the masking settings (validated here).
        pad_id: padding id.
        seed: seed of the collator's generator.
        word_continuation: (V,) bool table of continuation-piece ids for whole-word masking.
        pad_to_multiple_of: round the padded length up to this multiple.
    """

    def __init__(self, masking: MaskingConfig, *, pad_id: int, seed: int,
                 word_continuation: Tensor | None = None,
                 pad_to_multiple_of: int | None = None) -> None:
        self.masking = masking.validate()
        self.pad_id = pad_id
        self.seed = seed
        self.word_continuation = word_continuation
        self.pad_to_multiple_of = pad_to_multiple_of
        self.generator = torch.Generator().manual_seed(seed)
        self._worker_id: int | None = None

    def __call__(self, sequences: Sequence[IdSequence]) -> Batch:
        self._reseed_in_worker()
        input_ids = pad_sequences(sequences, pad_value=self.pad_id,
                                  pad_to_multiple_of=self.pad_to_multiple_of)
        attention_mask = pad_sequences([torch.ones(len(s), dtype=torch.long) for s in sequences],
                                       pad_value=0, pad_to_multiple_of=self.pad_to_multiple_of)
        word_starts = None
        if self.word_continuation is not None:
            word_starts = word_starts_from_continuation(input_ids, self.word_continuation)
        masked, labels = self.masking.apply(input_ids, generator=self.generator,
                                            attention_mask=attention_mask, word_starts=word_starts)
        return Batch(input_ids=masked, token_type_ids=torch.zeros_like(masked),
                     attention_mask=attention_mask, mlm_labels=labels)

    def state_dict(self) -> dict[str, Any]:
        """The generator state, for a training checkpoint."""
        return {"seed": self.seed, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where the saved collator stopped."""
        self.seed = int(state["seed"])
        self.generator.set_state(state["generator"])

    def _reseed_in_worker(self) -> None:
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker_id != info.id:
            self._worker_id = info.id
            self.generator.manual_seed(self.seed + 1 + info.id)
