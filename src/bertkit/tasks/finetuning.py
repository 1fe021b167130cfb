"""The former home of the fine-tuning runs, kept as a forwarding name: the drivers now live in
:mod:`bertkit.runs.finetune` (a later layer than tasks, so this module cannot import it
statically), evaluation and prediction in :mod:`bertkit.tasks.evaluation`. Callers written
against ``bertkit.tasks.finetuning`` (e.g. the security tests) keep working; new code imports
the new homes."""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {"FinetuneConfig": "bertkit.runs.finetune", "FinetuneResult": "bertkit.runs.finetune",
          "finetune_classifier": "bertkit.runs.finetune", "finetune_ner": "bertkit.runs.finetune",
          "finetune_qa": "bertkit.runs.finetune", "evaluate": "bertkit.tasks.evaluation",
          "predict": "bertkit.tasks.evaluation"}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
