"""The one configuration object of a training run.

Everything that decides *how* a model is trained (optimizer, schedule, precision, budgets, how
often to log, evaluate and checkpoint) lives here; *what* is trained (the model, the loss, the
data) is handed to :class:`~bertkit.training.trainer.Trainer` directly. Defaults follow BERT's
pretraining recipe where one exists (AdamW, β = (0.9, 0.999), ε = 1e-6, weight decay 0.01,
linear warmup then linear decay, gradient clipping at 1.0). The knobs every training run
shares (budget, learning rate, schedule, device, precision, …) are declared once, in
:class:`~bertkit.training.settings.TrainSettings`; this class adds the loop's own.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from bertkit.errors import ConfigError
from bertkit.training.settings import (
    PRECISIONS,
    SCHEDULES,
    Precision,
    Schedule,
    TrainSettings,
)

__all__ = ["PRECISIONS", "SCHEDULES", "Precision", "Schedule", "TrainConfig"]


@dataclass(kw_only=True)
class TrainConfig(TrainSettings):
    """How to train: optimizer, schedule, precision, budgets and bookkeeping.

    Steps count *optimizer* updates; one update consumes ``grad_accum_steps`` micro-batches
    from the data source on every rank, so the global batch is
    ``micro-batch size × grad_accum_steps × world size``.
    """

    # output_dir: where checkpoints (``checkpoints/step-XXXXXXXX/``) and ``metrics.jsonl`` go;
    # None keeps everything in memory (handy for tests), but nothing can then be resumed.
    # Training stops at max_steps or max_minutes, whichever comes first, and always saves.

    # AdamW details (no weight decay on biases and normalisation weights, see optim.py).
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-6  # BERT's value; PyTorch's default 1e-8 is for fp32-only training
    max_grad_norm: float | None = 1.0  # global-norm clipping; None turns it off
    min_lr_ratio: float = 0.0  # the schedule decays to min_lr_ratio × learning_rate
    ddp_find_unused_parameters: bool = False  # needed when some parameters get no gradient

    # Bookkeeping. 0 turns a periodic action off.
    log_every: int = 10  # steps between progress/JSONL records
    eval_every: int = 0  # steps between held-out evaluations
    eval_max_batches: int | None = None  # cap each evaluation (None = the whole eval source)
    checkpoint_every: int = 0  # steps between checkpoints (one is also saved when training stops)
    keep_checkpoints: int | None = 3  # keep the newest K checkpoint directories (None = all)

    def validate(self) -> TrainConfig:
        """Raise :class:`ConfigError` naming the first field that cannot work; return self."""

        def fail(field: str, expected: str) -> None:
            raise ConfigError(
                f"TrainConfig.{field} must be {expected}, got {getattr(self, field)!r}"
            )

        def positive_int(field: str, *, allow_zero: bool = False) -> None:
            value = getattr(self, field)
            low = 0 if allow_zero else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                fail(field, f"an integer ≥ {low}")

        positive_int("max_steps")
        if self.max_minutes is not None and not (
            isinstance(self.max_minutes, int | float) and self.max_minutes > 0
        ):
            fail("max_minutes", "a number of minutes > 0 (or None)")
        if not (isinstance(self.learning_rate, int | float) and self.learning_rate > 0):
            fail("learning_rate", "> 0")
        if not (isinstance(self.weight_decay, int | float) and self.weight_decay >= 0):
            fail("weight_decay", "≥ 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            fail("betas", "two numbers in [0, 1)")
        if not self.eps > 0:
            fail("eps", "> 0")
        if self.max_grad_norm is not None and not (
            isinstance(self.max_grad_norm, int | float)
            and math.isfinite(self.max_grad_norm)
            and self.max_grad_norm > 0
        ):
            fail("max_grad_norm", "a finite number > 0 (or None to disable clipping)")
        if self.schedule not in SCHEDULES:
            fail("schedule", f"one of {', '.join(SCHEDULES)}")
        positive_int("warmup_steps", allow_zero=True)
        if not 0 <= self.min_lr_ratio <= 1:
            fail("min_lr_ratio", "in [0, 1]")
        positive_int("grad_accum_steps")
        if self.precision not in PRECISIONS:
            fail("precision", f"one of {', '.join(PRECISIONS)}")
        if not isinstance(self.device, str) or not self.device:
            fail("device", 'a device string such as "auto", "cpu" or "cuda"')
        positive_int("seed", allow_zero=True)
        if self.threads is not None:
            positive_int("threads")
        for field in ("log_every", "eval_every", "checkpoint_every"):
            positive_int(field, allow_zero=True)
        if self.eval_max_batches is not None:
            positive_int("eval_max_batches")
        if self.keep_checkpoints is not None:
            positive_int("keep_checkpoints")
        if self.checkpoint_every and self.output_dir is None:
            fail("output_dir", "set when checkpoint_every > 0 (checkpoints need a directory)")
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy, recorded in every checkpoint's ``meta.json``."""
        data = asdict(self)
        data["output_dir"] = None if self.output_dir is None else str(self.output_dir)
        data["betas"] = list(self.betas)
        return data
