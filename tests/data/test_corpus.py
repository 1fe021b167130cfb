"""Corpus reading: document boundaries, sources, duplicate statistics, located errors."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import pytest

from bertkit.data.corpus import (
    CorpusStats,
    DuplicateLinesWarning,
    corpus_stats,
    expand_sources,
    read_documents,
    split_sentences,
)
from bertkit.errors import DataFormatError, UsageError


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_bert_format_document_boundaries(tmp_path):
    path = write(tmp_path / "a.txt",
                 "\n\nFirst sentence.\n  Second one.  \n\n\n\nOther doc.\n \t\nThird doc.\nEnd.")
    stats = CorpusStats()
    docs = list(read_documents(path, stats=stats))
    assert docs == [["First sentence.", "Second one."], ["Other doc."], ["Third doc.", "End."]]
    assert (stats.files, stats.documents, stats.sentences, stats.lines) == (1, 3, 5, 5)


def test_file_end_ends_a_document_and_files_are_read_in_sorted_order(tmp_path):
    write(tmp_path / "b.txt", "B one.\nB two.\n")
    write(tmp_path / "a.txt", "A one.\n")
    assert list(read_documents(tmp_path)) == [["A one."], ["B one.", "B two."]]


def test_sources_files_directories_globs(tmp_path):
    a = write(tmp_path / "x" / "a.txt", "a\n")
    b = write(tmp_path / "x" / "sub" / "b.txt", "b\n")
    write(tmp_path / "x" / ".hidden" / "c.txt", "c\n")
    write(tmp_path / "x" / ".swp", "d\n")
    c = write(tmp_path / "y.md", "e\n")
    assert expand_sources(tmp_path / "x") == [a, b]
    assert expand_sources(str(tmp_path / "**" / "*.txt")) == [a, b]
    assert expand_sources([c, tmp_path / "x", a]) == [c, a, b]  # de-duplicated, order kept


def test_missing_sources_are_errors(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        expand_sources(tmp_path / "nope.txt")
    with pytest.raises(DataFormatError, match="matches no files"):
        expand_sources(str(tmp_path / "*.txt"))
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataFormatError, match="holds no"):
        expand_sources(tmp_path / "empty_dir")
    with pytest.raises(UsageError, match="no corpus sources"):
        expand_sources([])


def test_bad_utf8_reported_with_path_and_line(tmp_path):
    path = write(tmp_path / "bad.txt", b"fine line\n\nstill fine\ncaf\xe9 latin-1\nmore\n")
    with pytest.raises(DataFormatError) as info:
        list(read_documents(path))
    assert info.value.path == path and info.value.line == 4
    assert str(info.value).startswith(f"{path}:4: not UTF-8")


def test_empty_file_is_an_error_naming_it(tmp_path):
    write(tmp_path / "a.txt", "text\n")
    empty = write(tmp_path / "b.txt", "\n  \n\n")
    with pytest.raises(DataFormatError, match="empty") as info:
        list(read_documents(tmp_path))
    assert info.value.path == empty


def test_reading_streams(tmp_path):
    write(tmp_path / "a.txt", "good\n")
    write(tmp_path / "b.txt", b"\xff\xfe")
    documents = read_documents(tmp_path)
    assert next(documents) == ["good"]  # the bad second file is not touched yet
    with pytest.raises(DataFormatError):
        next(documents)


def test_duplicate_lines_counted_and_warned(tmp_path):
    write(tmp_path / "a.txt", "Home | About\nreal text one\n\nHome | About\nreal two\n")
    write(tmp_path / "b.txt", "Home | About\n  real text one \nnew\n")
    stats = CorpusStats()
    with pytest.warns(DuplicateLinesWarning, match="3 of 7 lines"):
        list(read_documents(tmp_path, stats=stats))
    assert stats.duplicate_lines == 3  # 2 repeats of "Home | About", 1 of "real text one"
    assert stats.duplicate_ratio == pytest.approx(3 / 7)
    assert corpus_stats(tmp_path).duplicate_lines == 3


def test_no_warning_below_threshold(tmp_path):
    write(tmp_path / "a.txt", "\n".join(f"line {i}" for i in range(50)) + "\nline 1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(read_documents(tmp_path))
    assert corpus_stats(tmp_path).duplicate_ratio == pytest.approx(1 / 51)


def test_gzip_and_byte_order_mark(tmp_path):
    path = tmp_path / "a.txt.gz"
    with gzip.open(path, "wb") as handle:
        handle.write("\ufeffOne.\nTwo.\n\nThree.\n".encode())
    assert list(read_documents(path)) == [["One.", "Two."], ["Three."]]


def test_corrupt_gzip_is_reported(tmp_path):
    path = write(tmp_path / "a.gz", b"not gzip at all")
    with pytest.raises(DataFormatError, match="cannot read"):
        list(read_documents(path))


def test_free_text_paragraphs(tmp_path):
    path = write(tmp_path / "book.txt",
                 "It was a dark night. The rain fell\nin torrents.\n\n"
                 "Mr. Holmes said nothing. He waited!\n\nThe end.\n")
    assert list(read_documents(path, fmt="free")) == [
        ["It was a dark night.", "The rain fell in torrents."],
        ["Mr. Holmes said nothing.", "He waited!"],
        ["The end."],
    ]
    stats = CorpusStats()
    assert list(read_documents(path, fmt="free", document_break="file", stats=stats)) == [[
        "It was a dark night.", "The rain fell in torrents.", "Mr. Holmes said nothing.",
        "He waited!", "The end.",
    ]]
    assert (stats.documents, stats.sentences, stats.lines) == (1, 5, 4)


@pytest.mark.parametrize("text,expected", [
    ("Dr. Watson met J. R. R. Tolkien at 5 p.m. on Friday. They talked.",
     ["Dr. Watson met J. R. R. Tolkien at 5 p.m. on Friday.", "They talked."]),
    ('He said "Stop!" Then he left.', ['He said "Stop!"', "Then he left."]),
    ("It cost 3.5 dollars, e.g. a lot. 42 people came?! (Yes.) Fine",
     ["It cost 3.5 dollars, e.g. a lot.", "42 people came?!", "(Yes.)", "Fine"]),
    ("no capital after. so one sentence", ["no capital after. so one sentence"]),
    ("  spaced   out.  ", ["spaced out."]),
    ("", []),
])
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_unknown_format_is_an_error(tmp_path):
    path = write(tmp_path / "a.txt", "x\n")
    with pytest.raises(UsageError, match="format"):
        list(read_documents(path, fmt="csv"))  # type: ignore[arg-type]
