"""Small, fast, fully seeded pieces for the training tests (and the torchrun script).

A tiny MLP with LayerNorm and dropout on a learnable synthetic classification task. Its data
pipeline draws from every generator a checkpoint must restore: Python's ``random`` and NumPy's
global state in ``__getitem__``, a private ``torch.Generator`` in the collate function, and
torch's global generator in dropout.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bertkit.training import ResumableLoader, TrainConfig, Trainer
from bertkit.training.batches import LOSS_ITEMS_METRIC

D_IN, N_CLASSES = 8, 4


class ToyNet(nn.Module):
    """x → Linear → LayerNorm → ReLU → Dropout → Linear (logits)."""

    def __init__(self, hidden: int = 16, dropout: float = 0.1) -> None:
        super().__init__()
        self.up = nn.Linear(D_IN, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(torch.relu(self.norm(self.up(x)))))


class ToyData(torch.utils.data.Dataset):
    """Gaussian inputs labelled by a fixed random linear map; optional input noise drawn from
    Python's and NumPy's global generators (augmentation the checkpoint must replay)."""

    def __init__(self, n: int, *, seed: int = 0, noise: bool = True) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, D_IN, generator=gen)
        weights = torch.randn(D_IN, N_CLASSES, generator=torch.Generator().manual_seed(42))
        self.y = (self.x @ weights).argmax(-1)
        self.noise = noise

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[index]
        if self.noise:
            scale = 1.0 + 0.05 * random.random()
            shift = torch.from_numpy(np.random.normal(0, 0.05, D_IN).astype(np.float32))
            x = x * scale + shift
        return x, self.y[index]


class Collate:
    """Stack examples; with a generator, add noise drawn from it (a private data-pipeline RNG)."""

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def __call__(self, items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
        x = torch.stack([item[0] for item in items])
        y = torch.stack([item[1] for item in items])
        if self.generator is not None:
            x = x + 0.05 * torch.randn(x.shape, generator=self.generator)
        return x, y


def loss_fn(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[Any, dict]:
    """Cross-entropy plus accuracy: the ``(loss, metrics)`` protocol."""
    x, y = batch
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    return loss, {"accuracy": (logits.argmax(-1) == y).float().mean()}


def item_mean_loss_fn(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
                      ) -> tuple[Any, dict]:
    """Cross-entropy averaged over the examples not of class 0 only: a mean over a number of
    items that varies from batch to batch (as a token loss over a batch's real target tokens),
    reported to the trainer as ``loss_items``."""
    x, y = batch
    target = torch.where(y == 0, torch.full_like(y, -100), y)
    loss = F.cross_entropy(model(x), target, ignore_index=-100)
    return loss, {LOSS_ITEMS_METRIC: (target != -100).sum()}


def make_trainer(
    output_dir: str | Path | None,
    *,
    loss: Callable[[nn.Module, Any], tuple[Any, dict]] = loss_fn,
    n: int = 40,
    batch_size: int = 8,
    model_seed: int = 0,
    hidden: int = 16,
    dropout: float = 0.1,
    noise: bool = True,
    eval_n: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    **config: Any,
) -> tuple[Trainer, list[float]]:
    """A Trainer on ToyNet/ToyData and the list its on_step_end callback fills with losses."""
    torch.manual_seed(model_seed)
    model = ToyNet(hidden=hidden, dropout=dropout)
    generator = torch.Generator().manual_seed(7) if noise else None
    loader = ResumableLoader(
        ToyData(n, noise=noise), batch_size, collate_fn=Collate(generator), seed=3,
        rank=rank, world_size=world_size,
    )
    eval_loader = None
    if eval_n:
        eval_loader = ResumableLoader(
            ToyData(eval_n, seed=1, noise=False), batch_size, collate_fn=Collate(),
            shuffle=False, drop_last=False, rank=rank, world_size=world_size,
        )
    settings: dict[str, Any] = {"max_steps": 12, "learning_rate": 1e-2, "progress": False,
                                "device": "cpu", "output_dir": output_dir}
    settings.update(config)
    trainer = Trainer(
        model, loss, loader, TrainConfig(**settings), eval_data=eval_loader,
        generators={"collate": generator} if generator is not None else None,
    )
    losses: list[float] = []
    trainer.add_callback("on_step_end", lambda _t, info: losses.append(info["loss"].item()))
    return trainer, losses
