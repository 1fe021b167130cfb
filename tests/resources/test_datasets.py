"""Tests for bertkit.resources.datasets: the real Amazon fine-food reviews (Debian
r-cran-modeldata),
read from R's format and written as JSONL that the classification reader takes."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bertkit.data.readers import read_classification
from bertkit.errors import ArtifactError
from bertkit.resources.datasets import finefood_reviews, write_finefood_reviews
from real_artifacts import unavailable


@pytest.fixture(scope="module")
def reviews():
    try:
        return finefood_reviews()
    except ArtifactError as err:
        unavailable("modeldata", err)


@pytest.mark.needs_artifacts
def test_real_finefood_counts_labels_and_texts(reviews):
    assert {split: len(examples) for split, examples in reviews.items()} == {
        "train": 4000, "test": 1000}
    assert Counter(e.label for e in reviews["train"]) == {"great": 2600, "other": 1400}
    assert Counter(e.label for e in reviews["test"]) == {"great": 658, "other": 342}
    for examples in reviews.values():
        assert all(e.text.strip() and "<br" not in e.text.lower() for e in examples)
        assert [e.line for e in examples] == list(range(1, len(examples) + 1))
    assert reviews["train"][0].text.startswith("this stuff is not stuffing")
    assert reviews["train"][0].label == "other"


@pytest.mark.needs_artifacts
def test_real_finefood_jsonl_round_trip_and_cli(reviews, tmp_path, capsys):
    from bertkit.cli import main

    paths = write_finefood_reviews(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finefood-test.jsonl",
                                                          "finefood-train.jsonl"]
    for split, path in paths.items():
        read = read_classification(path)  # the defaults of `bertkit finetune classify`
        assert [(e.text, e.label) for e in read] == [(e.text, e.label) for e in reviews[split]]
    first = json.loads(paths["test"].read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"text", "label", "product"} and first["product"].startswith("B0")
    assert main(["data", "finefoods", "--out", str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("train\t4000 examples\tgreat 2600\tother 1400")
    assert printed[1].startswith("test\t1000 examples\tgreat 658\tother 342")
