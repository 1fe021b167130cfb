"""Checkpoint provenance: a manifest of hashes written beside a checkpoint, and its verification.

Why: a checkpoint directory is code-adjacent data that people download and pass around. A
swapped tensor (a planted backdoor is a few changed rows), a truncated download or an added
pickle file should be detectable, and the report should say *which* tensor changed, not just
"hash mismatch". So the manifest holds a SHA-256 per file *and* per tensor of every
safetensors file (hashing the stored bytes, read straight from the file's header offsets: no
torch load, no pickle), plus what is needed to reproduce the run: the config, the tokenizer
files, a fingerprint of the training data, the seed and the bertkit version.

The manifest is ``provenance.json`` in the checkpoint directory, written atomically. It does
not hash itself; it lists every other file, so a file added later is reported as unexpected —
which is why the runners that save checkpoints (fine-tuning, pretraining) write it as their
*last* step, after the model, the tokenizer and the run files are in place. It lives in the
checkpoints layer so those runners can write it; :mod:`bertkit.security.provenance`
re-exports it for the audit command.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bertkit._fileio import read_json, write_json
from bertkit.errors import CheckpointError, DataFormatError, UsageError
from bertkit.version import __version__

MANIFEST = "provenance.json"
FORMAT = "bertkit-provenance/1"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "merges.txt",
                   "vocab.json", "special_tokens_map.json")
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, streamed in 1 MiB chunks (checkpoints can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def state_digest(module: Any) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes, bytes, in name order): the
    identity of loaded weights whatever file format they came from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.view(-1).view(torch.uint8).numpy().tobytes() if value.numel()
                      else b"")
    return digest.hexdigest()


def _files(directory: Path) -> list[Path]:
    """Every regular file under ``directory`` except the manifest and atomic-write leftovers."""
    return sorted(p for p in directory.rglob("*")
                  if p.is_file() and p.name != MANIFEST
                  and not (p.name.startswith(".") and p.name.endswith(".tmp")))


# ----------------------------------------------------------------------------- safetensors


def _safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    """The JSON header of a safetensors file and the offset where tensor data starts."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: too short to be a safetensors file")
        (length,) = struct.unpack("<Q", head)
        raw = handle.read(length)
    if len(raw) < length or length > 100_000_000:
        raise CheckpointError(f"{path}: safetensors header is truncated or corrupt")
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"{path}: safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    return header, 8 + length


@dataclass
class _TensorBytes:
    dtype: str
    shape: list[int]
    sha256: str | None  # None: the bytes are not (all) in the file
    missing_bytes: int = 0


def tensor_hashes(path: Path) -> dict[str, _TensorBytes]:
    """SHA-256 of each tensor's stored bytes, by name, read through the header's offsets."""
    header, data_start = _safetensors_header(path)
    size = path.stat().st_size
    out: dict[str, _TensorBytes] = {}
    with open(path, "rb") as handle:
        view = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        try:
            for name in sorted(header):
                info = header[name]
                try:
                    begin, end = (int(v) for v in info["data_offsets"])
                    dtype, shape = str(info["dtype"]), [int(d) for d in info["shape"]]
                except (KeyError, TypeError, ValueError):
                    raise CheckpointError(f"{path}: malformed header entry for tensor "
                                          f"{name!r}") from None
                lo, hi = data_start + begin, data_start + end
                if hi > size or view is None:
                    out[name] = _TensorBytes(dtype, shape, None, hi - max(size, lo))
                else:
                    out[name] = _TensorBytes(dtype, shape, hashlib.sha256(view[lo:hi]).hexdigest())
        finally:
            if view is not None:
                view.close()
    return out


# ----------------------------------------------------------------------------- training data


def data_fingerprint(paths: Iterable[str | Path]) -> dict[str, Any]:
    """A fingerprint of the training data: name, size and SHA-256 of every file (directories
    are walked), and one SHA-256 over that sorted list. Names are relative to the path given,
    so the fingerprint does not change when the data moves to another machine."""
    entries: list[dict[str, Any]] = []
    for given in paths:
        root = Path(given)
        if root.is_dir():
            files = [(p, p.relative_to(root.parent).as_posix()) for p in sorted(root.rglob("*"))
                     if p.is_file()]
        elif root.is_file():
            files = [(root, root.name)]
        else:
            raise DataFormatError("training data path not found", root)
        entries += [{"name": name, "size": p.stat().st_size, "sha256": sha256_file(p)}
                    for p, name in files]
    if not entries:
        raise UsageError("the training-data paths hold no files to fingerprint")
    entries.sort(key=lambda e: e["name"])
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()
    return {"fingerprint": hashlib.sha256(canonical).hexdigest(), "files": entries}


# ----------------------------------------------------------------------------- manifest


def build_manifest(directory: str | Path, *, training_data: Iterable[str | Path] | None = None,
                   seed: int | None = None, extra: Mapping[str, Any] | None = None
                   ) -> dict[str, Any]:
    """The manifest of a checkpoint directory as a JSON-ready dict (nothing is written)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    files = _files(directory)
    if not files:
        raise CheckpointError(f"{directory}: the directory holds no files to describe")
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "bertkit_version": __version__,
        "files": {},
        "tensors": {},
        "config": None,
        "tokenizer_files": [],
        "training_data": None if training_data is None else data_fingerprint(training_data),
        "seed": seed,
        "extra": dict(extra or {}),
    }
    for path in files:
        name = path.relative_to(directory).as_posix()
        manifest["files"][name] = {"sha256": sha256_file(path), "size": path.stat().st_size}
        if path.suffix == ".safetensors":
            manifest["tensors"][name] = {
                tensor: {"sha256": t.sha256, "dtype": t.dtype, "shape": t.shape}
                for tensor, t in tensor_hashes(path).items()}
            if any(t["sha256"] is None for t in manifest["tensors"][name].values()):
                raise CheckpointError(f"{path}: truncated (tensor data runs past the end of "
                                      "the file); refusing to describe a broken checkpoint")
        if name in TOKENIZER_FILES:
            manifest["tokenizer_files"].append(name)
    if (directory / "config.json").is_file():
        manifest["config"] = read_json(directory / "config.json")
    return manifest


def write_manifest(directory: str | Path, **options: Any) -> Path:
    """Build the manifest (see :func:`build_manifest`) and write it atomically as
    ``provenance.json`` beside the checkpoint; return its path."""
    manifest = build_manifest(directory, **options)
    path = Path(directory) / MANIFEST
    write_json(path, manifest)
    return path


@dataclass(frozen=True)
class Mismatch:
    """One way the directory differs from its manifest."""

    kind: str          # missing | unexpected | changed | tensor-changed | tensor-missing |
    #                    tensor-unexpected | tensor-truncated | tensor-metadata | unreadable
    file: str
    tensor: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        where = self.file if self.tensor is None else f"tensor {self.tensor!r} in {self.file}"
        return f"{self.kind}: {where}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class VerifyReport:
    """What :func:`verify_manifest` found; ``ok`` when nothing differs."""

    directory: Path
    files_checked: int = 0
    tensors_checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self, limit: int = 5) -> str:
        """One line: OK, or the first ``limit`` mismatches."""
        if self.ok:
            return (f"{self.directory}: provenance verified ({self.files_checked} files, "
                    f"{self.tensors_checked} tensors)")
        shown = "; ".join(str(m) for m in self.mismatches[:limit])
        more = len(self.mismatches) - limit
        return (f"{self.directory}: provenance check failed, {len(self.mismatches)} "
                f"mismatch(es): {shown}" + (f"; and {more} more" if more > 0 else ""))

    def raise_on_mismatch(self) -> VerifyReport:
        if not self.ok:
            raise CheckpointError(self.summary())
        return self


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of ``directory``; a missing or foreign one is a :class:`CheckpointError`."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise CheckpointError(f"{directory}: no {MANIFEST}; create one with "
                              "`bertkit audit manifest DIR`")
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} manifest")
    return manifest


def verify_manifest(directory: str | Path) -> VerifyReport:
    """Compare a checkpoint directory with its ``provenance.json``: every file's size and
    hash, and for a changed safetensors file every tensor's hash, so the report names the
    tensor that was tampered with or cut off."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    report = VerifyReport(directory)
    expected: dict[str, dict[str, Any]] = manifest.get("files", {})
    present = {p.relative_to(directory).as_posix(): p for p in _files(directory)}
    for name in sorted(set(present) - set(expected)):
        report.mismatches.append(Mismatch("unexpected", name, detail="not in the manifest"))
    for name, want in sorted(expected.items()):
        path = present.get(name)
        if path is None:
            report.mismatches.append(Mismatch("missing", name))
            continue
        report.files_checked += 1
        size = path.stat().st_size
        if size == want["size"] and sha256_file(path) == want["sha256"]:
            report.tensors_checked += len(manifest.get("tensors", {}).get(name, {}))
            continue
        tensors = manifest.get("tensors", {}).get(name)
        if tensors is None:
            detail = (f"size {size} bytes, manifest says {want['size']}" if size != want["size"]
                      else "content differs (sha256)")
            report.mismatches.append(Mismatch("changed", name, detail=detail))
            continue
        before = len(report.mismatches)
        _compare_tensors(path, name, tensors, report)
        if len(report.mismatches) == before:  # same tensors, other bytes (header metadata)
            report.mismatches.append(Mismatch("changed", name, detail="header or padding "
                                              "differs; every tensor matches"))
    return report


def _compare_tensors(path: Path, name: str, tensors: Mapping[str, Any],
                     report: VerifyReport) -> None:
    try:
        actual = tensor_hashes(path)
    except CheckpointError as err:
        report.mismatches.append(Mismatch("unreadable", name, detail=str(err).split(": ", 1)[-1]))
        return
    for tensor, want in sorted(tensors.items()):
        got = actual.get(tensor)
        report.tensors_checked += 1
        if got is None:
            report.mismatches.append(Mismatch("tensor-missing", name, tensor))
        elif got.sha256 is None:
            report.mismatches.append(Mismatch("tensor-truncated", name, tensor,
                                              f"{got.missing_bytes} bytes past the end of file"))
        elif (got.dtype, got.shape) != (want["dtype"], list(want["shape"])):
            report.mismatches.append(Mismatch(
                "tensor-metadata", name, tensor,
                f"{got.dtype}{got.shape}, manifest says {want['dtype']}{want['shape']}"))
        elif got.sha256 != want["sha256"]:
            report.mismatches.append(Mismatch("tensor-changed", name, tensor,
                                              "values differ (sha256)"))
    for tensor in sorted(set(actual) - set(tensors)):
        report.mismatches.append(Mismatch("tensor-unexpected", name, tensor))


def load_verified(model_class: Any, directory: str | Path, **options: Any) -> Any:
    """``model_class.from_pretrained(directory, **options)`` only if the directory verifies
    against its ``provenance.json``; a missing manifest or any mismatch raises a
    :class:`CheckpointError` naming what differs, before a single weight is read.

    (Pickled weights are already refused by :func:`bertkit.checkpoints.huggingface.read_weights`
    unless they hold tensors only; this adds "and exactly the tensors that were recorded".)
    """
    verify_manifest(directory).raise_on_mismatch()
    return model_class.from_pretrained(directory, **options)
