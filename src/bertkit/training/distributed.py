"""Many processes through ``torchrun`` and ``torch.distributed`` (DDP), nothing home-made.

``torchrun --nproc_per_node N train.py`` starts N copies of a script and tells each who it is
through the environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, plus the rendezvous address).
This module turns that environment into a :class:`DistContext`, opens the process group (NCCL
between GPUs, Gloo between CPU processes), and offers the few collectives the trainer needs as
methods that are no-ops in a single process, so the training loop has no ``if distributed``
branches of its own::

    with distributed(config.device) as ctx:
        Trainer(model, loss_fn, data, config, dist=ctx).fit()

Only rank 0 writes files; every rank reads its own shard of the data
(:class:`~bertkit.training.sampler.ResumableLoader` shards by rank).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from bertkit.errors import UsageError
from bertkit.training.device import resolve_device

_ENV_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"environment variable {name}={raw!r} must be an integer") from None


@dataclass(frozen=True)
class DistContext:
    """Who this process is in the job, and the collectives the trainer uses.

    Built by :func:`init_distributed` / :func:`current_context`; a default instance is a single
    process on the CPU.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs and progress."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks in place (and return it)."""
        if self.is_distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def max_over_ranks(self, value: int) -> int:
        """The largest ``value`` any rank holds, on every rank: how ranks agree to stop
        together (a time budget or Ctrl-C seen by one rank stops all at the same step)."""
        if not self.is_distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.int64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (pickled: use for small state, not tensors)."""
        if not self.is_distributed:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered


def _context_from_env(device: str) -> DistContext:
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size < 1 or not 0 <= rank < world_size:
        raise UsageError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world_size}")
    return DistContext(rank, local_rank, world_size, resolve_device(device, local_rank))


def init_distributed(device: str = "auto", *, backend: str | None = None) -> DistContext:
    """Read the torchrun environment and, when ``WORLD_SIZE`` > 1, open the process group.

    The backend defaults to NCCL for GPUs and Gloo for CPUs. Rendezvous details
    (``MASTER_ADDR``, ``MASTER_PORT``) come from the environment torchrun prepared.
    """
    ctx = _context_from_env(device)
    if ctx.is_distributed and not dist.is_initialized():
        if ctx.device.type == "cuda":
            torch.cuda.set_device(ctx.device)
        backend = backend or ("nccl" if ctx.device.type == "cuda" else "gloo")
        dist.init_process_group(
            backend=backend,
            rank=ctx.rank,
            world_size=ctx.world_size,
            device_id=ctx.device if ctx.device.type == "cuda" else None,
        )
    return ctx


def teardown(*, wait_for_peers: bool = True) -> None:
    """Close the process group, so every rank exits cleanly. Waiting for the peers first keeps
    a fast rank from leaving while others still talk to it; after an error that wait could
    hang (a peer may be gone), so it is skipped."""
    if dist.is_initialized():
        if wait_for_peers:
            with contextlib.suppress(Exception):
                dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def distributed(device: str = "auto", *, backend: str | None = None) -> Iterator[DistContext]:
    """:func:`init_distributed` for the block, then :func:`teardown` of a group it opened."""
    already = dist.is_initialized()
    ctx = init_distributed(device, backend=backend)
    try:
        yield ctx
    except BaseException:
        if not already:
            teardown(wait_for_peers=False)
        raise
    if not already:
        teardown()


def current_context(device: str = "auto") -> DistContext:
    """The context of an already-open process group, or of a single process.

    Refuses the silent mistake of running under torchrun without a process group, where every
    rank would train alone on its own copy of the model.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = _env_int("LOCAL_RANK", rank)
        return DistContext(rank, local_rank, world, resolve_device(device, local_rank))
    if _env_int("WORLD_SIZE", 1) > 1:
        raise UsageError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} (torchrun?) but torch.distributed is not "
            "initialized; wrap training in `with bertkit.training.distributed(...) as ctx:` "
            "and pass dist=ctx"
        )
    return DistContext(device=resolve_device(device, 0))


def wrap_model(module: nn.Module, ctx: DistContext, *, find_unused_parameters: bool = False
               ) -> nn.Module:
    """``DistributedDataParallel(module)`` in a multi-process job; the module itself otherwise.

    DDP broadcasts rank 0's weights at construction, so every rank starts identical even if
    each initialised its own copy differently.
    """
    if not ctx.is_distributed:
        return module
    device_ids = [ctx.device] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(
        module, device_ids=device_ids, find_unused_parameters=find_unused_parameters
    )
