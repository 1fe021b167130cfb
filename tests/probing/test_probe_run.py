"""Whole probe runs: ``bertkit probe`` on a tiny model, its outputs, its refusals; one real
all-MiniLM-L6-v2 run on a few hundred Brown sentences (needs_artifacts)."""

from __future__ import annotations

import json
import shutil

import pytest

from bertkit.analysis import ProbeResult, probe
from bertkit.analysis.linear_probe import ProbeSettings
from bertkit.cli import main
from bertkit.errors import DataFormatError, UsageError
from bertkit.inference.attention_maps import viz_available

FAST = ProbeSettings(epochs=3)
OBJECTS = ["dog", "cat", "run", "walk", "man", "park"]


def test_cli_writes_table_json_html_and_figure(probe_model_dir, brown_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["probe", "--model", str(probe_model_dir), "--task", "pos-brown",
                 "--brown", str(brown_dir), "--out", str(out), "--epochs", "3",
                 "--max-train", "80", "--max-test", "40", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "baseline: per-word" in printed and "model (random init)" in printed
    data = json.loads((out / "probe.json").read_text())
    result = ProbeResult.from_json(data)
    assert [c.kind for c in result.curves] == ["trained", "random-init"]
    for curve, raw in zip(result.curves, data["curves"], strict=True):
        assert [s.layer for s in curve.scores] == [0, 1, 2]
        assert curve.test_items == result.test_items > 0
        for score, row in zip(curve.scores, raw["scores"], strict=True):
            assert row["selectivity"] == pytest.approx(score.accuracy - score.control_accuracy)
            assert 0.0 <= score.control_accuracy <= 1.0
    assert 0 < result.baselines["majority"] < result.baselines["per-word"] < 1
    assert result.label_names == [".", "ADJ", "DET", "NOUN", "VERB"]
    page = (out / "probe.html").read_text()
    assert "<table>" in page and "selectivity" in page
    assert (out / "probe.png").exists() == viz_available()
    assert not [p for p in out.iterdir() if p.name.startswith("bertkit-probe-")]  # scratch


def test_sentence_task_and_mean_pooling(probe_model_dir, brown_dir):
    result = probe([probe_model_dir], "sentence-length", brown=brown_dir, layers=[0, -1],
                   pooling="mean", random_baseline=False, settings=FAST)
    assert result.level == "sentence" and result.pooling == "mean"
    assert [s.layer for s in result.curves[0].scores] == [0, 2]
    assert "per-word" not in result.baselines


def test_layer_out_of_range_names_the_valid_range(probe_model_dir, brown_dir, tmp_path,
                                                  capsys):
    with pytest.raises(UsageError, match=r"layer 7 is out of range for a model with 2 layers: "
                                         r"use 0\.\.2"):
        probe([probe_model_dir], "pos-brown", brown=brown_dir, layers=[1, 7])
    code = main(["probe", "--model", str(probe_model_dir), "--task", "pos-brown", "--brown",
                 str(brown_dir), "--layers", "-4", "--out", str(tmp_path / "o")])
    assert code == 2 and "use 0..2" in capsys.readouterr().err
    code = main(["probe", "--model", str(probe_model_dir), "--task", "pos-brown", "--brown",
                 str(brown_dir), "--layers", "1,x", "--out", str(tmp_path / "o")])
    assert code == 2 and "comma-separated integers" in capsys.readouterr().err


def test_task_with_one_class_is_refused(probe_model_dir, brown_writer, tmp_path):
    brown = brown_writer(tmp_path / "brown", sentences_per_file=2, files=6)
    for path in brown.iterdir():  # every word a noun
        text = path.read_text(encoding="latin-1")
        path.write_text(" ".join(f"{t.rpartition('/')[0]}/nn" for t in text.split()),
                        encoding="latin-1")
    with pytest.raises(DataFormatError, match="every training item has the label 'NOUN'; a "
                                              "probe needs at least two classes"):
        probe([probe_model_dir], "pos-brown", brown=brown)


def test_text_file_without_sentences_fails_the_command(probe_model_dir, tmp_path, capsys):
    text = tmp_path / "empty.txt"
    text.write_text("\n  \nhi\n", encoding="utf-8")
    code = main(["probe", "--model", str(probe_model_dir), "--task", "bigram-shift", "--text",
                 str(text), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "empty.txt: no usable sentences" in capsys.readouterr().err


@pytest.mark.needs_artifacts
def test_minilm_middle_layers_know_part_of_speech(minilm_dir, artifact, tmp_path):
    """A small real run: 20 of Brown's 500 files (split by document), 100 training and 40
    held-out sentences of them (~3k words)."""
    files = sorted(artifact("brown").glob("c[a-r][0-9][0-9]"))[::25]
    brown = tmp_path / "brown"
    brown.mkdir()
    for path in files:
        shutil.copy(path, brown / path.name)
    result = probe([minilm_dir], "pos-brown", brown=brown, layers=[0, 3],
                   max_train=100, max_test=40, random_baseline=False, device="cpu",
                   settings=ProbeSettings(epochs=3, batch_size=128), scratch=tmp_path)
    layer0, layer3 = result.curves[0].scores
    assert layer3.accuracy > result.baselines["majority"] + 0.5
    assert layer3.accuracy > layer0.accuracy
    assert layer3.selectivity > 0.1


def test_ner_task_from_a_conll_file(probe_model_dir, tmp_path):
    rows = []  # 60 different sentences (a split keeps each sentence's repeats together)
    for i in range(60):
        rows += ["the\tO", f"{'man' if i % 2 else 'park'}\tB-{'person' if i % 2 else 'loc'}",
                 "saw\tO", "a\tO", f"{OBJECTS[i // 2 % 6]}\tO", *[".\tO"] * (i // 12), ""]
    data = tmp_path / "ner.conll"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = probe([probe_model_dir], "ner", data=data, layers=[0], random_baseline=False,
                   settings=FAST)
    assert result.label_names == ["O", "loc", "person"]  # BIO prefixes dropped
    assert result.source == str(data)
    data.write_text("the\tO\ndog\tO\n\na\tO\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"ner\.conll: .*(no items|label 'O')"):
        probe([probe_model_dir], "ner", data=data, random_baseline=False)


@pytest.mark.needs_artifacts
def test_wnut16_entities_as_a_probe_target(artifact):
    """A fine-tuned task head's data (the real WNUT-16 NER file) as a word-level probe task."""
    from bertkit.analysis import build_task

    artifact("wnut16")
    task = build_task("ner-wnut16", max_train=200, max_test=50)
    assert task.level == "word" and "O" in task.label_names
    assert {"person", "geo-loc", "company"} <= set(task.label_names)  # BIO prefixes dropped
    assert not any(name.startswith(("B-", "I-")) for name in task.label_names)
    assert len(task.train.sentences) == 200 and len(task.test.sentences) == 50
    assert not set(task.train.sentences) & set(task.test.sentences)
    assert len(task.train.labels) == sum(map(len, task.train.sentences))
