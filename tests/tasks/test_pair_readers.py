"""Tests for bertkit.data.readers.pairs: TSV / JSONL source–target pairs and their errors."""

from __future__ import annotations

import json

import pytest

from bertkit.data.readers import TextPair, read_pairs
from bertkit.errors import DataFormatError, UsageError


def test_tsv_pairs_keep_order_lines_and_literal_quotes(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text('Hallo Welt\tHello world\n\n"Zitat" bleibt\t"quote" stays\r\n',
                    encoding="utf-8")
    assert read_pairs(path) == [TextPair("Hallo Welt", "Hello world", path, 1),
                                TextPair('"Zitat" bleibt', '"quote" stays', path, 3)]


def test_jsonl_pairs_with_chosen_fields(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"de": "eins", "en": "one", "extra": 1}, {"de": "zwei", "en": "two"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    pairs = read_pairs(path, source_field="de", target_field="en")
    assert [(p.source, p.target, p.line) for p in pairs] == [("eins", "one", 1),
                                                              ("zwei", "two", 2)]


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("a.tsv", "ok\tfine\nthree\tfields\there\n", r"a\.tsv:2: has 3 tab-separated field\(s\); "
                                                 "expected 2"),
    ("b.tsv", "no tab at all\n", r"b\.tsv:1: has 1 tab-separated"),
    ("c.tsv", "ok\tfine\n  \tempty source\n", r"c\.tsv:2: empty source text"),
    ("d.tsv", "ok\t \n", r"d\.tsv:1: empty target text"),
    ("e.jsonl", '{"source": "a", "target": "b"}\n{"source": "a", \n',
     r"e\.jsonl:2: invalid JSON"),
    ("f.jsonl", '{"source": "a", "tgt": "b"}\n', r"f\.jsonl:1: no field 'target'; the fields "
                                                 r"found are \['source', 'tgt'\]"),
    ("g.jsonl", '{"source": "a", "target": 3}\n', r"g\.jsonl:1: field 'target' holds int 3; "
                                                  "expected a text string"),
    ("h.jsonl", '["a", "b"]\n', r"h\.jsonl:1: expected a JSON object per line, got list"),
    ("i.jsonl", '{"source": "", "target": "b"}\n', r"i\.jsonl:1: empty source text"),
    ("j.tsv", "\n\n", r"j\.tsv: no pairs; expected source<TAB>target lines"),
])
def test_bad_lines_name_file_line_and_expectation(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError, match=expected):
        read_pairs(path)


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(UsageError, match=r"suffix '\.csv'; expected \.tsv, \.txt or \.jsonl"):
        read_pairs(tmp_path / "x.csv")
    with pytest.raises(DataFormatError, match="file not found"):
        read_pairs(tmp_path / "missing.tsv")
