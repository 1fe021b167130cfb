"""The probing parts on their own: extraction, the linear probe, control tasks, task builders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertkit import BertModel
from bertkit.analysis.control import control_labels, majority_accuracy, per_type_accuracy
from bertkit.analysis.extract import sentence_representations, word_representations
from bertkit.analysis.linear_probe import LinearProbe, ProbeSettings
from bertkit.analysis.tasks import (
    bigram_shift,
    length_bin,
    read_text_sentences,
    sentence_length,
    word_content,
)
from bertkit.errors import DataFormatError, UsageError
from bertkit.inference.engine import Engine


@pytest.fixture(scope="module")
def engine(probe_model_dir):
    return Engine.from_pretrained(probe_model_dir, device="cpu", batch_size=2)


def _reference(probe_model_dir, engine, words):
    """Hidden states of the core model (not the engine's fast form), and the word ids."""
    model = BertModel.from_pretrained(probe_model_dir).eval()
    encoded = engine.tokenizer([words], is_split_into_words=True, return_word_ids=True)
    ids = torch.tensor(encoded["input_ids"])
    with torch.no_grad():
        states = model(ids, torch.ones_like(ids), output_hidden_states=True).hidden_states
    return states, encoded["word_ids"][0]


def test_word_vectors_pool_sub_tokens_first_or_mean(probe_model_dir, engine):
    sentences = [["the", "dog", "walking"], ["a", "cat", "runs", "."], ["dog"] * 20, []]
    reps = {p: word_representations(engine, sentences, pooling=p, dtype="float32")
            for p in ("first", "mean")}
    states, word_ids = _reference(probe_model_dir, engine, sentences[0])
    assert word_ids.count(2) == 2  # "walking" is walk ##ing
    positions = [t for t, w in enumerate(word_ids) if w == 2]
    for layer in (0, 1, 2):
        first = reps["first"].layer(layer)[2]
        mean = reps["mean"].layer(layer)[2]
        np.testing.assert_allclose(first, states[layer][0, positions[0]], atol=1e-4)
        np.testing.assert_allclose(mean, states[layer][0, positions].mean(0), atol=1e-4)
        assert not np.allclose(first, mean, atol=1e-3)
    # The 20-word sentence exceeds the model's 16 tokens: skipped, not truncated.
    kept = reps["first"].kept
    assert kept[:7].all() and not kept[7:].any() and len(kept) == 27
    assert reps["first"].skipped_sentences == 2  # the long one and the empty one


def test_sentence_vectors_cls_and_mean(probe_model_dir, engine):
    sentences = [["the", "dog", "saw", "a", "cat"], ["a", "man", "."]]
    cls = sentence_representations(engine, sentences, layers=[-1], pooling="cls",
                                   dtype="float32")
    mean = sentence_representations(engine, sentences, layers=[2], pooling="mean",
                                    dtype="float32")
    states, _ = _reference(probe_model_dir, engine, sentences[1])
    np.testing.assert_allclose(cls.layer(2)[1], states[2][0, 0], atol=1e-4)
    np.testing.assert_allclose(mean.layer(2)[1], states[2][0].mean(0), atol=1e-4)


def test_extraction_refuses_bad_layer_and_pooling(engine, tmp_path):
    with pytest.raises(UsageError, match=r"layer 3 is out of range.*use 0\.\.2"):
        word_representations(engine, [["dog"]], layers=[0, 3])
    with pytest.raises(UsageError, match="word pooling='cls'"):
        word_representations(engine, [["dog"]], pooling="cls")
    reps = word_representations(engine, [["dog", "cat"]], store=tmp_path)
    assert isinstance(reps.layer(1), np.memmap) and reps.layer(1).dtype == np.float16
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "layer00.npy", "layer01.npy", "layer02.npy"]


def test_linear_probe_agrees_with_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 24)) * 1.2
    y = rng.integers(0, 4, size=1600)
    x = (centres[y] + rng.normal(size=(1600, 24))) * rng.uniform(0.1, 50, size=24)
    train, test = slice(0, 1200), slice(1200, None)
    settings = ProbeSettings(epochs=10, batch_size=400)
    ours = LinearProbe(4, settings).fit(x[train].astype(np.float16), y[train])
    theirs = LogisticRegression(max_iter=2000).fit(
        (x[train] - x[train].mean(0)) / x[train].std(0), y[train])
    reference = theirs.score((x[test] - x[train].mean(0)) / x[train].std(0), y[test])
    assert reference > 0.6
    assert abs(ours.accuracy(x[test], y[test]) - reference) < 0.03
    with pytest.raises(UsageError, match="at least 2 classes"):
        LinearProbe(1)
    with pytest.raises(UsageError, match=r"labels must lie in 0\.\.3"):
        LinearProbe(4).fit(x[:10], np.full(10, 7))


def test_control_labels_are_fixed_per_type_with_the_task_distribution():
    types = [f"w{i % 3000}" for i in range(9000)]
    labels = control_labels(types, np.array([0.6, 0.3, 0.1]), seed=3)
    by_type = {}
    for word_type, label in zip(types, labels, strict=True):
        assert by_type.setdefault(word_type, label) == label
    shares = np.bincount([by_type[t] for t in sorted(by_type)], minlength=3) / len(by_type)
    np.testing.assert_allclose(shares, [0.6, 0.3, 0.1], atol=0.03)
    assert not np.array_equal(labels, control_labels(types, np.array([0.6, 0.3, 0.1]), seed=4))
    # the same type gets the same label in another split, whatever else that split holds
    assert control_labels(["w7"], np.array([0.6, 0.3, 0.1]), seed=3)[0] == by_type["w7"]


def test_baselines():
    train_types, train_y = ["run", "run", "run", "dog", "the"], np.array([1, 1, 2, 0, 3])
    test_types, test_y = ["run", "dog", "cat", "the"], np.array([2, 0, 1, 3])
    assert majority_accuracy(train_y, test_y) == 0.25        # label 1 is the majority
    # run→1 (wrong), dog→0, cat unseen→majority 1 (right), the→3
    assert per_type_accuracy(train_types, train_y, test_types, test_y) == 0.75


def test_sentence_tasks_from_text(tmp_path, brown_dir):
    assert [length_bin(n) for n in (1, 5, 6, 20, 21, 30, 31, 99)] == [
        "1-5", "1-5", "6-10", "16-20", "21-30", "21-30", "31+", "31+"]
    lengths = sentence_length(brown=brown_dir)
    assert lengths.level == "sentence" and len(set(lengths.train.labels)) > 1
    shift = bigram_shift(brown=brown_dir)
    shares = np.bincount(shift.train.labels) / len(shift.train.labels)
    assert 0.35 < shares[1] < 0.65
    text = tmp_path / "text.txt"
    names = ["".join(chr(97 + int(d)) for d in str(i % 30)) for i in range(200)]
    lines = [f"the cat sat on {name} " + "very " * (i // 30) + "today"  # no two alike
             for i, name in enumerate(names)]
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    shifted = bigram_shift(text=text)
    for words, label in zip(shifted.train.sentences, shifted.train.labels, strict=True):
        original = next(line.split() for line in lines if sorted(line.split()) == sorted(words))
        differ = [i for i, (a, b) in enumerate(zip(words, original, strict=True)) if a != b]
        assert (label == 1) == bool(differ)
        if differ:  # exactly two neighbours, swapped
            assert len(differ) == 2 and differ[1] == differ[0] + 1
    content = word_content(text=text)
    for words, label in zip(content.train.sentences, content.train.labels, strict=True):
        held = {w.lower() for w in words} & set(content.label_names)
        assert held == {content.label_names[label]}


def test_text_file_without_usable_sentences(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("one two\n\nthree\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"short\.txt: no usable sentences.*3 lines read"):
        read_text_sentences(path)
    with pytest.raises(DataFormatError, match=r"short\.txt: no usable sentences"):
        sentence_length(text=path)


def test_extraction_streams_with_a_progress_line(engine, capsys):
    sentences = [["the", "dog"], ["a", "cat", "runs"], ["the", "man"], ["dog"]]
    word_representations(engine, sentences, layers=[1], progress=True)
    lines = capsys.readouterr().err.splitlines()  # one line a batch when not on a terminal
    assert [line.split(" | ")[0] for line in lines] == ["step 1/2", "step 2/2"]
    assert all(line.endswith("sentences/s") for line in lines)
    word_representations(engine, sentences, layers=[1])
    assert capsys.readouterr().err == ""


def test_a_repeated_sentence_lands_in_one_split(tmp_path):
    """Held-out sentences must not be training sentences: a text file's (and a CoNLL file's)
    split hashes the sentence itself, so its repeats go with it."""
    lines = [f"sentence number {i} is here" + " more" * (i % 8) for i in range(40)] * 3
    path = tmp_path / "repeats.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = sentence_length(text=path)
    assert task.train.sentences and task.test.sentences
    assert not set(task.train.sentences) & set(task.test.sentences)
    assert len(task.train.sentences) + len(task.test.sentences) == 120
