"""The training loop. It knows nothing about BERT — or about any model.

The caller brings three things and a :class:`~bertkit.training.config.TrainConfig`:

``model``
    Any ``nn.Module``. The trainer moves it to the device, wraps it for DDP and/or
    ``torch.compile`` when asked, and always checkpoints the *plain* module.

``loss_fn(model, batch) -> (loss, metrics)``
    Runs the forward pass and returns a scalar loss tensor (mean over the batch) and a dict of
    scalar metrics (floats or 0-d tensors; may be empty). It must call ``model(...)`` on the
    ``model`` it is given — under DDP that is the wrapper whose forward sets up the gradient
    all-reduce. The batch arrives already on the device. One reserved metric: ``"tokens"``,
    the number of tokens in the batch, is summed rather than averaged and turns the
    throughput display from samples/s into tokens/s.

``train_data``
    An iterable of batches with ``state_dict()`` / ``load_state_dict()`` giving the position of
    the next batch (see :class:`DataSource`); :class:`~bertkit.training.sampler.ResumableLoader`
    is one for map-style datasets. An ``iter()`` that ends is an epoch; the trainer starts the
    next one. ``eval_data`` (optional) is any re-iterable of batches.

A step is ``grad_accum_steps`` micro-batches (forward, backward, gradients summed; under DDP
gradients are all-reduced only on the last), then clipping, one AdamW update and one schedule
step. Around the steps: a progress line and ``metrics.jsonl`` every ``log_every`` steps, held-out
evaluation every ``eval_every``, a checkpoint every ``checkpoint_every`` and whenever training
stops (step budget, time budget, Ctrl-C/SIGTERM), and callbacks a caller can hang on four
events.

Exact resume: a checkpoint holds the model, optimizer, scheduler, grad scaler, step, every RNG
and the data position of every rank, taken *between* steps; evaluation runs with the RNGs set
aside and restored. Resuming therefore reproduces the uninterrupted run's losses bit for bit on
a deterministic device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import nn

from bertkit.errors import CheckpointError, ConfigError, UsageError
from bertkit.training.checkpointing import (
    CHECKPOINTS_DIR,
    check_model_fits,
    checkpoint_name,
    list_checkpoints,
    read_checkpoint,
    save_checkpoint,
)
from bertkit.training.config import TrainConfig
from bertkit.training.distributed import DistContext, current_context, wrap_model
from bertkit.training.optim import build_optimizer
from bertkit.training.progress import MetricsLog, ProgressLine
from bertkit.training.rng import capture_rng, preserved_rng, restore_rng, seed_everything
from bertkit.training.schedule import build_scheduler

logger = logging.getLogger(__name__)

Metrics = Mapping[str, float | torch.Tensor]
LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, Metrics]]
Event = Literal["on_step_end", "on_eval_end", "on_checkpoint", "on_fit_end"]
Callback = Callable[["Trainer", dict[str, Any]], None]
StopReason = Literal["max_steps", "time_budget", "interrupted", "requested"]

EVENTS: tuple[str, ...] = ("on_step_end", "on_eval_end", "on_checkpoint", "on_fit_end")
METRICS_FILE = "metrics.jsonl"
TOKENS_METRIC = "tokens"
_STATE_FORMAT = 1


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


@dataclass
class FitResult:
    """How :meth:`Trainer.fit` ended."""

    step: int
    stop_reason: StopReason
    checkpoint: Path | None  # the checkpoint saved when training stopped (None: no output_dir)
    eval_metrics: dict[str, float] | None  # the last evaluation's results, if any ran


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


def _leading_size(batch: Any) -> int:
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
        size = _leading_size(value)
        if size:
            return size
    return 0


def _to_cpu(value: float | torch.Tensor) -> float | torch.Tensor:
    return value.cpu() if isinstance(value, torch.Tensor) else value


def _to_device(value: float | torch.Tensor, device: torch.device) -> float | torch.Tensor:
    return value.to(device) if isinstance(value, torch.Tensor) else value


def _check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"TrainConfig.precision='fp16' needs a CUDA device (loss scaling with GradScaler); "
            f"the device is {device}: use 'bf16' or 'fp32'"
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"TrainConfig.precision='bf16' is not supported by {torch.cuda.get_device_name()}: "
            "use 'fp16' or 'fp32'"
        )


class _StopRequests:
    """SIGINT (Ctrl-C) and SIGTERM become a flag the loop reads between steps, so the step in
    flight finishes and the checkpoint is exact. Handlers are only installed from the main
    thread (Python's rule).

    In a single process a second Ctrl-C, pressed after the message, raises KeyboardInterrupt at
    once. Under torchrun a Ctrl-C reaches each worker twice (from the terminal and forwarded by
    the launcher) and a rank cannot abort alone, so repeats are ignored there; torchrun itself
    kills workers that outlive its grace period.
    """

    _REPEAT_AFTER_S = 1.0  # a second signal sooner than this is the same Ctrl-C, delivered twice

    def __init__(self, announce: Callable[[str], None], *, allow_abort: bool) -> None:
        self.requested = False
        self._announce = announce
        self._allow_abort = allow_abort
        self._first_at = 0.0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            repeated = time.monotonic() - self._first_at > self._REPEAT_AFTER_S
            if self._allow_abort and signum == signal.SIGINT and repeated:
                raise KeyboardInterrupt
            return
        self.requested = True
        self._first_at = time.monotonic()
        again = " (Ctrl-C again to abort now)" if self._allow_abort else ""
        self._announce(
            f"{signal.Signals(signum).name}: stopping after this step and saving a checkpoint"
            + again
        )

    def __enter__(self) -> _StopRequests:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


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
        for method in ("state_dict", "load_state_dict"):
            if not callable(getattr(train_data, method, None)):
                raise UsageError(
                    f"train_data ({type(train_data).__name__}) has no {method}(): the trainer "
                    "must save its position to resume; wrap a map-style dataset in "
                    "bertkit.training.ResumableLoader"
                )
        self.dist = dist if dist is not None else current_context(config.device)
        self.device = self.dist.device
        _check_precision(config.precision, self.device)

        self.module = model.to(self.device)  # the plain module: what checkpoints hold
        self.loss_fn = loss_fn
        self.train_data = train_data
        self.eval_data = eval_data
        self.generators = dict(generators or {})

        self.optimizer = build_optimizer(
            self.module,
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay,
            betas=config.betas,
            eps=config.eps,
        )
        self.scheduler = build_scheduler(
            self.optimizer,
            schedule=config.schedule,
            warmup_steps=config.warmup_steps,
            total_steps=config.max_steps,
            min_ratio=config.min_lr_ratio,
        )
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
        self._counts_tokens = False  # loss_fn reports "tokens": throughput in tokens/s
        self._reset_tallies()

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
        with _StopRequests(announce, allow_abort=not self.dist.is_distributed) as stop:
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

    @torch.no_grad()
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
        position = self.eval_data.state_dict() if hasattr(self.eval_data, "state_dict") else None
        was_training = self.module.training
        self.module.eval()
        sums: dict[str, float | torch.Tensor] = {}
        batches = 0
        try:
            with preserved_rng(self.generators):
                limit = self.config.eval_max_batches
                for batch in itertools.islice(self.eval_data, limit):
                    batch = move_to_device(batch, self.device)
                    with self._autocast():
                        loss, metrics = self._call_loss_fn(self._eval_model, batch)
                    for name, value in {"loss": loss, **metrics}.items():
                        if name != TOKENS_METRIC:
                            sums[name] = self._add(sums.get(name, 0.0), value)
                    batches += 1
        finally:
            self.module.train(was_training)
            if position is not None:
                self.eval_data.load_state_dict(position)  # type: ignore[attr-defined]
        names = sorted(sums)
        totals = torch.stack([self._as_scalar(v) for v in [*(sums[n] for n in names), batches]])
        totals = self.dist.all_reduce_sum(totals).tolist()
        if totals[-1] == 0:
            raise UsageError("eval_data yielded no batches")
        return {name: value / totals[-1] for name, value in zip(names, totals, strict=False)}

    def save_checkpoint(self) -> Path:
        """Save the state after ``self.step`` steps (every rank must call this: RNG states and
        data positions are gathered from all of them; rank 0 writes)."""
        if self.checkpoint_root is None:
            raise UsageError("TrainConfig.output_dir is None: nowhere to save a checkpoint")
        local = {
            "rng": capture_rng(self.generators),
            "data": self.train_data.state_dict(),
            "tallies": self._tallies_state(),
        }
        per_rank = self.dist.all_gather(local)
        error: CheckpointError | None = None
        path = self.checkpoint_root / checkpoint_name(self.step)
        if self.dist.is_main:
            training_state = {
                "format": _STATE_FORMAT,
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "world_size": self.dist.world_size,
                "ranks": per_rank,
            }
            meta = {
                "format": _STATE_FORMAT,
                "world_size": self.dist.world_size,
                "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "config": self.config.to_dict(),
            }
            try:
                path = save_checkpoint(
                    self.checkpoint_root,
                    self.step,
                    model_state=self.module.state_dict(),
                    training_state=training_state,
                    meta=meta,
                    keep=self.config.keep_checkpoints,
                )
            except CheckpointError as err:
                error = err
        # Every rank learns whether rank 0 succeeded (this doubles as the barrier after a save).
        failed = self.dist.max_over_ranks(1 if error is not None else 0)
        if error is not None:
            raise error
        if failed:
            raise CheckpointError(f"rank 0 could not save the checkpoint of step {self.step}")
        self._last_saved_step = self.step
        logger.info("saved checkpoint %s", path)
        self._fire("on_checkpoint", {"step": self.step, "path": path})
        return path

    def load_checkpoint(self, path: str | Path | None = None) -> Path:
        """Restore model, optimizer, scheduler, scaler, step, RNGs and data position from a
        checkpoint (default: the newest in ``output_dir``). Raises :class:`CheckpointError`
        naming the first parameter that does not fit when it was made for another model."""
        if path is None:
            if self.checkpoint_root is None:
                raise UsageError("resume needs TrainConfig.output_dir or a checkpoint path")
            path = self.output_dir
        checkpoint = read_checkpoint(path, map_location="cpu")
        check_model_fits(checkpoint.model_state, self.module, checkpoint.path)
        state = checkpoint.training_state
        try:
            self.module.load_state_dict(checkpoint.model_state)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if state["scaler"] and self.scaler.is_enabled():
                self.scaler.load_state_dict(state["scaler"])
            ranks = state["ranks"]
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(
                f"{checkpoint.path}: training state does not fit this run: {err}"
            ) from None
        if len(ranks) != self.dist.world_size:
            logger.warning(
                "checkpoint %s was saved by %d process(es), this run has %d: data positions are "
                "translated but RNG streams differ, so the continuation is not bit-exact",
                checkpoint.path, len(ranks), self.dist.world_size,
            )
        mine = ranks[self.dist.rank] if self.dist.rank < len(ranks) else ranks[0]
        restore_rng(mine["rng"], self.generators)
        self.train_data.load_state_dict(mine["data"])
        self._train_iter = None
        self.step = checkpoint.step
        self._last_saved_step = self.step
        if self.dist.is_main:
            self.metrics_log.truncate_after(self.step)
        self._reset_tallies()
        if len(ranks) == self.dist.world_size:
            self._load_tallies(mine.get("tallies"))
        return checkpoint.path

    # ------------------------------------------------------------------ one step

    def _train_step(self) -> None:
        """``grad_accum_steps`` micro-batches, then one clipped optimizer update."""
        self._snapshot = {"rng": capture_rng(self.generators), "data": self.train_data.state_dict()}
        self._in_step = True
        accum = self.config.grad_accum_steps
        step_loss = torch.zeros((), device=self.device)
        for micro in range(accum):
            batch = move_to_device(self._next_batch(), self.device)
            # DDP all-reduces gradients in backward; only the last micro-batch needs it.
            sync = self._ddp is None or micro == accum - 1
            with contextlib.nullcontext() if sync else self._ddp.no_sync():  # type: ignore[union-attr]
                with self._autocast():
                    loss, metrics = self._call_loss_fn(self.model, batch)
                self.scaler.scale(loss / accum).backward()
            step_loss += loss.detach().float()
            self._tally(metrics, batch)
        if self.config.max_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            self._grad_norm = torch.nn.utils.clip_grad_norm_(
                self.module.parameters(), self.config.max_grad_norm
            )
        self._step_lr = self.optimizer.param_groups[0]["lr"]
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        self._in_step = False
        self._step_loss = step_loss / accum
        self._loss_sum += self._step_loss
        self._steps_tallied += 1

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
        self._reset_tallies()

    def _next_batch(self) -> Any:
        for _ in range(2):  # the current epoch's iterator, or else a new epoch's
            if self._train_iter is None:
                self._train_iter = iter(self.train_data)
            try:
                return next(self._train_iter)
            except StopIteration:
                self._train_iter = None
        raise UsageError("train_data yielded no batches (is the data smaller than one batch?)")

    def _call_loss_fn(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, Metrics]:
        output = self.loss_fn(model, batch)
        if not (isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], Mapping)
                and isinstance(output[0], torch.Tensor) and output[0].numel() == 1):
            raise UsageError(
                "loss_fn(model, batch) must return (scalar loss tensor, dict of metrics), got "
                f"{type(output).__name__}"
            )
        return output[0].reshape(()), output[1]

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    # ------------------------------------------------------------------ bookkeeping

    def _as_scalar(self, value: float | torch.Tensor) -> torch.Tensor:
        if isinstance(value, torch.Tensor):
            return value.detach().to(self.device, torch.float32).reshape(())
        return torch.tensor(float(value), device=self.device)

    @staticmethod
    def _add(total: float | torch.Tensor, value: float | torch.Tensor) -> float | torch.Tensor:
        """Running sum that stays a Python number until a tensor joins it: no device copy, and
        no waiting for the device, per micro-batch."""
        if isinstance(value, torch.Tensor):
            return total + value.detach().float().reshape(())
        return total + float(value)

    def _reset_tallies(self) -> None:
        """Sums since the last log record (kept on the device: no per-step synchronisation)."""
        self._loss_sum = torch.zeros((), device=self.device)
        self._steps_tallied = 0
        self._metric_sums: dict[str, float | torch.Tensor] = {}
        self._micro_tallied = 0
        self._examples: float | torch.Tensor = 0.0
        self._tallies_since = time.monotonic()
        self._grad_norm: torch.Tensor | None = None

    def _tallies_state(self) -> dict[str, Any]:
        """The sums of the log interval in progress: saved so that a resumed run writes the same
        log records as an uninterrupted one (throughput aside)."""
        return {
            "loss_sum": self._loss_sum.cpu(),
            "steps": self._steps_tallied,
            "metric_sums": {name: _to_cpu(value) for name, value in self._metric_sums.items()},
            "micro": self._micro_tallied,
            "examples": _to_cpu(self._examples),
            "counts_tokens": self._counts_tokens,
        }

    def _load_tallies(self, state: Mapping[str, Any] | None) -> None:
        if not state:
            return
        self._loss_sum = state["loss_sum"].to(self.device)
        self._steps_tallied = int(state["steps"])
        self._metric_sums = {k: _to_device(v, self.device) for k, v in state["metric_sums"].items()}
        self._micro_tallied = int(state["micro"])
        self._examples = _to_device(state["examples"], self.device)
        self._counts_tokens = bool(state["counts_tokens"])

    def _tally(self, metrics: Metrics, batch: Any) -> None:
        counted = metrics.get(TOKENS_METRIC)
        self._counts_tokens = self._counts_tokens or counted is not None
        self._examples = self._add(
            self._examples, counted if counted is not None else _leading_size(batch)
        )
        for name, value in metrics.items():
            if name != TOKENS_METRIC:
                self._metric_sums[name] = self._add(self._metric_sums.get(name, 0.0), value)
        self._micro_tallied += 1

    def _log_train(self, started: float, first_step: int) -> dict[str, Any]:
        """Average the tallies over steps, micro-batches and ranks; write the JSONL record and
        the progress line (rank 0)."""
        names = sorted(self._metric_sums)
        sums = [self._loss_sum, self._examples, *(self._metric_sums[name] for name in names)]
        local = torch.stack([self._as_scalar(value) for value in sums])
        totals = self.dist.all_reduce_sum(local).tolist()
        world = self.dist.world_size
        now = time.monotonic()
        elapsed = max(now - self._tallies_since, 1e-9)
        unit = "tokens" if self._counts_tokens else "samples"
        record: dict[str, Any] = {
            "kind": "train",
            "step": self.step,
            "loss": totals[0] / (self._steps_tallied * world),
            "lr": self._step_lr,
        }
        if self._grad_norm is not None:
            record["grad_norm"] = float(self._grad_norm)
        for name, total in zip(names, totals[2:], strict=True):
            record[name] = total / (self._micro_tallied * world)
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
        self._reset_tallies()
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
