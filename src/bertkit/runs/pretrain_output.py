"""What a pretraining run reads back and leaves behind: the checks that refuse ``--resume``
into another run, and the final save of the model(s) in the Hugging Face layout.

Split from :mod:`bertkit.runs.pretrain` (the run itself); ``pretrain.json`` (:data:`RUN_FILE`) is
what the run writes at its start and what a resume is checked against.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertkit import _fileio
from bertkit.checkpoints.provenance import write_manifest
from bertkit.errors import BertkitError, CheckpointError, UsageError
from bertkit.model.config import BertConfig
from bertkit.model.pretrained import PreTrainedModel
from bertkit.tokenization import Tokenizer

if TYPE_CHECKING:
    from bertkit.runs.pretrain import PretrainSettings

RUN_FILE = "pretrain.json"


def check_resume(out: Path, settings: PretrainSettings, configs: Mapping[str, BertConfig],
                  identity: Mapping[str, str]) -> None:
    """Refuse ``--resume`` into a run made with another model or data recipe, naming the first
    field that differs (the trainer would only see mismatched tensor shapes, or none at all when
    e.g. the dropout or the masking rate changed)."""
    path = out / RUN_FILE
    if not path.is_file():
        raise UsageError(f"--resume: {out} holds no {RUN_FILE}; it is not a bertkit "
                         "pretraining run (start a fresh run without --resume)")
    saved = _fileio.read_json(path)
    for name, config in configs.items():
        before_model = saved.get(name, {})
        now_model = config.to_dict()
        what = name.replace("_", " ")
        for key in sorted(set(before_model) | set(now_model)):
            if key == "architectures":
                continue
            if before_model.get(key) != now_model.get(key):
                raise CheckpointError(
                    f"--resume: the checkpoint in {out} was trained with {what} "
                    f"{key}={before_model.get(key)!r}, this run has {key}={now_model.get(key)!r}")
    before_identity = saved.get("identity", {})
    for key in sorted(set(before_identity) | set(identity)):
        if before_identity.get(key) != identity.get(key):
            raise CheckpointError(
                f"--resume: the run in {out} was made with {key.replace('_', ' ')} "
                f"{before_identity.get(key)!r}, this run has {identity.get(key)!r}; resume "
                "with the same inputs")
    before_data = saved.get("data", {})
    for key, value in settings.data_recipe().items():
        if key in before_data and before_data[key] != value:
            raise CheckpointError(
                f"--resume: the run in {out} was made with {key}={before_data[key]!r}, this run "
                f"has {key}={value!r}; keep the data settings to resume")


def save_final(models: Mapping[str, PreTrainedModel], tokenizer: Tokenizer, out: Path,
                **provenance: Any) -> None:
    """Write each model with the tokenizer beside it in the Hugging Face layout, in ``out`` or
    its sub-folder, and its provenance manifest (``provenance``: the corpus files to
    fingerprint, the seed, extra fields); a failed write (full disk, read-only folder) becomes
    one CheckpointError naming the folder — the atomic writes leave the previous files
    intact."""
    try:
        for folder, model in models.items():
            model.save_pretrained(out / folder)
            tokenizer.save_pretrained(out / folder)
            # last: it lists every file already in the folder
            write_manifest(out / folder, **provenance)
    except BertkitError:
        raise
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise CheckpointError(f"could not save the pretrained model to {out}: {reason}; the "
                              "training checkpoints under checkpoints/ are intact") from None
