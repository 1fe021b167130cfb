"""Small in-memory archives for the tests of fetched artifacts (Debian packages, tarballs)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable


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
