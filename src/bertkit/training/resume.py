"""What a checkpoint of the training loop holds, and how a run continues from one.

A checkpoint is taken *between* steps and holds everything the next step depends on: the
model, optimizer, scheduler and grad scaler, the step, and for every rank its RNG states, data
position and the log interval's running sums (gathered to rank 0, which writes). Restoring all
of it is what makes a resumed run reproduce the uninterrupted one's losses bit for bit on a
deterministic device. The files themselves (names, atomic writes, retention) are
:mod:`bertkit.training.checkpointing`'s.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bertkit.errors import CheckpointError, UsageError
from bertkit.training.checkpointing import (
    check_model_fits,
    checkpoint_name,
    read_checkpoint,
    save_checkpoint,
)
from bertkit.training.rng import capture_rng, restore_rng

if TYPE_CHECKING:
    from bertkit.training.trainer import Trainer

logger = logging.getLogger(__name__)

STATE_FORMAT = 1
"""Version of the training-state layout, written into every checkpoint."""


def save_state(trainer: Trainer) -> Path:
    """Write the checkpoint of ``trainer.step`` (every rank calls this; rank 0 writes) and
    return its path; a failed write raises on every rank."""
    if trainer.checkpoint_root is None:
        raise UsageError("TrainConfig.output_dir is None: nowhere to save a checkpoint")
    dist = trainer.dist
    local = {
        "rng": capture_rng(trainer.generators),
        "data": trainer.train_data.state_dict(),
        "tallies": trainer.tallies.state_dict(),
    }
    per_rank = dist.all_gather(local)
    error: CheckpointError | None = None
    path = trainer.checkpoint_root / checkpoint_name(trainer.step)
    if dist.is_main:
        training_state = {
            "format": STATE_FORMAT,
            "step": trainer.step,
            "optimizer": trainer.optimizer.state_dict(),
            "scheduler": trainer.scheduler.state_dict(),
            "scaler": trainer.scaler.state_dict(),
            "world_size": dist.world_size,
            "ranks": per_rank,
        }
        meta = {
            "format": STATE_FORMAT,
            "world_size": dist.world_size,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": trainer.config.to_dict(),
        }
        try:
            path = save_checkpoint(
                trainer.checkpoint_root,
                trainer.step,
                model_state=trainer.module.state_dict(),
                training_state=training_state,
                meta=meta,
                keep=trainer.config.keep_checkpoints,
            )
        except CheckpointError as err:
            error = err
    # Every rank learns whether rank 0 succeeded (this doubles as the barrier after a save).
    failed = dist.max_over_ranks(1 if error is not None else 0)
    if error is not None:
        raise error
    if failed:
        raise CheckpointError(f"rank 0 could not save the checkpoint of step {trainer.step}")
    return path


def load_state(trainer: Trainer, path: str | Path | None) -> Path:
    """Restore ``trainer`` from the checkpoint at ``path`` (default: the newest in its
    ``output_dir``) and return the checkpoint's path."""
    if path is None:
        if trainer.checkpoint_root is None:
            raise UsageError("resume needs TrainConfig.output_dir or a checkpoint path")
        path = trainer.output_dir
    checkpoint = read_checkpoint(path, map_location="cpu")
    check_model_fits(checkpoint.model_state, trainer.module, checkpoint.path)
    state = checkpoint.training_state
    try:
        trainer.module.load_state_dict(checkpoint.model_state)
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"] and trainer.scaler.is_enabled():
            trainer.scaler.load_state_dict(state["scaler"])
        ranks = state["ranks"]
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"{checkpoint.path}: training state does not fit this run: {err}"
        ) from None
    dist = trainer.dist
    if len(ranks) != dist.world_size:
        logger.warning(
            "checkpoint %s was saved by %d process(es), this run has %d: data positions are "
            "translated but RNG streams differ, so the continuation is not bit-exact",
            checkpoint.path, len(ranks), dist.world_size,
        )
    mine = ranks[dist.rank] if dist.rank < len(ranks) else ranks[0]
    restore_rng(mine["rng"], trainer.generators)
    trainer.train_data.load_state_dict(mine["data"])
    trainer.step = checkpoint.step
    if dist.is_main:
        trainer.metrics_log.truncate_after(trainer.step)
    trainer.tallies.reset()
    if len(ranks) == dist.world_size:
        trainer.tallies.load_state_dict(mine.get("tallies"))
    return checkpoint.path
