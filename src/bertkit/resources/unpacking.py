"""Unpacking only an artifact's ``member`` folder from a wheel (zip), a Debian package
(ar + tar) or an npm tarball (gzip tar), refusing entries that would land outside it; the
format is chosen by the file's suffix in :data:`EXTRACTORS`."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from bertkit.errors import ArtifactError

# --------------------------------------------------------------------------- unpacking


def _safe_relative(entry: str, member: str) -> PurePosixPath | None:
    """The path of archive ``entry`` relative to folder ``member``; None if outside it.

    Raises for an entry inside ``member`` that would escape the target folder once joined
    (``..`` parts, absolute paths, backslashes that Windows would treat as separators).
    """
    prefix = member.strip("/") + "/"
    if not entry.startswith(prefix):
        return None
    relative = PurePosixPath(entry[len(prefix) :])
    bad_part = any(part in ("..", "") or "\\" in part or ":" in part for part in relative.parts)
    if relative.is_absolute() or bad_part:
        raise ArtifactError(f"archive entry {entry!r} would escape the target folder; refused")
    return relative


def extract_zip(package: Path, member: str, dest: Path) -> dict[str, int]:
    """Copy the files under ``member`` in zip/wheel ``package`` into ``dest``.

    Every entry is checked before anything is written, so a hostile archive writes nothing.
    Returns relative path → size, which the marker records.
    """
    try:
        archive = zipfile.ZipFile(package)
    except zipfile.BadZipFile as err:
        raise ArtifactError(f"{package.name} is not a valid zip archive: {err}") from None
    with archive:
        chosen = []
        for info in archive.infolist():
            relative = _safe_relative(info.filename, member)
            if relative is not None and not info.is_dir():
                chosen.append((info, relative))
        if not chosen:
            raise ArtifactError(f"{package.name} has no files under folder {member!r}")
        files: dict[str, int] = {}
        for info, relative in chosen:
            with archive.open(info) as source:
                _write_entry(source, dest, relative, files)
    return files


def _write_entry(
    source: io.BufferedIOBase, dest: Path, relative: PurePosixPath, files: dict[str, int]
) -> None:
    """Copy one archive entry to ``dest/relative`` and record its size in ``files``."""
    out = dest.joinpath(*relative.parts)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as sink:
        shutil.copyfileobj(source, sink, 1 << 20)
    files[relative.as_posix()] = out.stat().st_size


def extract_deb(package: Path, member: str, dest: Path) -> dict[str, int]:
    """Copy the regular files under ``member`` in Debian package ``package`` into ``dest``.

    Pure Python rather than ``dpkg-deb -x``, so a cache can be filled (or a downloaded .deb
    unpacked) on any OS with Python: a .deb is an ``ar`` archive whose ``data.tar.*`` member
    holds the file tree, which :mod:`tarfile` reads (xz, gzip, bzip2 or none; zstd, which
    Debian does not use for its own archive, is refused with a clear error). Symbolic and hard
    links are skipped: the cache holds plain files only, and a link could point anywhere.
    Entries are checked while streaming (one decompression pass); a hostile name raises and
    the caller deletes the staging folder, so nothing reaches the cache.
    """
    name, data = _ar_member(package, "data.tar")
    if name.endswith(".zst"):
        raise ArtifactError(f"{package.name}: {name} is zstd-compressed, which this Python "
                            "cannot read; unpack it with `dpkg-deb -x`")
    return _extract_tar(io.BytesIO(data), f"{package.name}: {name}", member, dest)


def extract_tgz(package: Path, member: str, dest: Path) -> dict[str, int]:
    """Copy the regular files under ``member`` in gzip tarball ``package`` (an npm package:
    everything sits under ``package/``) into ``dest``; the same rules as :func:`extract_deb`."""
    with open(package, "rb") as handle:
        return _extract_tar(handle, package.name, member, dest)


def _extract_tar(source: io.BufferedIOBase, label: str, member: str,
                 dest: Path) -> dict[str, int]:
    """Stream a tar archive once, copying the regular files under ``member``; links are
    skipped, a hostile name raises, and an archive with nothing under ``member`` is refused."""
    files: dict[str, int] = {}
    try:
        with tarfile.open(fileobj=source, mode="r|*") as archive:
            for info in archive:
                relative = _safe_relative(info.name.removeprefix("./"), member)
                if relative is None or not info.isreg():
                    continue
                entry = archive.extractfile(info)
                assert entry is not None  # a regular file always has contents
                _write_entry(entry, dest, relative, files)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ArtifactError(f"{label}: cannot read the archive: {err}") from None
    if not files:
        raise ArtifactError(f"{label} has no files under folder {member!r}")
    return files


def _ar_member(package: Path, prefix: str) -> tuple[str, bytes]:
    """Name and contents of the first member of ``ar`` archive ``package`` named ``prefix…``.

    The ar format is an 8-byte magic line, then per member a 60-byte text header (name 16,
    mtime 12, uid 6, gid 6, mode 8, size 10, magic 2) and the data padded to an even length.
    A .deb's data member is a few tens of MB, so it is read into memory whole.
    """
    with open(package, "rb") as handle:
        if handle.read(8) != b"!<arch>\n":
            raise ArtifactError(f"{package.name} is not a Debian package (no ar header)")
        while len(header := handle.read(60)) == 60:
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            try:
                size = int(header[48:58])
            except ValueError:
                size = -1
            if header[58:60] != b"`\n" or size < 0:
                raise ArtifactError(f"{package.name}: corrupt ar header for member {name!r}")
            if name.startswith(prefix):
                return name, handle.read(size)
            handle.seek(size + (size & 1), os.SEEK_CUR)
    raise ArtifactError(f"{package.name} has no {prefix}* member; not a Debian binary package")


EXTRACTORS: dict[str, Callable[[Path, str, Path], dict[str, int]]] = {
    ".whl": extract_zip,
    ".zip": extract_zip,
    ".deb": extract_deb,
    ".tgz": extract_tgz,
}
"""File suffix → unpacker."""


def extract(package: Path, member: str, dest: Path) -> dict[str, int]:
    """Unpack ``member`` from ``package`` with the unpacker for its suffix."""
    try:
        extractor = EXTRACTORS[package.suffix]
    except KeyError:
        raise ArtifactError.unknown(f"cannot unpack {package.name}: unsupported suffix "
                                    f"{package.suffix!r}", EXTRACTORS, "supported") from None
    return extractor(package, member, dest)
