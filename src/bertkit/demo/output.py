"""The demo's output folder: made fresh, or an earlier demo's reused (replacing only the
demo's own files), never a folder holding anything else."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from bertkit import _fileio
from bertkit.demo.run import DemoSettings
from bertkit.errors import UsageError
from bertkit.version import __version__

MARKER, SUMMARY = "demo.json", "summary.json"
OWN_ENTRIES = ("pretrain", "finetune-small", "finetune-minilm", "report.html", "summary.json",
               "attention.html", "loss_curves.png", "mlm_accuracy.png", "confusion_matrix.png",
               "attention.png", "layers",
               "translation")  # what a rerun may replace (plus the marker itself)


def prepare_output(out: Path, settings: DemoSettings) -> None:
    """Create ``out`` (or reuse an earlier demo's folder, replacing only the demo's own files);
    refuse a folder holding anything else, and one that cannot be written."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise UsageError(f"--out {out}: the directory is not empty and holds no {MARKER} "
                             "(it is not an earlier demo's output); choose a new or empty "
                             "directory")
        for name in OWN_ENTRIES:
            target = out / name
            if name == "pretrain" and target.is_dir():
                # The shards under pretrain/data/ are reused by a rerun (same fingerprint);
                # only the old run's checkpoints would make pretrain() refuse the folder.
                shutil.rmtree(target / "checkpoints", ignore_errors=True)
            elif target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        settings_json = _fileio.json_ready(dataclasses.asdict(settings))
        _fileio.write_json(out / MARKER, {"bertkit": __version__, "settings": settings_json})
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise UsageError(f"--out {out}: cannot write there ({reason}); choose a writable "
                         "directory") from None


# --------------------------------------------------------------------------- helpers
