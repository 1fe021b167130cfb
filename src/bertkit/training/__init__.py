"""One generic training loop; nothing in this package knows about BERT.

Read in this order: ``settings`` (what every run shares: RunSettings, TrainSettings) →
``config`` (TrainConfig) → ``schedule`` and ``optim`` (AdamW without decay
on biases and norms, warmup + decay) → ``sampler`` (resumable, sharded batches) → ``rng`` and
``checkpointing`` (what a checkpoint holds, written atomically) → ``distributed`` (torchrun +
DDP) → ``progress`` (status line, metrics.jsonl) → ``batches`` (the data and loss_fn contract),
``precision``, ``stopping`` (Ctrl-C), ``tallies`` and ``evaluation`` → ``trainer`` (the loop that
uses them all).

    loader = ResumableLoader(dataset, batch_size=32, collate_fn=collate, seed=0)
    trainer = Trainer(model, loss_fn, loader, TrainConfig(output_dir="runs/x", max_steps=10_000))
    trainer.fit()             # later: trainer.fit(resume=True)

where ``loss_fn(model, batch)`` returns ``(loss, {"metric": value, ...})``.
"""

from bertkit.training.batches import DataSource, LossFn, move_to_device
from bertkit.training.checkpointing import (
    Checkpoint,
    check_model_fits,
    list_checkpoints,
    load_model_weights,
    read_checkpoint,
    resolve_checkpoint,
)
from bertkit.training.config import TrainConfig
from bertkit.training.distributed import (
    DistContext,
    current_context,
    distributed,
    init_distributed,
    teardown,
)
from bertkit.training.optim import build_optimizer, param_groups
from bertkit.training.progress import MetricsLog, ProgressLine
from bertkit.training.rng import capture_rng, restore_rng, seed_everything
from bertkit.training.sampler import ResumableLoader
from bertkit.training.schedule import build_scheduler, lr_factor
from bertkit.training.settings import RunSettings, TrainSettings
from bertkit.training.trainer import FitResult, Trainer

__all__ = [
    "Checkpoint",
    "DataSource",
    "DistContext",
    "FitResult",
    "LossFn",
    "MetricsLog",
    "ProgressLine",
    "ResumableLoader",
    "RunSettings",
    "TrainConfig",
    "TrainSettings",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "capture_rng",
    "check_model_fits",
    "current_context",
    "distributed",
    "init_distributed",
    "list_checkpoints",
    "load_model_weights",
    "lr_factor",
    "move_to_device",
    "param_groups",
    "read_checkpoint",
    "resolve_checkpoint",
    "restore_rng",
    "seed_everything",
    "teardown",
]
