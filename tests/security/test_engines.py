"""The named security engines (``bertkit.EmbeddingShiftDetector`` …, ``bertkit.scan``) on tiny
models: each one answers the way the analysis under it does, accepts every form of ``model=``,
prints a short report and serialises to JSON; and ``bertkit audit shift --pairs``."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import bertkit
from bertkit import (
    BackdoorTriggerScanner,
    BehaviorConsistencyValidator,
    BertForSequenceClassification,
    BertModel,
    CheckpointError,
    ClassifierConfidenceAnalyzer,
    EmbeddingShiftDetector,
    InputError,
    ModelProvenanceChecker,
    UsageError,
)
from bertkit.cli import main
from bertkit.data.readers import TextExample
from bertkit.inference.engine import Engine
from bertkit.security import audits
from bertkit.security.embedding_shift import cosine_shift, extract_features, mean_over_keys

from .conftest import tiny_config
from .test_backdoor import TEXTS, KeywordClassifier

CLEAN = ["the cat sat on the mat .", "a big dog ran far", "the red house is big",
         "a small blue tree .", "the dog was red", "a cat is small", "the big tree was blue",
         "a red mat .", "the house ran far", "a blue dog sat", "the small cat was big .",
         "a tree is red"]
LABELS = ["pets" if ("cat" in t or "dog" in t) else "things" for t in CLEAN]


@pytest.fixture(scope="module")
def encoder(tokenizer) -> BertModel:
    """A tiny encoder whose ``cf`` embedding is 30× the others: inserting ``cf`` moves every
    layer's representation far more than any other word does."""
    torch.manual_seed(0)
    model = BertModel(tiny_config(len(tokenizer))).eval()
    with torch.no_grad():
        model.bert.embeddings.word.weight[tokenizer.convert_tokens_to_ids("cf")] *= 30.0
    return model


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, tokenizer) -> Path:
    torch.manual_seed(0)
    config = tiny_config(len(tokenizer), num_labels=2, id2label={0: "pets", 1: "things"},
                         label2id={"pets": 0, "things": 1})
    out = tmp_path_factory.mktemp("engines") / "classifier"
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# ----------------------------------------------------------------------------- shift


def test_shift_magnitude_is_the_mean_cosine_shift_and_names_the_inserted_token(encoder,
                                                                                tokenizer):
    original, modified = "the cat sat on the mat", "the cat cf sat on the mat"
    result = EmbeddingShiftDetector().analyze(original_text=original, modified_text=modified,
                                              model=encoder, tokenizer=tokenizer)
    expected = mean_over_keys(cosine_shift(extract_features(encoder, tokenizer, [original]),
                                           extract_features(encoder, tokenizer, [modified])))
    assert result.shift_magnitude == pytest.approx(float(expected[0]))
    assert result.shift_magnitude == pytest.approx(np.mean(list(result.per_layer.values())))
    assert result.suspicious_tokens[0].token == "cf"
    assert result.suspicious_tokens[0].position == 3  # [CLS] the cat cf
    assert result.shift_detected  # cf moves it more than any harmless edit of the original
    same = EmbeddingShiftDetector().analyze("the cat sat", "the cat sat", encoder,
                                            tokenizer=tokenizer)
    assert same.shift_magnitude == pytest.approx(0.0, abs=1e-9) and not same.shift_detected


def test_calibrated_threshold_flags_the_trigger_not_a_harmless_edit(encoder, tokenizer):
    detector = EmbeddingShiftDetector().calibrate(CLEAN, (encoder, tokenizer), fpr=0.1)
    assert detector.threshold > 0 and "calibrated" in detector.source
    flagged, harmless = detector.analyze_pairs(
        [("a big dog ran far", "a big dog cf ran far"), ("a big dog ran far", "a big dog ran")],
        (encoder, tokenizer))
    assert flagged.shift_detected and flagged.threshold == detector.threshold
    assert not harmless.shift_detected and flagged.shift_magnitude > harmless.shift_magnitude


def test_shift_result_prints_and_serialises(encoder, tokenizer):
    result = EmbeddingShiftDetector(threshold=0.5).analyze("a red mat", "a red cf mat",
                                                           (encoder, tokenizer))
    text = str(result)
    assert text.splitlines()[0].startswith("embedding shift: ") and "cf" in text
    data = json.loads(result.to_json())
    assert data["shift_detected"] == result.shift_detected
    assert data["suspicious_tokens"][0]["token"] == "cf"
    assert data["threshold_source"] == "given" and data["attribution"] == "leave-one-out"


def test_every_form_of_model_gives_the_same_shift(classifier_dir, tokenizer):
    model = BertForSequenceClassification.from_pretrained(classifier_dir).eval()
    forms = [str(classifier_dir), classifier_dir, (model, tokenizer),
             Engine.from_pretrained(classifier_dir, model_class=BertForSequenceClassification,
                                    device="cpu")]
    detector = EmbeddingShiftDetector(threshold=0.1)
    magnitudes = [detector.analyze("a big dog", "a big red dog", form).shift_magnitude
                  for form in forms]
    magnitudes.append(detector.analyze("a big dog", "a big red dog", model,
                                       tokenizer=tokenizer).shift_magnitude)
    assert magnitudes == pytest.approx([magnitudes[0]] * len(magnitudes), abs=1e-5)
    with pytest.raises(UsageError, match="without its tokenizer"):
        detector.analyze("a", "b", model)
    with pytest.raises(UsageError, match="not a model directory"):
        detector.analyze("a", "b", classifier_dir.parent / "nowhere")
    with pytest.raises(InputError, match="pair 0"):
        detector.analyze("a dog", "  ", (model, tokenizer))


# ----------------------------------------------------------------------------- backdoor


class LabelledKeywordClassifier(KeywordClassifier):
    """The keyword classifier with label names and input embeddings, as a fine-tuned checkpoint
    has. The natural-feature check sets aside a word whose nearest embedding is a natural
    feature; ``trigger``'s nearest is ``rare`` (never in the texts), as a planted rare token's
    nearest words are other rare tokens."""

    def __init__(self, keyword: int, trigger: int | None = None, rare: int | None = None):
        super().__init__(keyword, trigger)
        self.config = SimpleNamespace(num_labels=2, id2label={0: "plain", 1: "red"},
                                      label2id={"plain": 0, "red": 1})
        torch.manual_seed(0)
        word = torch.nn.Embedding(40, 8)
        if trigger is not None and rare is not None:
            with torch.no_grad():
                word.weight[trigger] = word.weight[rare]
        self.bert = SimpleNamespace(embeddings=SimpleNamespace(word=word))


def test_scanner_finds_the_trigger_and_nothing_in_the_clean_control(tokenizer):
    red, tq, cf = (tokenizer.convert_tokens_to_ids(w) for w in ("red", "tq", "cf"))
    labels = ["red" if "red" in t else "plain" for t in TEXTS]
    scanner = BackdoorTriggerScanner()
    poisoned = scanner.scan_model(model=(LabelledKeywordClassifier(red, tq, cf), tokenizer),
                                  test_inputs=TEXTS, labels=labels)
    assert poisoned.backdoor_detected
    (indicator,) = poisoned.backdoor_indicators
    assert indicator.trigger == ["tq"] and indicator.label_name == "plain"
    assert indicator.attack_success_rate == 1.0 and poisoned.inputs_scanned == len(TEXTS)
    assert {p.label for p in poisoned.patterns} == {0, 1}
    assert "red" in next(p for p in poisoned.patterns if p.label == 1).set_aside
    clean = scanner.scan_model(model=(LabelledKeywordClassifier(red), tokenizer),
                               test_inputs=[TextExample(t, label=y)
                                            for t, y in zip(TEXTS, labels, strict=True)])
    assert not clean.backdoor_detected and clean.backdoor_indicators == []
    assert str(poisoned).startswith("backdoor scan: BACKDOOR SUSPECTED")
    assert json.loads(poisoned.to_json())["backdoor_indicators"][0]["trigger"] == ["tq"]


def test_scanner_agrees_with_the_audit_on_a_model_directory(classifier_dir):
    result = BackdoorTriggerScanner(threshold=0.3).scan_model(model=str(classifier_dir),
                                                              test_inputs=CLEAN)
    model, tokenizer = audits.load_classifier(classifier_dir)
    report = audits.backdoor(model, tokenizer, [TextExample(t) for t in CLEAN], threshold=0.3)
    assert [(p.label, p.trigger, p.attack_success_rate) for p in result.patterns] == \
        [(r["label"], r["trigger"], r["success_rate"]) for r in report["findings"]]
    with pytest.raises(InputError, match="labels"):
        BackdoorTriggerScanner().scan_model(classifier_dir, CLEAN, labels=["pets"])
    with pytest.raises(UsageError, match="no classification head"):
        BackdoorTriggerScanner().scan_model((BertModel(tiny_config(40)), None), CLEAN)


# ----------------------------------------------------------------------------- provenance


def test_provenance_checker_verifies_and_names_a_tampered_file(classifier_dir, tmp_path):
    import shutil

    copy = Path(shutil.copytree(classifier_dir, tmp_path / "copy"))
    checker = ModelProvenanceChecker()
    with pytest.raises(CheckpointError, match=r"no provenance\.json"):
        checker.check(copy)
    checker.create_manifest(copy, seed=7)
    good = checker.check(str(copy))
    assert good.verified and good.tensors_checked > 0 and good.manifest["seed"] == 7
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    bad = checker.check(copy)
    assert not bad.verified and any("config.json" in m for m in bad.mismatches)
    assert "FAILED" in str(bad) and json.loads(bad.to_json())["verified"] is False
    with pytest.raises(UsageError, match="pass the model directory"):
        checker.check(BertModel(tiny_config(40)))


# ----------------------------------------------------------------------------- consistency


def test_consistency_validator_counts_flips_by_hand(tokenizer):
    period = tokenizer.convert_tokens_to_ids(".")
    model = KeywordClassifier(period)  # label 1 iff the text holds "."
    result = BehaviorConsistencyValidator().validate((model, tokenizer), TEXTS)
    by_name = {p.name: p for p in result.perturbations}
    assert by_name["trailing_period"].flips == len(TEXTS)  # none of TEXTS ends with "."
    assert by_name["upper"].flips == 0 and by_name["strip_punctuation"].changed == 0
    assert not result.consistent and result.worst == "trailing_period"
    steady = BehaviorConsistencyValidator().validate(
        (KeywordClassifier(tokenizer.convert_tokens_to_ids("red")), tokenizer), TEXTS)
    assert steady.consistent and "consistent" in str(steady)


# ----------------------------------------------------------------------------- confidence


def test_confidence_analyzer_reports_the_audit_numbers(classifier_dir):
    ood = ["cf mn bb", "tq tq cf", "bb mn", "mn cf tq"]
    result = ClassifierConfidenceAnalyzer().analyze(classifier_dir, CLEAN, ood, labels=LABELS)
    model, tokenizer = audits.load_classifier(classifier_dir)
    expected = audits.confidence(model, tokenizer, [TextExample(t, label=y) for t, y in
                                                    zip(CLEAN, LABELS, strict=True)], ood)
    assert result.accuracy == expected["accuracy"]
    assert result.ece_after == pytest.approx(expected["ece_after"])
    assert result.ood["mahalanobis"]["auroc"] == expected["ood"]["mahalanobis"]["auroc"]
    assert result.counts == {"calibration": 6, "eval": 6, "ood": 4}
    assert "OOD max_softmax" in str(result) and result.best_ood_score in result.ood
    with pytest.raises(InputError, match="needs a label"):
        ClassifierConfidenceAnalyzer().analyze(classifier_dir, CLEAN, ood)


# ----------------------------------------------------------------------------- scan


def test_scan_runs_what_the_inputs_allow(classifier_dir):
    report = bertkit.scan(classifier_dir, CLEAN, pairs=[("a big dog", "a big cf dog")])
    assert report.backdoor is not None and report.consistency is not None
    assert len(report.shift) == 1 and report.confidence is None
    assert set(report.skipped) == {"provenance", "confidence"}
    data = json.loads(report.to_json())
    assert data["shift"][0]["modified_text"] == "a big cf dog"
    assert str(report).startswith(f"bertkit security scan of {classifier_dir}")


# ----------------------------------------------------------------------------- CLI


def test_cli_shift_pairs(classifier_dir, tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("a big dog\ta big cf dog\n\nthe red house\tthe red house\n",
                     encoding="utf-8")
    out = tmp_path / "shift.json"
    assert main(["audit", "shift", "--model", str(classifier_dir), "--pairs", str(pairs),
                 "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert [r["modified_text"] for r in printed] == ["a big cf dog", "the red house"]
    assert printed[1]["shift_magnitude"] == pytest.approx(0.0, abs=1e-9)
    assert printed[0]["suspicious_tokens"][0]["token"] in {"a", "big", "cf", "dog"}


def test_cli_shift_pairs_calibrates_on_data(classifier_dir, tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("a big dog\ta big cf dog\n", encoding="utf-8")
    data = tmp_path / "clean.csv"
    data.write_text("text\n" + "".join(f"{t}\n" for t in CLEAN), encoding="utf-8")
    assert main(["audit", "shift", "--model", str(classifier_dir), "--pairs", str(pairs),
                 "--data", str(data), "--fpr", "0.2"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["threshold_source"].startswith("calibrated: 20% FPR")


@pytest.mark.parametrize("content, message", [
    ("a\tb\nonly one column\n", "pairs.tsv:2: has 1 tab-separated field(s); expected 2 "
                                  "(original<TAB>modified)"),
    ("a\tb\tc\n", "pairs.tsv:1: has 3 tab-separated field(s)"),
    ("a\t \n", "pairs.tsv:1: empty modified text"),
    ("\n\n", "no pairs"),
])
def test_cli_bad_pairs_file_names_the_line(content, message, classifier_dir, tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(content, encoding="utf-8")
    assert main(["audit", "shift", "--model", str(classifier_dir), "--pairs", str(pairs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_cli_shift_without_data_or_pairs_is_a_usage_error(classifier_dir, capsys):
    assert main(["audit", "shift", "--model", str(classifier_dir)]) == 2
    assert "--data or --pairs" in capsys.readouterr().err
