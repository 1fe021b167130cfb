"""Tests for the pretraining-corpus sources: reST, dictionary and novel cleaning on fabricated
snippets and on small real slices, and build_corpus's bookkeeping (duplicates, cache, splits).

The full ~11 M-word build is not run here (it takes minutes); each real-data test reads one
file, one novel or the first entries of the dictionary.
"""

from __future__ import annotations

import gzip
import itertools

import pytest

import bertkit.resources.corpora as corpora
from bertkit.errors import UsageError
from bertkit.resources.corpora import austen, gcide, kernel_docs
from bertkit.resources.corpora.base import Source

REST = """\
.. SPDX-License-Identifier: GPL-2.0

.. _label:

==============
The Big Title
==============

:Author: Someone <a@b.c>

This is the *first* paragraph. It wraps
onto a second line and cites :c:func:`kmalloc` and :ref:`the guide <guide>`.

Run this command::

    $ make htmldocs
    $ echo done

.. code-block:: c

   int x = 1;

.. note::
   Admonitions are prose. Keep them.

- A bullet item
  that wraps.
- Another ``literal`` item.

+-------+-------+
| cell  | cell  |
+-------+-------+

=====  =====
col    col
=====  =====
a      b
=====  =====

term
        Its definition, see `the site <https://example.org>`_.

  --> [ A ] --> [ B ] -->

0x10 0x20 0xff 0x00
"""


def test_rest_cleaning_keeps_prose_and_drops_markup():
    paragraphs = kernel_docs.rest_paragraphs(REST.splitlines())
    assert paragraphs == [
        "The Big Title",
        "This is the first paragraph. It wraps onto a second line and cites kmalloc and the "
        "guide.",
        "Run this command:",
        "Admonitions are prose. Keep them.",
        "A bullet item that wraps.",
        "Another literal item.",
        "term",
        "Its definition, see the site.",
    ]


@pytest.mark.needs_artifacts
def test_real_kernel_document(artifact):
    folder = artifact("linux-doc")
    sentences = kernel_docs.document(folder / "process" / "submitting-patches.rst.gz")
    assert sentences[0] == ("Submitting patches: the essential guide to getting your code into "
                            "the kernel")
    assert len(sentences) > 300
    assert "Describe your changes" in sentences
    text = "\n".join(sentences)
    for markup in ("::", "``", ":ref:", ":doc:", "\n..", "====", "----"):
        assert markup not in text, markup
    assert "$ git log -1 --pretty=fixes" not in text and "abbrev = 12" not in text  # code



@pytest.mark.needs_artifacts
def test_kernel_read_skips_translations(artifact, tmp_path):
    folder = artifact("linux-doc")
    translated = next((folder / "translations").rglob("*.rst.gz"))
    for source, target in ((translated, tmp_path / "translations" / "zh" / "a.rst.gz"),
                           (folder / "process" / "howto.rst.gz", tmp_path / "process" / "h.rst.gz"),
                           (translated, tmp_path / "not-rst.txt.gz")):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    documents = list(kernel_docs.read(tmp_path, corpora.CorpusOptions()))
    assert documents == [kernel_docs.document(tmp_path / "process" / "h.rst.gz")]
    assert documents[0][0] == "HOWTO do Linux kernel development"


ENTRY = """\
Affect \\Af*fect"\\, v. t. [imp. & p. p. {Affected}; p. pr. & vb.
   n. {Affecting}.] [L. affectus, p. p. of afficere. See {Fact}.]
   1. To act upon; to produce an effect or change upon.
      [1913 Webster]

            As might affect the earth with cold heat. --Milton.
      [1913 Webster]

   2. (Med.) To attack, as a disease; as, pneumonia affected the lungs.
      [1913 Webster]

   Syn: To influence; operate; act on; concern.

Zyx \\Zyx\\, n.
   A last word.
"""


def test_gcide_entry_cleaning():
    documents = [gcide.entry_document(blocks)
                 for blocks in gcide.entries(["header\n", "   text\n", *ENTRY.splitlines()])]
    assert documents == [
        ["To act upon; to produce an effect or change upon.",
         "As might affect the earth with cold heat.",
         "To attack, as a disease; as, pneumonia affected the lungs."],
        ["A last word."],
    ]


@pytest.mark.needs_artifacts
def test_real_gcide_entries(artifact):
    path = artifact("gcide") / gcide.FILENAME
    with gzip.open(path, "rb") as handle:
        lines = [gcide._decode(line) for line in itertools.islice(handle, 25_000)]
    documents = [gcide.entry_document(blocks) for blocks in gcide.entries(lines)]
    sentences = [s for d in documents for s in d]
    assert len(documents) > 1000 and len(sentences) > 2000
    text = "\n".join(sentences)
    for markup in ("\\", "{", "}", "[1913", "--Milton", "Syn:", "00-database", "GNU General"):
        assert markup not in text, markup
    affect = next(d for d in documents if "To act upon; to produce an effect or change upon."
                  in d)
    assert "As might affect the earth with cold heat." in affect


def test_austen_chapters_from_lines():
    lines = ["TITLE", "", "By Someone", "", "CHAPTER I", "", "It was a dark", "night. It rained.",
             "", "Then it stopped.", "VOLUME II", "Chapter 2", "Second chapter.", "THE END",
             "A NOTE ON THE TEXT", "Editorial remarks."]
    assert list(austen.chapters(lines)) == [
        ["It was a dark night.", "It rained.", "Then it stopped."], ["Second chapter."]]


@pytest.mark.needs_artifacts
def test_real_austen_novel(artifact):
    from bertkit.resources.rformat import lazy_load

    chapters = list(austen.chapters(lazy_load(artifact("janeaustenr"), "persuasion")))
    assert len(chapters) == 24
    assert chapters[0][0].startswith("Sir Walter Elliot, of Kellynch Hall, in Somersetshire, "
                                     "was a man who, for his own amusement,")
    assert chapters[-1][-1].endswith("more distinguished in its domestic virtues than in its "
                                     "national importance.")
    assert not any(s.lower().startswith(("chapter", "finis")) for c in chapters for s in c)


# --------------------------------------------------------------------------- build_corpus


@pytest.fixture
def fake_sources(monkeypatch, tmp_path):
    """Two in-memory sources (one a test split) and a fetch that needs no network."""
    def train(folder, options):
        yield ["One sentence here.", "Two words."]
        yield ["Two words.", "Three more words."]

    def test(folder, options):
        yield ["Held out text."]

    sources = {"fake-train": Source("wnut16", train), "fake-test": Source("wnut16", test, True)}
    monkeypatch.setattr(corpora, "SOURCES", sources)
    monkeypatch.setattr(corpora, "TRAIN_SOURCES", ("fake-train",))
    monkeypatch.setattr(corpora, "TEST_SOURCES", ("fake-test",))
    calls = []
    monkeypatch.setattr(corpora, "fetch", lambda name, **kw: calls.append(name) or tmp_path)
    return calls


def test_build_corpus_counts_duplicates_and_caches(fake_sources, tmp_path):
    out = tmp_path / "c.txt"
    report = corpora.build_corpus(out)
    assert out.read_text() == ("One sentence here.\nTwo words.\n\n"
                               "Two words.\nThree more words.\n\n")
    assert (report.documents, report.sentences, report.words) == (2, 4, 10)
    assert report.duplicate_lines == 1 and not report.cached
    assert report.per_source == {"fake-train": {"documents": 2, "sentences": 4, "words": 10,
                                                "duplicate_lines": 1}}
    again = corpora.build_corpus(out)
    assert again.cached and again.words == 10 and fake_sources == ["wnut16"]
    both = corpora.build_corpus(tmp_path / "all.txt", include_test=True)
    assert list(both.per_source) == ["fake-train", "fake-test"] and both.documents == 3
    with pytest.raises(UsageError, match="unknown corpus source"):
        corpora.build_corpus(out, sources=("nope",))


def test_default_recipe_has_every_training_source():
    assert set(corpora.TRAIN_SOURCES) >= {"kernel-docs", "austen", "gcide", "friends",
                                          "20newsgroups-train"}
    assert set(corpora.TEST_SOURCES) == {"20newsgroups-test", "reuters-r52-test"}
    assert all(not corpora.SOURCES[n].test_split for n in corpora.TRAIN_SOURCES)
