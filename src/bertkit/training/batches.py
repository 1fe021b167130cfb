"""What the trainer is given to train on: batches with a savable position, and a loss function.

Kept apart from the loop so that the data-side contract (:class:`DataSource`, how a batch moves
to the device, how its size is counted) reads on its own.

``loss_fn(model, batch) -> (loss, metrics)``
    Runs the forward pass and returns a scalar loss tensor (mean over the batch) and a dict of
    scalar metrics (floats or 0-d tensors; may be empty). It must call ``model(...)`` on the
    ``model`` it is given — under DDP that is the wrapper whose forward sets up the gradient
    all-reduce. The batch arrives already on the device. Two reserved metrics, summed rather
    than averaged: ``"tokens"``, the number of tokens in the batch, turns the throughput
    display from samples/s into tokens/s; ``"loss_items"``, the number of items (e.g. target
    tokens) the loss is a mean over, makes the trainer weigh each micro-batch and rank by it,
    so that gradient accumulation and DDP give the gradient (and the logged loss) of one
    large batch's mean even when its parts hold different numbers of items (what
    ``transformers`` does with ``num_items_in_batch``). Without it every micro-batch and rank
    weighs the same.

``train_data``
    An iterable of batches with ``state_dict()`` / ``load_state_dict()`` giving the position of
    the next batch (see :class:`DataSource`); :class:`~bertkit.training.sampler.ResumableLoader`
    is one for map-style datasets. An ``iter()`` that ends is an epoch; the trainer starts the
    next one. ``eval_data`` (optional) is any re-iterable of batches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from bertkit.errors import UsageError

Metrics = Mapping[str, float | torch.Tensor]
LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, Metrics]]
TOKENS_METRIC = "tokens"
LOSS_ITEMS_METRIC = "loss_items"
#: Metrics that are counts for the trainer, not values to average in a log record.
COUNT_METRICS = frozenset({TOKENS_METRIC, LOSS_ITEMS_METRIC})


@runtime_checkable
class DataSource(Protocol):
    """What the trainer needs from training data: batches, and a position it can save.

    ``state_dict()`` is called between steps and must describe the *next* batch ``iter()`` will
    produce after ``load_state_dict()`` on a fresh instance built the same way. Its values must
    be plain (ints, floats, strings, tensors, lists, dicts): checkpoints load with
    ``weights_only=True``.
    """

    def __iter__(self) -> Iterator[Any]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


def move_to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor on ``device``: tensors, mappings, (named)tuples, lists,
    dataclasses, and any object with its own ``.to(device)``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move_to_device(value, device) for value in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(move_to_device(value, device) for value in batch)
    if callable(getattr(batch, "to", None)):
        return batch.to(device)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        changes = {
            f.name: move_to_device(getattr(batch, f.name), device)
            for f in dataclasses.fields(batch)
            if f.init
        }
        return dataclasses.replace(batch, **changes)
    return batch


def leading_size(batch: Any) -> int:
    """Examples in a batch: the first dimension of the first tensor found (0 if none)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 0
    if isinstance(batch, Mapping):
        values: Iterable[Any] = batch.values()
    elif isinstance(batch, list | tuple):
        values = batch
    elif dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        values = (getattr(batch, f.name) for f in dataclasses.fields(batch))
    else:
        return 0
    for value in values:
        size = leading_size(value)
        if size:
            return size
    return 0


def call_loss_fn(loss_fn: LossFn, model: nn.Module, batch: Any) -> tuple[torch.Tensor, Metrics]:
    """``loss_fn(model, batch)``, checked: a wrong return shape fails here with a clear message
    rather than deep inside backward or the log record."""
    output = loss_fn(model, batch)
    if not (isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], Mapping)
            and isinstance(output[0], torch.Tensor) and output[0].numel() == 1):
        raise UsageError(
            "loss_fn(model, batch) must return (scalar loss tensor, dict of metrics), got "
            f"{type(output).__name__}"
        )
    return output[0].reshape(()), output[1]
