"""Batches from a map-style dataset that can stop anywhere and pick up at the same batch.

A ``DataLoader`` cannot say where it is: its sampler has run ahead by the prefetched batches,
and creating its iterator draws from torch's *global* generator (the workers' base seed), which
would shift every dropout mask after a resume. :class:`ResumableLoader` keeps the position as
``(epoch, batch)`` counted in batches actually *handed out*, derives each epoch's order from
``(seed, epoch)`` alone, and gives its ``DataLoader`` a private generator, so

* ``state_dict()`` taken between two batches, loaded into a fresh loader, yields the same next
  batch, in this process or after a restart;
* each rank reads its own shard, cut the way ``DistributedSampler`` cuts: rank *r* takes
  positions *r*, *r + W*, … of the epoch's order. Batch *j* of all ranks together is then
  exactly batch *j* of a single process whose batch is *W* times larger, which is what makes a
  2-process run reproduce a 1-process run.

Randomness inside ``collate_fn`` (dynamic masking, say) is restored exactly when it draws from
the global generators or from a generator handed to the trainer, and ``num_workers == 0``. With
worker processes, derive such randomness from the example itself instead (seed it with the
epoch and index) — the workers' own generators are not part of any checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from bertkit.errors import CheckpointError, UsageError


class ResumableLoader:
    """Seeded, sharded, resumable batches over ``dataset`` (anything with ``__len__`` and
    ``__getitem__``).

    Iterating yields the *rest of the current epoch*; the next ``iter()`` starts the following
    epoch, which is how the trainer walks through epochs. ``drop_last=True`` (for training)
    cuts every epoch to whole global batches, so all ranks take the same number of steps;
    ``drop_last=False`` (for evaluation) wraps round to pad the last batch of each rank.
    """

    def __init__(
        self,
        dataset: Dataset[Any] | Sequence[Any],
        batch_size: int,
        *,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise UsageError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
        if world_size is None:
            world_size = dist.get_world_size() if dist.is_initialized() else 1
        if rank is None:
            rank = dist.get_rank() if dist.is_initialized() else 0
        if not 0 <= rank < world_size:
            raise UsageError(f"rank {rank} is outside world size {world_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.collate_fn = collate_fn
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.epoch = 0
        self.batch = 0  # batches of the current epoch already handed out
        if len(self) == 0:
            global_batch = batch_size * world_size
            raise UsageError(
                f"dataset of {len(dataset)} examples is smaller than one global batch "
                f"({world_size} rank(s) × batch size {batch_size} = {global_batch})"
            )

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        n, w, b = len(self.dataset), self.world_size, self.batch_size
        if self.drop_last:
            return n // (w * b)
        return -(-n // (w * b)) if n else 0

    def epoch_order(self, epoch: int) -> list[int]:
        """This rank's example indices for ``epoch``, in order, already cut to whole batches."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(n).tolist()
        else:
            order = list(range(n))
        total = len(self) * self.batch_size * self.world_size
        if total > n:  # drop_last=False: wrap round so every rank gets full batches
            order = (order * (total // n + 1))[:total]
        return order[:total][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[Any]:
        order = self.epoch_order(self.epoch)
        batches = [
            order[i : i + self.batch_size]
            for i in range(self.batch * self.batch_size, len(order), self.batch_size)
        ]
        # A private generator, seeded by position: creating a DataLoader iterator must not
        # draw from torch's global generator (that would shift dropout after a resume).
        generator = torch.Generator().manual_seed(
            (self.seed * 1_000_003 + self.epoch * 10_007 + self.batch) % 2**63
        )
        loader = DataLoader(
            self.dataset,  # type: ignore[arg-type]
            batch_sampler=batches,
            collate_fn=self.collate_fn,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            generator=generator,
        )
        remaining = len(batches)
        for batch in loader:
            remaining -= 1
            if remaining == 0:  # point at the next epoch before handing out its last batch
                self.epoch, self.batch = self.epoch + 1, 0
            else:
                self.batch += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The position (next batch to hand out) and what it is measured against."""
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "seed": self.seed,
            "num_examples": len(self.dataset),
            "batch_size": self.batch_size,
            "world_size": self.world_size,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue where ``state`` left off; the saved seed wins (the order is part of a run).

        A different batch size or world size is translated through the number of examples the
        whole job had consumed in the epoch, since the epoch's global order does not depend on
        either.
        """
        try:
            epoch, batch, seed = int(state["epoch"]), int(state["batch"]), int(state["seed"])
            consumed = batch * int(state["batch_size"]) * int(state["world_size"])
            num_examples = int(state["num_examples"])
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"data position {dict(state)!r} is incomplete: {err}") from None
        if num_examples != len(self.dataset):
            raise CheckpointError(
                f"the data position was saved for a dataset of {num_examples} examples, but this "
                f"one has {len(self.dataset)}: resuming needs the same training data"
            )
        self.seed, self.epoch = seed, epoch
        self.batch = consumed // (self.batch_size * self.world_size)
        if self.batch >= len(self):
            self.epoch, self.batch = epoch + 1, 0
