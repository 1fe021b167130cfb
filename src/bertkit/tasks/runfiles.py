"""The files of a fine-tuning run directory: their names, the model-directory check, the
saved settings and the atomic JSONL writer. One small module so the run driver, evaluation and
the predictor agree on one layout without importing each other."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bertkit._fileio import read_json, write_text
from bertkit.errors import UsageError

__all__ = [
    "FINAL_METRICS",
    "METRICS_FILE",
    "PREDICTIONS",
    "RUN_CONFIG",
    "prepare_run_dir",
    "require_model_dir",
    "run_config",
    "write_jsonl",
]

RUN_CONFIG = "run_config.json"
METRICS_FILE = "metrics.jsonl"
FINAL_METRICS = "final_metrics.json"
PREDICTIONS = "predictions.jsonl"


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """All records at once, atomically: a reader never sees half a file."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    write_text(path, text)



def require_model_dir(path: str | Path) -> Path:
    """A model directory (``config.json`` inside); a friendly error otherwise."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise UsageError(f"{path}: not a model directory (no config.json); expected a Hugging "
                         "Face / bertkit model folder or a fine-tuning run directory")
    return path


def run_config(model_dir: Path) -> dict[str, Any]:
    """The fine-tuning settings saved beside the model, or ``{}`` for a plain checkpoint."""
    path = model_dir / RUN_CONFIG
    return read_json(path) if path.is_file() else {}



def prepare_run_dir(out: str | Path) -> Path:
    """The run directory; refuses one holding an earlier run (nothing silently mixed)."""
    out = Path(out)
    if (out / RUN_CONFIG).exists():
        raise UsageError(f"{out} already holds a fine-tuning run ({RUN_CONFIG}); choose another "
                         "--out directory or remove it")
    out.mkdir(parents=True, exist_ok=True)
    return out

