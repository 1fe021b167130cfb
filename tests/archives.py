"""Small in-memory archives for the tests of fetched artifacts (Debian packages, tarballs)."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from bertkit.resources import downloads
from bertkit.resources.artifacts import ARTIFACTS, Artifact


def tar_bytes(files: dict[str, bytes], links: dict[str, str] | None = None, *,
              mode: str = "w:gz", directories: Iterable[str] = ()) -> bytes:
    """A tar archive (compression by ``mode``) holding ``directories``, then ``files`` (name →
    content) and symbolic ``links`` (name → target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            archive.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def register_local_artifact(monkeypatch: pytest.MonkeyPatch, name: str, source: str, pin: str,
                            package: Path, member: str) -> None:
    """Register artifact ``name`` (checksum of ``package`` as it is now) whose ``source``
    downloader copies ``package`` instead of fetching it."""
    digest = hashlib.sha256(package.read_bytes()).hexdigest()
    monkeypatch.setitem(ARTIFACTS, name, Artifact(name, source, pin, package.name, digest,
                                                  member, "test double"))
    monkeypatch.setitem(downloads.DOWNLOADERS, source,
                        lambda artifact, dest: shutil.copy(package, dest / artifact.filename))
