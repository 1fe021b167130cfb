"""Tests for the Debian source of bertkit.resources.artifacts: ``apt-get download`` and the
.deb unpacker.

The unpacker is tested on .deb files built here (an ar archive holding data.tar.xz), the
downloader's failure messages with a stubbed and with the real apt-get; one test fetches the
smallest real Debian artifact and skips when apt cannot download it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from archives import register_local_artifact, tar_bytes
from bertkit.errors import ArtifactError
from bertkit.resources import downloads, unpacking
from bertkit.resources.artifacts import ARTIFACTS, MARKER, Artifact, fetch
from real_artifacts import unavailable

MEMBER = "usr/share/example"
FILES = {
    f"./{MEMBER}/data.txt": b"real text\n",
    f"./{MEMBER}/sub/more.bin": bytes(range(256)) * 8,
    "./usr/share/example-other/decoy.txt": b"outside the member",
    "./usr/share/doc/README": b"docs",
}


def _ar_entry(name: str, data: bytes) -> bytes:
    header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n"
    assert len(header) == 60
    return header.encode("ascii") + data + (b"\n" if len(data) % 2 else b"")


def _tar_xz(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    return tar_bytes(files, links, mode="w:xz",
                     directories=("./usr", "./usr/share", f"./{MEMBER}"))


def build_deb(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None,
              data_name: str = "data.tar.xz") -> str:
    """Write a minimal binary .deb (as dpkg-deb lays it out) and return its sha256."""
    path.write_bytes(b"!<arch>\n" + _ar_entry("debian-binary", b"2.0\n")
                     + _ar_entry("control.tar.xz", _tar_xz({"./control": b"Package: x\n"}))
                     + _ar_entry(data_name, _tar_xz(files, links)))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_deb(tmp_path, monkeypatch):
    """Register artifact "fakedeb" served by a stub apt; return a function making the .deb."""

    def make(files=FILES, links=None, data_name="data.tar.xz"):
        package = tmp_path / "example_1.0-1_all.deb"
        build_deb(package, files, links, data_name)
        register_local_artifact(monkeypatch, "fakedeb", "debian", "example=1.0-1", package,
                                MEMBER)
        return tmp_path / "cache"

    return make


def listing(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_deb_member_is_unpacked_without_links_or_decoys(fake_deb):
    cache = fake_deb(links={f"./{MEMBER}/link.txt": "/etc/passwd"})
    folder = fetch("fakedeb", cache_dir=cache, quiet=True)
    assert listing(folder) == {"data.txt", "sub/more.bin", MARKER}
    assert (folder / "data.txt").read_bytes() == b"real text\n"
    assert (folder / "sub/more.bin").read_bytes() == FILES[f"./{MEMBER}/sub/more.bin"]
    assert [p.name for p in cache.iterdir()] == ["fakedeb"]  # no .deb, no staging left


def test_deb_with_escaping_entry_is_refused(fake_deb):
    cache = fake_deb({**FILES, f"./{MEMBER}/../../../escaped.txt": b"owned"})
    with pytest.raises(ArtifactError, match="escape"):
        fetch("fakedeb", cache_dir=cache, quiet=True)
    assert not list(cache.parent.rglob("escaped.txt"))
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize(("content", "message"), [
    (b"just text", "not a Debian package"),
    (b"!<arch>\n" + _ar_entry("debian-binary", b"2.0\n"), "no data.tar"),
    (b"!<arch>\ndata.tar.xz/     0           0     0     100644  12x       `\n", "corrupt ar"),
])
def test_broken_deb_is_reported(tmp_path, content, message):
    package = tmp_path / "broken.deb"
    package.write_bytes(content)
    with pytest.raises(ArtifactError, match=message):
        unpacking.extract_deb(package, MEMBER, tmp_path / "out")


def test_deb_without_the_member_and_zstd_data(fake_deb, tmp_path):
    cache = fake_deb({"./usr/share/doc/README": b"docs"})
    with pytest.raises(ArtifactError, match="no files under folder 'usr/share/example'"):
        fetch("fakedeb", cache_dir=cache, quiet=True)
    package = tmp_path / "zst.deb"
    build_deb(package, FILES, data_name="data.tar.zst")
    with pytest.raises(ArtifactError, match=r"zstd.*dpkg-deb -x"):
        unpacking.extract_deb(package, MEMBER, tmp_path / "out")


def test_apt_failure_says_to_update_the_package_lists(monkeypatch, tmp_path):
    seen = {}

    def fake_run(command, **kwargs):
        seen.update(command=command, cwd=kwargs.get("cwd"))
        return subprocess.CompletedProcess(command, 100, stdout="",
                                           stderr="E: Unable to locate package r-cran-x")

    monkeypatch.setattr(downloads.subprocess, "run", fake_run)
    monkeypatch.setattr(downloads.shutil, "which", lambda name: "/usr/bin/apt-get")
    with pytest.raises(ArtifactError) as caught:
        downloads.download_debian(ARTIFACTS["janeaustenr"], tmp_path)
    message = str(caught.value)
    assert "r-cran-janeaustenr=1.0.0-1" in message and "exit 100" in message
    assert "Unable to locate package" in message and "apt-get update" in message
    assert seen["command"][1:] == ["download", "-q", "r-cran-janeaustenr=1.0.0-1"]
    assert seen["cwd"] == tmp_path


def test_missing_apt_get_is_explained(monkeypatch, tmp_path):
    monkeypatch.setattr(downloads.shutil, "which", lambda name: None)
    with pytest.raises(ArtifactError, match=r"apt-get is not installed.*Debian"):
        downloads.download_debian(ARTIFACTS["janeaustenr"], tmp_path)


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get")
def test_real_apt_names_a_version_that_does_not_exist(monkeypatch, tmp_path):
    """The real client: a version that no archive holds fails with apt's reason and the hint."""
    missing = Artifact("gone", "debian", "r-cran-janeaustenr=0.0.0-0", "x.deb", "0" * 64,
                       "usr", "test double")
    with pytest.raises(ArtifactError) as caught:
        downloads.download_debian(missing, tmp_path)
    message = str(caught.value)
    assert "r-cran-janeaustenr=0.0.0-0" in message and "apt-get update" in message
    assert "not found" in message or "Unable to locate" in message


def test_debian_entries_pin_versions_and_files():
    debian = [a for a in ARTIFACTS.values() if a.source == "debian"]
    assert {a.name for a in debian} >= {"linux-doc", "janeaustenr", "modeldata", "gcide"}
    for artifact in debian:
        if not artifact.pinned:  # version moves with security updates: any one of them
            assert "=" not in artifact.spec
            assert artifact.filename == f"{artifact.spec}_*_all.deb", artifact.name
            continue
        package, version = artifact.spec.split("=")
        assert artifact.filename == f"{package}_{version}_all.deb", artifact.name


@pytest.mark.needs_artifacts
def test_real_fetch_of_janeaustenr(tmp_path):
    """The one test that downloads from Debian: the smallest package (1.6 MB), scratch cache."""
    try:
        folder = fetch("janeaustenr", cache_dir=tmp_path, quiet=True)
    except ArtifactError as err:
        if "could not download" in str(err):
            unavailable("janeaustenr", err)
        raise
    assert listing(folder) == {"Rdata.rdb", "Rdata.rds", "Rdata.rdx", MARKER}
    assert (folder / "Rdata.rdb").stat().st_size == 1_601_335
    assert [p.name for p in tmp_path.iterdir()] == ["janeaustenr"]
