"""Fuzzed data files: every reader of labelled data and corpora, under seeded mutations.

Each test builds a small valid file, checks it reads, then runs the format-free mutations
(truncation, byte flips, invalid UTF-8, empty, whitespace-only, a 1 MB line, a directory in
its place) and, for the structured formats, every required field missing or of a wrong type
(see ``tests/fuzzing.py`` for what counts as a clear error and a crash).
"""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from bertkit.data.corpus import read_documents
from bertkit.data.readers import read_classification, read_conll, read_pairs, read_squad
from fuzzing import byte_cases, json_field_cases, run_cases

CASES = 24  # format-free mutations per file, on top of the fixed ones

CONLL = ("-DOCSTART- O\n\nEU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\n"
         "Peter B-PER\nBlackburn I-PER\n")
SQUAD = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{
    "context": "The cat sat on the mat.",
    "qas": [{"id": "q1", "question": "Where did the cat sit?",
             "answers": [{"text": "on the mat", "answer_start": 12}], "is_impossible": False},
            {"id": "q2", "question": "Why?", "answers": [], "is_impossible": True}]}]}]}
RECORDS = [{"text": "good film", "label": "pos"}, {"text": "bad plot", "label": "neg"}]
PAIRS = [{"source": "ein Haus", "target": "a house"}, {"source": "der Hund", "target": "the dog"}]


def check(read, path, valid: bytes, seed: int, structured=(), *, corpus: bool = False):
    """Run the cases; a corpus may be a directory of files or empty (it streams documents)."""
    path.write_bytes(valid)
    read(path)  # the unmutated file is valid
    cases = byte_cases(valid, random.Random(seed), CASES)
    if corpus:
        cases = (replace(c, must_fail=c.must_fail and bool(c.data and c.data.strip()))
                 for c in cases)
    return run_cases(read, path, (*cases, *structured))


def test_conll(tmp_path):
    check(read_conll, tmp_path / "train.conll", CONLL.encode(), 1)


def test_squad(tmp_path):
    qa, answer = ("data", 0, "paragraphs", 0, "qas", 0), ("answers", 0)
    fields = [("data",), ("data", 0, "paragraphs"), ("data", 0, "paragraphs", 0, "context"),
              ("data", 0, "paragraphs", 0, "qas"), (*qa, "id"), (*qa, "question"),
              (*qa, "answers"), (*qa, *answer, "text"), (*qa, *answer, "answer_start")]
    # A question without answers is unanswerable in 2.0 (is_impossible may then be absent).
    wrong = {(*qa, "is_impossible"): (None, "yes", 1), (*qa, "answers"): (None, {}, 1.5, True)}
    structured = json_field_cases(SQUAD, [*fields, (*qa, "is_impossible")], wrong=wrong,
                                  optional=((*qa, "is_impossible"),))
    check(read_squad, tmp_path / "dev.json", json.dumps(SQUAD, indent=1).encode(), 2,
          structured)


@pytest.mark.parametrize("suffix", ["csv", "tsv"])
def test_classification_tables(tmp_path, suffix):
    sep = "," if suffix == "csv" else "\t"
    text = "".join(f"{r['text']}{sep}{r['label']}\n" for r in RECORDS)
    check(read_classification, tmp_path / f"train.{suffix}",
          f"text{sep}label\n{text}".encode(), 3)


def test_classification_jsonl(tmp_path):
    structured = json_field_cases(RECORDS, [(0, "text"), (1, "label")], line_format=True,
                                  wrong={(1, "label"): (None, [], {}, 1.5, True, " ")})
    check(read_classification, tmp_path / "train.jsonl",
          "".join(json.dumps(r) + "\n" for r in RECORDS).encode(), 4, structured)


def test_regression_labels(tmp_path):
    records = [{"text": "a", "label": 0.5}, {"text": "b", "label": 2}]
    structured = json_field_cases(records, [(1, "label")], line_format=True,
                                  wrong={(1, "label"): (None, [], "NaN", "inf", "x", True)})

    def read(path):
        return read_classification(path, label_kind="regression")

    check(read, tmp_path / "scores.jsonl",
          "".join(json.dumps(r) + "\n" for r in records).encode(), 5, structured)


def test_pairs_tsv(tmp_path):
    text = "".join(f"{p['source']}\t{p['target']}\n" for p in PAIRS)
    check(read_pairs, tmp_path / "pairs.tsv", text.encode(), 6)


def test_pairs_jsonl(tmp_path):
    structured = json_field_cases(PAIRS, [(0, "source"), (1, "target")], line_format=True)
    check(read_pairs, tmp_path / "pairs.jsonl",
          "".join(json.dumps(p) + "\n" for p in PAIRS).encode(), 7, structured)


@pytest.mark.parametrize("fmt", ["lines", "free"])
def test_corpus(tmp_path, fmt):
    text = "The first sentence. A second one.\nAnother line here.\n\nA new document.\n"

    def read(path):
        return list(read_documents([path], fmt=fmt, duplicate_warning=None))

    check(read, tmp_path / "corpus.txt", text.encode(), 8, corpus=True)
