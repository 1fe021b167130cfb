"""Read and write Hugging Face checkpoint directories through a family's name table.

Real checkpoints differ in naming: with or without the encoder prefix (``bert.``), an
``embeddings.position_ids`` buffer, LayerNorm ``gamma``/``beta`` (TensorFlow ports) instead of
``weight``/``bias``, the tied MLM decoder stored or not. :func:`normalize` brings all of them to
one form before the name table maps it onto bertkit's parameters.

Weights are read from ``model.safetensors`` (or its sharded index) or from ``pytorch_model.bin``
with ``torch.load(weights_only=True)``: a pickle that carries code is refused, never run.
"""

from __future__ import annotations

import logging
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from bertkit._fileio import atomic_path, read_json
from bertkit.errors import CheckpointError
from bertkit.model.config import BertConfig
from bertkit.variants.names import NameTable

logger = logging.getLogger("bertkit")

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLED = "pytorch_model.bin"

# Buffers some writers store that are not parameters of any model.
_IGNORED = re.compile(r"(.*\.)?(position_ids|token_type_ids)$")


@dataclass
class LoadReport:
    """What a load did besides copying: parameters initialised fresh, checkpoint tensors left
    unused, and (with ``ignore_mismatched_sizes``) parameters skipped for their shape."""

    new: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)


def weights_file(directory: str | Path) -> Path:
    """The file :func:`read_weights` reads for ``directory`` (the index, when sharded), so
    errors about the tensors can name it."""
    path = Path(directory)
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint directory")
    for name in (SAFETENSORS, SAFETENSORS_INDEX, PICKLED):
        if (path / name).is_file():
            return path / name
    raise CheckpointError(
        f"{path}: no weights found (looked for {SAFETENSORS}, {SAFETENSORS_INDEX}, {PICKLED})")


def read_weights(directory: str | Path) -> dict[str, Tensor]:
    """Every tensor of a checkpoint directory (or a single weights file), on the CPU."""
    file = weights_file(directory)
    if file.name != SAFETENSORS_INDEX:
        return _read_file(file)
    weight_map = read_json(file).get("weight_map", {})
    state: dict[str, Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        state.update(_read_file(file.parent / shard))
    return state


def _read_file(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused to load: the pickle holds objects other than tensors, which could "
            f"run code on load ({str(err).splitlines()[0]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({err})") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a mapping of names to tensors")
    return state


def normalize(state: dict[str, Tensor], table: NameTable) -> dict[str, Tensor]:
    """Bring a checkpoint's names to one form: ``weight``/``bias`` LayerNorm names, the encoder
    prefix on every encoder tensor, no buffers, and no separate copy of the tied decoder."""
    prefix = table.encoder_prefix + "."
    head_prefixes = table.head_prefixes()
    has_prefix = any(name.startswith(prefix) for name in state)
    out: dict[str, Tensor] = {}
    for name, tensor in state.items():
        if _IGNORED.fullmatch(name):
            continue
        name = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", name))
        if not has_prefix and not name.startswith(head_prefixes):
            name = prefix + name
        out[name] = tensor
    decoder = out.pop(table.tied_decoder, None)
    if table.decoder_bias is not None:
        alias, canonical = table.decoder_bias
        decoder_bias = out.pop(alias, None)
        if decoder_bias is not None:
            out.setdefault(canonical, decoder_bias)
    embeddings = out.get(prefix + "embeddings.word_embeddings.weight")
    if (decoder is not None and embeddings is not None and decoder.shape == embeddings.shape
            and not torch.allclose(decoder, embeddings)):
        logger.warning("the checkpoint's MLM decoder differs from its word embeddings; bertkit "
                       "ties them, so the decoder is the word-embedding matrix")
    return out


def load_into(model: nn.Module, state: dict[str, Tensor], table: NameTable, *,
              encoder_attribute: str, optional: tuple[str, ...], config: BertConfig,
              ignore_mismatched_sizes: bool = False, source: str = "checkpoint",
              take: bool = False) -> LoadReport:
    """Copy a normalised checkpoint into ``model`` and report what was new or unused.

    Parameters whose names start with one of ``optional`` (task heads, the pooler) may be
    absent: they keep their fresh initialisation. Any other missing parameter, or a shape that
    does not fit, is a :class:`CheckpointError` naming both names and both shapes.

    ``take``: ``state`` was read for this load alone, so a tensor of the parameter's own shape
    and dtype becomes the parameter's storage instead of being copied into it (no second
    copy of the weights to allocate and fill; the model's tensors are then not those of any
    other model). A tensor is taken once; a second parameter it feeds gets a copy.
    """
    report = LoadReport()
    used: set[str] = set()
    taken: set[str] = set()
    parameters = dict(model.named_parameters(remove_duplicate=False)) if take else {}
    missing_required: list[str] = []
    with torch.no_grad():
        for name, param in model.state_dict().items():
            names = table.checkpoint_names(name, encoder_attribute=encoder_attribute,
                                           config=config, class_name=type(model).__name__)
            if not all(n in state for n in names):
                (report.new if name.startswith(optional) else missing_required).append(name)
                continue
            used.update(names)
            tensor = state[names[0]] if len(names) == 1 else joined([state[n] for n in names])
            if param.is_floating_point() and not tensor.is_floating_point():
                # copy_ would cast silently: int64 weights are a wrong file, not a precision
                raise CheckpointError(
                    f"{source}: parameter {' + '.join(names)} has dtype {tensor.dtype}; the "
                    f"model's {name} expects floating-point weights")
            if tensor.shape != param.shape:
                if ignore_mismatched_sizes:
                    report.mismatched.append(name)
                    continue
                raise CheckpointError(
                    f"{source}: parameter {' + '.join(names)} has shape {list(tensor.shape)} "
                    f"but the model's {name} expects {list(param.shape)}")
            owner = parameters.get(name)  # state_dict() holds detached aliases, not these
            if (owner is not None and tensor.dtype == param.dtype and tensor.is_contiguous()
                    and (len(names) > 1 or names[0] not in taken)):  # a join is new: ours
                taken.add(names[0])
                owner.data = tensor
            else:
                param.copy_(tensor)
    if missing_required:
        shown = ", ".join(missing_required[:5]) + (" …" if len(missing_required) > 5 else "")
        raise CheckpointError(f"{source}: {len(missing_required)} encoder weights are missing "
                              f"({shown}); is this a {table.model_type} checkpoint?")
    report.unused = sorted(set(state) - used)
    return report


def joined(parts: list[Tensor]) -> Tensor:
    """``torch.cat(parts)`` along the first dimension, copied by one thread: on a busy
    machine ``torch.cat``'s parallel copy waits for its second thread far longer than the copy
    takes (MiniLM's fused attention projections, 2 threads, load average 15: 350 ms against
    14 ms)."""
    first = parts[0]
    if not all(p.is_contiguous() and p.dtype == first.dtype and p.shape[1:] == first.shape[1:]
               for p in parts):
        return torch.cat(parts)
    flat = np.concatenate([p.reshape(-1).view(torch.uint8).numpy() for p in parts])
    return torch.from_numpy(flat).view(first.dtype).view(-1, *first.shape[1:])


def export_state(model: nn.Module, table: NameTable, *, encoder_attribute: str,
                 config: BertConfig, strip_encoder_prefix: bool) -> dict[str, Tensor]:
    """The model's parameters under the family's checkpoint names (fused tensors split; a
    layer shared across depth steps is written once, under its stored name)."""
    prefix = table.encoder_prefix + "."
    out: dict[str, Tensor] = {}
    for name, tensor in model.state_dict().items():
        names = table.checkpoint_names(name, encoder_attribute=encoder_attribute,
                                       config=config, class_name=type(model).__name__)
        for part_name, part in zip(names, tensor.chunk(len(names)), strict=True):
            if strip_encoder_prefix and part_name.startswith(prefix):
                part_name = part_name[len(prefix):]
            out[part_name] = part.detach().cpu().contiguous().clone()
    return out


def write_weights(state: dict[str, Tensor], directory: str | Path) -> None:
    """Write ``model.safetensors`` atomically: an interrupted save leaves the old file."""
    with atomic_path(Path(directory) / SAFETENSORS) as tmp:
        try:
            save_file(state, str(tmp), metadata={"format": "pt"})
        except (OSError, SafetensorError) as err:
            raise CheckpointError(f"{directory}: could not write {SAFETENSORS} ({err})") from None


def describe_load(report: LoadReport, model_name: str, source: str) -> None:
    """Say which weights are new (to be trained) and which checkpoint tensors were ignored."""
    if report.new:
        logger.warning("%s: weights not in %s were initialised fresh (train them before use): "
                       "%s", model_name, source, _summarize(report.new))
    if report.mismatched:
        logger.warning("%s: weights re-initialised because their shape differs from %s: %s",
                       model_name, source, _summarize(report.mismatched))
    if report.unused:
        logger.warning("%s: checkpoint tensors not used by this model: %s", model_name,
                    _summarize(report.unused))


def _summarize(names: list[str]) -> str:
    """Group names by their first two components: ``cls.predictions.* (5)``."""
    groups: dict[str, int] = {}
    for name in names:
        key = ".".join(name.split(".")[:2])
        groups[key] = groups.get(key, 0) + 1
    return ", ".join(f"{key}.* ({count})" if count > 1 else key for key, count in groups.items())
