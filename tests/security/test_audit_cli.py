"""``bertkit audit <detector>`` and ``audit all`` on a tiny classifier: each command runs end to
end, and bad input (no classification head, an empty reference set, labels the model does not
know, a checkpoint whose manifest does not verify) is one ``error:`` line and exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bertkit import BertForMaskedLM, BertForSequenceClassification, BertModel
from bertkit.cli import main
from bertkit.security.provenance import write_manifest
from extras import hide_matplotlib

from .conftest import tiny_config

TEXTS = ["the cat sat on the mat .", "a big dog ran far", "the red house is big",
         "a small blue tree", "the dog was red .", "a cat is small", "the big tree was blue",
         "a red mat .", "the house ran far", "a blue dog sat", "the small cat was big .",
         "a tree is red"]


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in rows),
                    encoding="utf-8")
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return _csv(tmp_path / "data.csv", [(t, "pets" if ("cat" in t or "dog" in t) else "things")
                                        for t in TEXTS])


@pytest.fixture
def classifier(tmp_path: Path, tokenizer) -> Path:
    torch.manual_seed(0)
    config = tiny_config(len(tokenizer), num_labels=2, id2label={0: "pets", 1: "things"},
                         label2id={"pets": 0, "things": 1})
    out = tmp_path / "classifier"
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("kind", ["backdoor", "shift", "consistency", "adversarial"])
def test_each_classifier_audit_runs(kind, classifier, data, tmp_path, capsys):
    out = tmp_path / f"{kind}.json"
    args = ["audit", kind, "--model", str(classifier), "--data", str(data), "--out", str(out),
            "--max-texts", "4"] + (["--fpr", "0.2"] if kind == "shift" else [])
    assert main(args) == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    printed = json.loads(capsys.readouterr().out)
    assert printed.keys() == report.keys()
    if kind == "consistency":
        assert report["upper"]["total"] == len(TEXTS)
    if kind == "shift":  # 12 texts → fit 4 / calibrate 4 / attacked 4
        assert (report["fit"], report["calibration"]) == (4, 4)
    if kind == "adversarial":
        assert report["attacked"] == 4.0


def test_backdoor_with_a_reference_model(classifier, data, tmp_path, capsys):
    """The model as its own reference: every word flips both alike, so every score is 0."""
    out = tmp_path / "backdoor.json"
    assert main(["audit", "backdoor", "--model", str(classifier), "--data", str(data),
                 "--reference-model", str(classifier), "--out", str(out),
                 "--threshold", "0.01"]) == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["suspected"] == [] and report["findings"]
    assert all(f["score"] == 0.0 and f["reference_rate"] == f["success_rate"]
               for f in report["findings"])


def test_confidence_and_all_write_reports(classifier, data, tmp_path, capsys):
    ood = _csv(tmp_path / "ood.csv", [("blue blue blue", "x"), ("far far mat", "x")])
    plot = tmp_path / "reliability.png"
    assert main(["audit", "confidence", "--model", str(classifier), "--data", str(data),
                 "--ood", str(ood), "--plot", str(plot)]) == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"calibration": 6, "eval": 6, "ood": 2}
    assert plot.read_bytes()[:4] == b"\x89PNG"
    out = tmp_path / "all"
    assert main(["audit", "all", "--model", str(classifier), "--data", str(data), "--ood",
                 str(ood), "--out", str(out), "--max-texts", "4"]) == 0
    report = json.loads((out / "audit.json").read_text())
    assert set(report["audits"]) == {"confidence", "consistency", "backdoor"}
    assert "at least 19 are needed" in report["skipped"]["shift"]  # 4 calibration texts
    page = (out / "audit.html").read_text()
    assert "data:image/png;base64" in page and "<h2>backdoor</h2>" in page


def test_membership_cli_and_its_bad_input(tmp_path, tokenizer, classifier, capsys):
    torch.manual_seed(0)
    mlm = tmp_path / "mlm"
    BertForMaskedLM(tiny_config(len(tokenizer))).save_pretrained(mlm)
    tokenizer.save_pretrained(mlm)
    members = _csv(tmp_path / "m.csv", [(t, "x") for t in TEXTS[:6]])
    others = _csv(tmp_path / "n.csv", [(t, "x") for t in TEXTS[6:]])
    assert main(["audit", "membership", "--model", str(mlm), "--data", str(members),
                 "--nonmembers", str(others), "--reference-model", str(mlm)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["likelihood_ratio"]["auc"] == 0.5  # a model is its own reference: no signal
    assert main(["audit", "membership", "--model", str(classifier), "--data", str(members),
                 "--nonmembers", str(others)]) == 2
    assert "no masked-LM head" in _error(capsys)


def test_a_model_without_a_classification_head_is_refused(tmp_path, tokenizer, data, capsys):
    encoder = tmp_path / "encoder"
    BertModel(tiny_config(len(tokenizer))).save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    for kind in ("backdoor", "consistency"):
        assert main(["audit", kind, "--model", str(encoder), "--data", str(data)]) == 2
        assert "no classification head" in _error(capsys)


def test_an_empty_reference_set_is_refused(classifier, tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n", encoding="utf-8")
    for kind in ("shift", "backdoor"):
        assert main(["audit", kind, "--model", str(classifier), "--data", str(empty)]) == 2
        assert "no examples" in _error(capsys)
    few = _csv(tmp_path / "two.csv", [("a cat", "pets"), ("a dog", "pets")])
    assert main(["audit", "shift", "--model", str(classifier), "--data", str(few)]) == 2
    assert "at least 3 are needed" in _error(capsys)


def test_labels_unseen_by_the_model_are_refused(classifier, data, tmp_path, capsys):
    bad = _csv(tmp_path / "bad.csv", [(t, "weather") for t in TEXTS[:4]])
    ood = _csv(tmp_path / "ood.csv", [("blue blue blue", "x")])
    assert main(["audit", "confidence", "--model", str(classifier), "--data", str(bad),
                 "--ood", str(ood)]) == 2
    message = _error(capsys)
    assert "'weather' unseen by the model" in message and "pets" in message


def test_verify_manifest_refuses_a_tampered_checkpoint(classifier, data, capsys):
    args = ["audit", "consistency", "--model", str(classifier), "--data", str(data),
            "--verify-manifest"]
    (classifier / "provenance.json").unlink(missing_ok=True)
    assert main(args) == 2
    assert "no provenance.json" in _error(capsys)
    write_manifest(classifier)
    assert main(args) == 0
    capsys.readouterr()
    config = json.loads((classifier / "config.json").read_text())
    config["id2label"] = {"0": "things", "1": "pets"}  # swapped label names
    (classifier / "config.json").write_text(json.dumps(config))
    assert main(args) == 2
    assert "changed: config.json" in _error(capsys)


def test_backdoor_labels_mark_natural_features(classifier, data, tmp_path, capsys):
    """With --label-column, a word in >= 3 texts, most of them of one label, is set aside for
    that label (hand-counted from TEXTS; "the", "a", "big" split evenly: no majority), and
    no word set aside for a label is measured for it."""
    assert main(["audit", "backdoor", "--model", str(classifier), "--data", str(data),
                 "--label-column", "label", "--max-texts", "6"]) == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["natural_features_from"] == f"{len(TEXTS)} labelled texts"
    expected = {"pets": {"cat", "dog", ".", "small", "was"},
                "things": {"red", "is", "blue", "tree"}}
    assert report["findings"]
    for finding in report["findings"]:
        # the counted ones, and their nearest embedding neighbours (random in this model)
        assert expected[finding["label_name"]] <= set(finding["natural"])
        assert not set(finding["natural"]) & {w for t, _ in finding["top"] for w in t}
    assert main(["audit", "backdoor", "--model", str(classifier), "--data", str(data),
                 "--max-texts", "6"]) == 0
    assert json.loads(capsys.readouterr().out)["natural_features_from"].startswith("skipped")


def test_audit_all_without_matplotlib_skips_figures(classifier, data, tmp_path, capsys,
                                                    monkeypatch):
    """Without the ``viz`` extra the audits still run: JSON and HTML are written, no figure is,
    and one line names the extra that adds them."""
    hide_matplotlib(monkeypatch)
    ood = _csv(tmp_path / "ood.csv", [("blue blue blue", "x"), ("far far mat", "x")])
    out = tmp_path / "all"
    assert main(["audit", "all", "--model", str(classifier), "--data", str(data), "--ood",
                 str(ood), "--out", str(out), "--max-texts", "4"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line for line in printed if line.startswith("figures skipped")] == [
        "figures skipped: matplotlib is not installed (pip install 'bertkit[viz]' adds them)"]
    report = json.loads((out / "audit.json").read_text())
    assert {"confidence", "consistency", "backdoor"} <= set(report["audits"])
    page = (out / "audit.html").read_text()
    assert "<h2>backdoor</h2>" in page and "bertkit[viz]" in page and "data:image" not in page
    assert not list(out.glob("*.png"))
