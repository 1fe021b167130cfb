"""The training loop. It knows nothing about BERT — or about any model.

The caller brings a model, a ``loss_fn`` and ``train_data`` (their contract is in
:mod:`bertkit.training.batches`) and a :class:`~bertkit.training.config.TrainConfig`:

``model``
    Any ``nn.Module``. The trainer moves it to the device, wraps it for DDP and/or
    ``torch.compile`` when asked, and always checkpoints the *plain* module.

A step is ``grad_accum_steps`` micro-batches (forward, backward, gradients summed; under DDP
gradients are all-reduced only on the last), then clipping, one AdamW update and one schedule
step. Around the steps: a progress line and ``metrics.jsonl`` every ``log_every`` steps, held-out
evaluation every ``eval_every``, a checkpoint every ``checkpoint_every`` and whenever training
stops (step budget, time budget, Ctrl-C/SIGTERM), and callbacks a caller can hang on four
events.

Exact resume: a checkpoint holds the model, optimizer, scheduler, grad scaler, step, every RNG
and the data position of every rank, taken *between* steps (:mod:`bertkit.training.resume`);
evaluation runs with the RNGs set aside and restored. Resuming therefore reproduces the
uninterrupted run's losses bit for bit on a deterministic device.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from bertkit.errors import CheckpointError, UsageError
from bertkit.inference.fastpath.quantized import is_quantized
from bertkit.training.batches import (
    LOSS_ITEMS_METRIC,
    DataSource,
    LossFn,
    call_loss_fn,
    move_to_device,
)
from bertkit.training.checkpointing import CHECKPOINTS_DIR, checkpoint_name, list_checkpoints
from bertkit.training.config import TrainConfig
from bertkit.training.distributed import DistContext, current_context, wrap_model
from bertkit.training.evaluation import evaluate_batches
from bertkit.training.optim import build_optimizer
from bertkit.training.precision import autocast, check_precision
from bertkit.training.progress import MetricsLog, ProgressLine
from bertkit.training.resume import load_state, save_state
from bertkit.training.rng import capture_rng, restore_rng, seed_everything
from bertkit.training.schedule import build_scheduler
from bertkit.training.stopping import StopRequests
from bertkit.training.tallies import Tallies, as_scalar

logger = logging.getLogger(__name__)

Event = Literal["on_step_end", "on_eval_end", "on_checkpoint", "on_fit_end"]
Callback = Callable[["Trainer", dict[str, Any]], None]
StopReason = Literal["max_steps", "time_budget", "interrupted", "requested"]

EVENTS: tuple[str, ...] = ("on_step_end", "on_eval_end", "on_checkpoint", "on_fit_end")
METRICS_FILE = "metrics.jsonl"


@dataclass
class FitResult:
    """How :meth:`Trainer.fit` ended."""

    step: int
    stop_reason: StopReason
    checkpoint: Path | None  # the checkpoint saved when training stopped (None: no output_dir)
    eval_metrics: dict[str, float] | None  # the last evaluation's results, if any ran


class Trainer:
    """Train ``model`` with ``loss_fn`` on ``train_data`` as ``config`` says.

    Args:
        model: the module to train (moved to the device in place).
        loss_fn: ``loss_fn(model, batch) -> (loss, metrics)``, see the module docstring.
        train_data: batches with a savable position (:class:`DataSource`).
        config: the run's settings; validated here.
        eval_data: held-out batches for :meth:`evaluate` (re-iterated each time).
        dist: this process's place in a ``torchrun`` job (:func:`~bertkit.training.distributed`);
            by default the already-open process group, or a single process.
        generators: private ``torch.Generator`` objects the data pipeline draws from, saved
            and restored with the global RNGs, by name.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        train_data: DataSource,
        config: TrainConfig,
        *,
        eval_data: Iterable[Any] | None = None,
        dist: DistContext | None = None,
        generators: Mapping[str, torch.Generator] | None = None,
    ) -> None:
        self.config = config.validate()
        if is_quantized(model):
            raise UsageError(f"{type(model).__name__} holds int8 layers (loaded with "
                             "quantize='int8'), which compute no gradients: train the float32 "
                             "model (load it without quantize) and quantise it for inference")
        config.apply_threads()
        for method in ("state_dict", "load_state_dict"):
            if not callable(getattr(train_data, method, None)):
                raise UsageError(
                    f"train_data ({type(train_data).__name__}) has no {method}(): the trainer "
                    "must save its position to resume; wrap a map-style dataset in "
                    "bertkit.training.ResumableLoader"
                )
        self.dist = dist if dist is not None else current_context(config.device)
        self.device = self.dist.device
        check_precision(config.precision, self.device)

        self.module = model.to(self.device)  # the plain module: what checkpoints hold
        self.loss_fn = loss_fn
        self.train_data = train_data
        self.eval_data = eval_data
        self.generators = dict(generators or {})

        self.optimizer = build_optimizer(self.module, learning_rate=config.learning_rate,
                                         weight_decay=config.weight_decay, betas=config.betas,
                                         eps=config.eps)
        self.scheduler = build_scheduler(self.optimizer, schedule=config.schedule,
                                         warmup_steps=config.warmup_steps,
                                         total_steps=config.max_steps,
                                         min_ratio=config.min_lr_ratio)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")

        wrapped = wrap_model(
            self.module, self.dist, find_unused_parameters=config.ddp_find_unused_parameters
        )
        self._ddp = wrapped if wrapped is not self.module else None
        self.model = torch.compile(wrapped) if config.compile else wrapped  # given to loss_fn
        self._eval_model: nn.Module | None = None

        self.step = 0
        self.output_dir = None if config.output_dir is None else Path(config.output_dir)
        self.checkpoint_root = (
            None if self.output_dir is None else self.output_dir / CHECKPOINTS_DIR
        )
        self.metrics_log = MetricsLog(
            self.output_dir / METRICS_FILE if self.output_dir and self.dist.is_main else None
        )
        self.progress = ProgressLine(
            config.max_steps, enabled=config.progress and self.dist.is_main
        )
        self.last_eval: dict[str, float] | None = None
        self._callbacks: dict[str, list[Callback]] = defaultdict(list)
        self._train_iter: Iterator[Any] | None = None
        self._last_saved_step: int | None = None
        self._last_eval_step: int | None = None
        self._in_step = False
        self._stop_requested = False
        self._snapshot: dict[str, Any] = {}
        self._step_loss = torch.zeros((), device=self.device)
        self._step_lr: float = self.optimizer.param_groups[0]["lr"]
        self.tallies = Tallies(self.device)

    # ------------------------------------------------------------------ public API

    def add_callback(self, event: Event, fn: Callback) -> None:
        """Call ``fn(trainer, info)`` on ``event`` (on every rank):

        * ``on_step_end``: ``info`` has ``step``, ``loss`` (this rank's mean micro-batch loss,
          a detached tensor: ``.item()`` it only if you need it, it waits for the device) and
          ``lr``; plus ``record``, the logged JSON record, on logging steps.
        * ``on_eval_end``: ``step``, ``metrics``.
        * ``on_checkpoint``: ``step``, ``path``.
        * ``on_fit_end``: ``result`` (a :class:`FitResult`).

        To stop early, call :meth:`request_stop` (works under DDP: ranks agree before the next
        step). Raising ``KeyboardInterrupt`` from a callback stops a single process as Ctrl-C
        does.
        """
        if event not in EVENTS:
            raise UsageError(f"unknown callback event {event!r}; expected one of {EVENTS}")
        self._callbacks[event].append(fn)

    def request_stop(self) -> None:
        """Stop after the current step, save a checkpoint and return from :meth:`fit` with
        ``stop_reason="requested"`` (early stopping, a callback's own budget, …)."""
        self._stop_requested = True

    def fit(self, resume: bool | str | Path = False) -> FitResult:
        """Train until ``max_steps``, the time budget or an interrupt; save a checkpoint.

        ``resume=True`` continues from the newest checkpoint in ``output_dir``; a path names a
        checkpoint (or a run directory). A fresh run refuses an ``output_dir`` that already
        holds checkpoints, so an old run is never silently mixed with a new one.
        """
        if resume:
            if (resume is True and self.checkpoint_root is not None
                    and not list_checkpoints(self.checkpoint_root)):
                raise CheckpointError(
                    f"{self.output_dir}: no checkpoint found to resume from (a run stopped "
                    "before it saved its first checkpoint leaves none): start it again "
                    "without resuming")
            self.load_checkpoint(None if resume is True else resume)
        elif self.step == 0:
            if self.checkpoint_root is not None and list_checkpoints(self.checkpoint_root):
                raise UsageError(
                    f"{self.output_dir} already holds checkpoints of an earlier run: pass "
                    "resume=True to continue it, or choose another output_dir"
                )
            if self.dist.is_main:
                self.metrics_log.truncate_after(0)
            seed_everything(self.config.seed + self.dist.rank)

        try:
            reason = self._loop()
            final_eval_due = self.eval_data is not None and self.config.eval_every > 0
            if reason == "max_steps" and final_eval_due and self._last_eval_step != self.step:
                self._run_eval()
            checkpoint = None
            if self.checkpoint_root is not None:
                if self._last_saved_step != self.step:
                    self.save_checkpoint()
                checkpoint = self.checkpoint_root / checkpoint_name(self.step)
        finally:
            self.progress.close()
            self.metrics_log.close()
        result = FitResult(self.step, reason, checkpoint, self.last_eval)
        if reason != "max_steps":
            self.progress.message(f"stopped at step {self.step} ({reason.replace('_', ' ')})")
        self._fire("on_fit_end", {"result": result})
        return result

    def _loop(self) -> StopReason:
        """Steps until a stop condition; Ctrl-C and SIGTERM end it between two steps."""
        started = time.monotonic()
        first_step = self.step
        self._stop_requested = False
        announce = self.progress.message
        with StopRequests(announce, allow_abort=not self.dist.is_distributed) as stop:
            try:
                while True:
                    reason = self._stop_reason(stop.requested, started)
                    if reason is not None:
                        return reason
                    self._train_step()
                    self._after_step(started, first_step)
            except KeyboardInterrupt:
                if self.dist.is_distributed:
                    raise  # ranks cannot agree on a save from here; SIGINT is handled above
                if self._in_step:
                    self._rollback_step()
                return "interrupted"

    def evaluate(self) -> dict[str, float]:
        """Mean loss and metrics over ``eval_data`` (at most ``eval_max_batches`` batches per
        rank), averaged over batches and ranks. Leaves every RNG, the eval data's position and
        the model's train/eval mode as it found them."""
        if self.eval_data is None:
            raise UsageError("evaluate() needs eval_data, which was not given to the Trainer")
        if self._eval_model is None:
            # The plain module (not DDP): evaluation needs no gradient sync, and ranks with
            # uneven eval shards must not meet in DDP's forward-pass collectives.
            self._eval_model = torch.compile(self.module) if self.config.compile else self.module
        return evaluate_batches(
            self._eval_model,
            self.loss_fn,
            self.eval_data,
            dist=self.dist,
            precision=self.config.precision,
            max_batches=self.config.eval_max_batches,
            generators=self.generators,
        )

    def save_checkpoint(self) -> Path:
        """Save the state after ``self.step`` steps (every rank must call this: RNG states and
        data positions are gathered from all of them; rank 0 writes)."""
        path = save_state(self)
        self._last_saved_step = self.step
        logger.info("saved checkpoint %s", path)
        self._fire("on_checkpoint", {"step": self.step, "path": path})
        return path

    def load_checkpoint(self, path: str | Path | None = None) -> Path:
        """Restore model, optimizer, scheduler, scaler, step, RNGs and data position from a
        checkpoint (default: the newest in ``output_dir``). Raises :class:`CheckpointError`
        naming the first parameter that does not fit when it was made for another model."""
        path = load_state(self, path)
        self._train_iter = None
        self._last_saved_step = self.step
        return path

    # ------------------------------------------------------------------ one step

    def _train_step(self) -> None:
        """``grad_accum_steps`` micro-batches, then one clipped optimizer update."""
        self._snapshot = {"rng": capture_rng(self.generators), "data": self.train_data.state_dict()}
        self._in_step = True
        accum = self.config.grad_accum_steps
        step_loss = torch.zeros((), device=self.device)
        weighted: list[bool] = []  # per micro-batch: did loss_fn report its loss items?
        items = torch.zeros((), device=self.device)
        for micro in range(accum):
            batch = move_to_device(self._next_batch(), self.device)
            # DDP all-reduces gradients in backward; only the last micro-batch needs it.
            sync = self._ddp is None or micro == accum - 1
            with contextlib.nullcontext() if sync else self._ddp.no_sync():  # type: ignore[union-attr]
                with autocast(self.config.precision, self.device):
                    loss, metrics = call_loss_fn(self.loss_fn, self.model, batch)
                count = metrics.get(LOSS_ITEMS_METRIC)
                weighted.append(count is not None)
                # A sum over items now, divided by the step's total once all ranks know it.
                share = loss * count if count is not None else loss / accum
                self.scaler.scale(share).backward()
            step_loss += share.detach().float()
            if count is not None:
                items += as_scalar(count, self.device)
            self.tallies.add_micro(metrics, batch)
        # This rank's mean loss, and its share of the mean over all ranks, which the log
        # record sums over ranks (and divides by their number).
        local_loss = logged_share = step_loss
        if any(weighted):
            if not all(weighted):
                raise UsageError(f"loss_fn reported {LOSS_ITEMS_METRIC!r} for some micro-batches "
                                 "of a step and not for others: report it for every batch")
            logged_share = step_loss * self._divide_gradients_by_items(items)
            local_loss = step_loss / items.clamp(min=1.0)
        if self.config.max_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            self.tallies.grad_norm = torch.nn.utils.clip_grad_norm_(
                self.module.parameters(), self.config.max_grad_norm
            )
        self._step_lr = self.optimizer.param_groups[0]["lr"]
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        self._in_step = False
        self._step_loss = local_loss
        self.tallies.add_step(logged_share)

    def _divide_gradients_by_items(self, items: torch.Tensor) -> torch.Tensor:
        """Turn the summed item losses' gradients into the gradient of the mean over every
        item of the step, on every rank; returns the factor applied. DDP has averaged the
        ranks' gradients (÷ world size), hence world size / all items."""
        total = self.dist.all_reduce_sum(items.clone())  # in place: keep the local count
        factor = self.dist.world_size / total.clamp(min=1.0)
        for parameter in self.module.parameters():
            if parameter.grad is not None:
                parameter.grad.mul_(factor.to(parameter.grad.dtype))
        return factor

    def _after_step(self, started: float, first_step: int) -> None:
        """After a step, in this order: log record, evaluation, callbacks, checkpoint (so a
        callback that consumes randomness or requests a stop is reflected in the checkpoint)."""
        cfg = self.config
        info: dict[str, Any] = {"step": self.step, "loss": self._step_loss, "lr": self._step_lr}
        if cfg.log_every and self.step % cfg.log_every == 0:
            info["record"] = self._log_train(started, first_step)
        if self.eval_data is not None and cfg.eval_every and self.step % cfg.eval_every == 0:
            self._run_eval()
        self._fire("on_step_end", info)
        if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
            self.save_checkpoint()

    def _stop_reason(self, requested: bool, started: float) -> StopReason | None:
        """Why to stop before the next step, agreed by all ranks (one tiny all-reduce)."""
        if self.step >= self.config.max_steps:
            return "max_steps"
        budget = self.config.max_minutes
        out_of_time = budget is not None and time.monotonic() - started >= budget * 60
        code = 3 if requested else 2 if self._stop_requested else 1 if out_of_time else 0
        code = self.dist.max_over_ranks(code)
        reasons: dict[int, StopReason | None] = {
            0: None, 1: "time_budget", 2: "requested", 3: "interrupted"
        }
        return reasons[code]

    def _rollback_step(self) -> None:
        """Undo a step interrupted half-way (before its update): drop its gradients and put the
        RNGs and data position back to the step's start, so the checkpoint is exact."""
        self.optimizer.zero_grad(set_to_none=True)
        restore_rng(self._snapshot["rng"], self.generators)
        self.train_data.load_state_dict(self._snapshot["data"])
        self._train_iter = None
        self._in_step = False
        self.tallies.reset()

    def _next_batch(self) -> Any:
        for _ in range(2):  # the current epoch's iterator, or else a new epoch's
            if self._train_iter is None:
                self._train_iter = iter(self.train_data)
            try:
                return next(self._train_iter)
            except StopIteration:
                self._train_iter = None
        raise UsageError("train_data yielded no batches (is the data smaller than one batch?)")

    # ------------------------------------------------------------------ bookkeeping

    def _log_train(self, started: float, first_step: int) -> dict[str, Any]:
        """Average the tallies over steps, micro-batches and ranks; write the JSONL record and
        the progress line (rank 0)."""
        tallies = self.tallies
        names = sorted(tallies.metric_sums)
        sums = [tallies.loss_sum, tallies.examples, *(tallies.metric_sums[n] for n in names)]
        local = torch.stack([as_scalar(value, self.device) for value in sums])
        totals = self.dist.all_reduce_sum(local).tolist()
        world = self.dist.world_size
        now = time.monotonic()
        elapsed = max(now - tallies.since, 1e-9)
        unit = "tokens" if tallies.counts_tokens else "samples"
        record: dict[str, Any] = {
            "kind": "train",
            "step": self.step,
            "loss": totals[0] / (tallies.steps * world),
            "lr": self._step_lr,
        }
        if tallies.grad_norm is not None:
            record["grad_norm"] = float(tallies.grad_norm)
        for name, total in zip(names, totals[2:], strict=True):
            record[name] = total / (tallies.micro * world)
        record[f"{unit}_per_s"] = totals[1] / elapsed
        record["elapsed_s"] = round(now - started, 3)
        self.metrics_log.write(record)
        rate = (self.step - first_step) / max(now - started, 1e-9)
        eta = (self.config.max_steps - self.step) / rate if rate > 0 else math.inf
        if self.config.max_minutes is not None:
            eta = min(eta, self.config.max_minutes * 60 - (now - started))
        shown = {"loss": record["loss"], "lr": record["lr"]}
        self.progress.update(self.step, shown, throughput=record[f"{unit}_per_s"], unit=unit,
                             eta_seconds=eta)
        self.tallies.reset()
        return record

    def _run_eval(self) -> None:
        metrics = self.evaluate()
        self.last_eval = metrics
        self._last_eval_step = self.step
        self.metrics_log.write({"kind": "eval", "step": self.step, **metrics})
        shown = " | ".join(f"{name} {value:.4f}" for name, value in metrics.items())
        self.progress.message(f"eval @ step {self.step}: {shown}")
        self._fire("on_eval_end", {"step": self.step, "metrics": metrics})

    def _fire(self, event: str, info: dict[str, Any]) -> None:
        for fn in self._callbacks[event]:
            fn(self, info)
