"""The settings every run shares, declared once: the root of the settings tree.

::

    RunSettings              output_dir, device, precision, threads, seed, max_minutes,
    │                        compile, progress
    ├── DemoSettings         (bertkit.demo)
    └── TrainSettings        + max_steps, learning_rate, weight_decay, schedule, warmup_steps,
        │                      grad_accum_steps
        ├── TrainConfig      (the generic loop: optimizer details, cadence, checkpoints)
        ├── PretrainSettings (bertkit.runs; DistillSettings below it), + batch_size …
        ├── Seq2SeqSettings  + batch_size …
        └── FinetuneConfig   + batch_size, epochs, warmup_ratio …

Why one tree. The same knob had four spellings (``grad_accum`` / ``grad_accum_steps``,
``num_threads`` / ``threads``, the demo's ``out`` / ``minutes``), and the CLI restated each
default. Now a knob has one name and one default per run kind (a subclass may change a default
it owns a reason for, e.g. fine-tuning's learning rate), and :func:`bertkit.cli.flags` derives
the shared flags and their ``--help`` defaults from these fields.

Why fields are keyword-only. A run's own required inputs (a corpus, a checkpoint) stay
positional and first; the shared knobs are always named, so a subclass can add fields without
shifting anyone's positional call.

Old names keep working for one release: a class lists them in ``renamed`` (old → new) and is
decorated with :func:`accepts_old_names`; passing, reading or setting an old name warns with a
:class:`DeprecationWarning` and acts on the new one. Recorded settings files (``pretrain.json``,
``seq2seq.json``) written with old names are read through :meth:`RunSettings.upgrade_recorded`,
so runs made before still resume.

``resume`` is not a setting: it says what one invocation does with an output directory that
already holds a run, so it is not recorded with the run. Every runner takes it as the keyword
``resume`` (``pretrain``, ``distill``, ``train_seq2seq``, ``Trainer.fit``) and the CLI as
``--resume``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

Schedule = Literal["linear", "cosine", "constant"]
Precision = Literal["fp32", "bf16", "fp16"]

SCHEDULES: tuple[str, ...] = ("linear", "cosine", "constant")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")

#: The old names of the training runs (pretrain, distill, seq2seq): old → new.
TRAINING_RENAMED: Mapping[str, str] = {"grad_accum": "grad_accum_steps", "num_threads": "threads"}

_T = TypeVar("_T", bound=type)


def _warn_renamed(old: str, new: str, owner: str) -> None:
    warnings.warn(f"{owner}.{old} is now {new}; the old name will be removed in the next "
                  "release", DeprecationWarning, stacklevel=3)


def accepts_old_names(cls: _T) -> _T:
    """Let the dataclass ``cls(...)`` take the old keywords of ``cls.renamed`` (warning)."""
    init: Callable[..., None] = cls.__init__  # type: ignore[misc]

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        for old, new in cls.renamed.items():  # type: ignore[attr-defined]
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{cls.__name__}() got both {old}= and its new name {new}=")
                _warn_renamed(old, new, cls.__name__)
                kwargs[new] = kwargs.pop(old)
        init(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


@dataclass(kw_only=True)
class RunSettings:
    """What every run shares: where it writes, where and how it computes, its seed, its
    wall-clock budget."""

    # Where the run writes (checkpoints, metrics, the final model). None: nothing is written.
    output_dir: str | Path | None = None
    device: str = "auto"  # "auto" = cuda:LOCAL_RANK when CUDA is present, else cpu
    precision: Precision = "fp32"  # bf16: autocast (CPU or GPU); fp16: + GradScaler (GPU)
    threads: int | None = None  # PyTorch CPU threads (None: PyTorch's default)
    seed: int = 0  # seeds python, numpy and torch at the start of a fresh (not resumed) run
    max_minutes: float | None = None  # wall-clock budget of this invocation (resume restarts it)
    compile: bool = False  # torch.compile the model; checkpoints still hold the plain module
    progress: bool = True  # progress lines on stderr (rank 0 only)

    #: Old field names of this class, old → new, kept for one release (see the module doc).
    renamed: ClassVar[Mapping[str, str]] = {}

    def __getattr__(self, name: str) -> Any:
        """An old name reads the new field, with a deprecation warning."""
        new = type(self).renamed.get(name)
        if new is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        _warn_renamed(name, new, type(self).__name__)
        return getattr(self, new)

    def __setattr__(self, name: str, value: Any) -> None:
        new = type(self).renamed.get(name)
        if new is not None:
            _warn_renamed(name, new, type(self).__name__)
            name = new
        object.__setattr__(self, name, value)

    @classmethod
    def upgrade_recorded(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        """A recorded settings dict (a run file's) with old keys under their new names, so
        that runs made before the rename still resume."""
        upgraded = dict(settings)
        for old, new in cls.renamed.items():
            if old in upgraded and new not in upgraded:
                upgraded[new] = upgraded.pop(old)
        return upgraded

    def apply_threads(self) -> None:
        """Pin PyTorch's CPU threads when ``threads`` is set. On a shared CPU, more threads
        than free cores make every step many times slower (they spin waiting for each other)."""
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)


@dataclass(kw_only=True)
class TrainSettings(RunSettings):
    """What every training run shares: its step budget, optimizer and schedule. Steps count
    optimizer updates; one update consumes ``grad_accum_steps`` micro-batches."""

    max_steps: int = 1000
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    # Linear warmup over warmup_steps, then the schedule's decay ("constant" keeps the peak).
    schedule: Schedule = "linear"
    warmup_steps: int = 0
    grad_accum_steps: int = 1  # micro-batches per optimizer step: time for memory

    #: The fields the generic loop (:class:`~bertkit.training.TrainConfig`) takes as they are.
    SHARED: ClassVar[tuple[str, ...]] = (
        "output_dir", "device", "precision", "threads", "seed", "max_minutes", "compile",
        "progress", "max_steps", "learning_rate", "weight_decay", "schedule", "warmup_steps",
        "grad_accum_steps")

    def shared(self) -> dict[str, Any]:
        """This run's values of :attr:`SHARED`, to build a ``TrainConfig`` from."""
        return {name: getattr(self, name) for name in self.SHARED}
