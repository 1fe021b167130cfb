"""Multiple choice end to end on a tiny model: JSONL reader (and its line-naming errors), the
``(B, C, T)`` collate, the runner through ``bertkit finetune multiple-choice``, ``bertkit
predict``/``evaluate`` and the server's ``/v1/multiple-choice``."""

from __future__ import annotations

import json
import random

import pytest
import torch

from bertkit import BertModel
from bertkit.cli import main
from bertkit.errors import DataFormatError
from bertkit.tasks.evaluation import evaluate, predict
from bertkit.tasks.multiple_choice import choice_features, collate_choices, read_choices
from tiny import tiny_config, word_tokenizer

WORDS = ["the", "film", "was", "food", "is", "very", "and", "it", "good", "bad", "great", "dull"]


def _rows(n: int, seed: int) -> list[dict]:
    """The right choice is always a positive word, at a random place among three."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        right = rng.choice(["good", "great"])
        choices = [right, "bad", "dull"]
        rng.shuffle(choices)
        context = " ".join(rng.choice(["the film was", "the food is", "it was very"]).split())
        rows.append({"context": context, "choices": choices, "label": choices.index(right)})
    return rows


def _write(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("choice")
    tokenizer = word_tokenizer(root, WORDS, 16)
    torch.manual_seed(0)
    base = root / "base"
    BertModel(tiny_config(len(tokenizer), max_position_embeddings=16)).save_pretrained(base)
    tokenizer.save_pretrained(base)
    _write(root / "train.jsonl", _rows(48, 1))
    dev = _rows(12, 2)
    dev[0]["label"] = dev[0]["choices"][dev[0]["label"]]  # a label given as the choice's text
    _write(root / "dev.jsonl", dev)
    out = root / "run"
    assert main(["finetune", "multiple-choice", "--model", str(base), "--train",
                 str(root / "train.jsonl"), "--eval", str(root / "dev.jsonl"), "--out", str(out),
                 "--epochs", "6", "--lr", "3e-3", "--batch-size", "8", "--max-length", "16",
                 "--seed", "0", "--device", "cpu"]) == 0
    return root, out


def test_the_runner_learns_and_predict_evaluate_agree(run, tmp_path):
    root, out = run
    final = json.loads((out / "final_metrics.json").read_text())
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert final["metric"] == "accuracy" and final["total"] == 12
    # Chance is 1/3; the rule (pick the positive word) is one token's identity.
    assert final["accuracy"] >= 0.9, history
    records = predict("multiple-choice", out, root / "dev.jsonl", device="cpu")
    dev = read_choices(root / "dev.jsonl")
    hits = sum(r["label"] == e.label for r, e in zip(records, dev, strict=True))
    assert hits / len(dev) == pytest.approx(final["accuracy"])
    assert all(r["choice"] == e.choices[r["label"]] for r, e in zip(records, dev, strict=True))
    assert all(sum(r["scores"]) == pytest.approx(1, abs=1e-4) for r in records)
    assert evaluate("multiple-choice", out, root / "dev.jsonl",
                    device="cpu")["accuracy"] == pytest.approx(final["accuracy"])
    unlabelled = tmp_path / "ask.jsonl"
    _write(unlabelled, [{"context": "the film was", "choices": ["dull", "great"]}])
    assert main(["predict", "multiple-choice", "--model", str(out), str(unlabelled),
                 "--output", str(tmp_path / "p.jsonl"), "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "p.jsonl").read_text())["choice"] == "great"


def test_collate_is_batch_by_choices_by_length(run):
    root, out = run
    from bertkit import Tokenizer

    tokenizer = Tokenizer.from_pretrained(out)
    examples = read_choices(root / "dev.jsonl")[:2]
    features = choice_features(tokenizer, examples, max_length=6)  # contexts cut to fit
    batch = collate_choices(features, [0, 1], pad_id=tokenizer.pad_token_id)
    assert batch["input_ids"].shape == (2, 3, 6) and batch["labels"].tolist() == [
        e.label for e in examples]
    for b, example in enumerate(examples):
        for c, choice in enumerate(example.choices):  # the choice is kept whole, after [SEP]
            ids = batch["input_ids"][b, c][batch["attention_mask"][b, c].bool()].tolist()
            assert ids[-2] == tokenizer.convert_tokens_to_ids(choice)
            assert batch["token_type_ids"][b, c, len(ids) - 2].item() == 1


@pytest.mark.parametrize(("line", "message"), [
    ("not json", r"bad\.jsonl:2: not JSON"),
    ('["a"]', r":2: got list; expected a JSON object"),
    ('{"context": "", "choices": ["a", "b"], "label": 0}', r':2: field "context"'),
    ('{"context": "c", "choices": ["a"], "label": 0}', r':2: field "choices".*at least 2'),
    ('{"context": "c", "choices": ["a", 3], "label": 0}', r':2: field "choices"'),
    ('{"context": "c", "choices": ["a", "b"], "label": 2}', r':2: field "label" = 2.*0\.\.1'),
    ('{"context": "c", "choices": ["a", "b"], "label": "z"}', r":2: field \"label\" = 'z'"),
    ('{"context": "c", "choices": ["a", "b"]}', r':2: field "label" = None'),
    ('{"context": "c", "choices": ["a", "b", "d"], "label": 0}', r":2: 3 choices; line 1 has 2"),
])
def test_bad_lines_are_named(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"context": "c", "choices": ["a", "b"], "label": 1}\n' + line + "\n",
                    encoding="utf-8")
    with pytest.raises(DataFormatError, match=message):
        read_choices(path)


def test_an_empty_or_missing_file_is_an_error(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no examples"):
        read_choices(tmp_path / "empty.jsonl")
    with pytest.raises(DataFormatError, match="file not found"):
        read_choices(tmp_path / "absent.jsonl")


def test_the_server_route_answers_and_rejects(run):
    pytest.importorskip("fastapi", reason="fastapi not installed (pip install 'bertkit[server]')")
    from fastapi.testclient import TestClient

    from bertkit.server import ServedModel
    from bertkit.server.app import create_app

    _, out = run
    expected = predict("multiple-choice", out, texts=None, data=run[0] / "dev.jsonl",
                       device="cpu")[:2]
    dev = read_choices(run[0] / "dev.jsonl")[:2]
    served = ServedModel.load("auto", out, device="cpu")
    assert served.endpoints[0] == "multiple-choice"
    with TestClient(create_app([served])) as http:
        inputs = [{"context": e.context, "choices": list(e.choices)} for e in dev]
        inputs.append({"context": "the food is", "choices": ["dull", "great"]})  # 2 choices
        reply = http.post("/v1/multiple-choice", json={"inputs": inputs}).json()
        assert [r["label"] for r in reply["results"][:2]] == [r["label"] for r in expected]
        assert reply["results"][2]["choice"] == "great"
        for body, field in [({"inputs": []}, "inputs"),
                            ({"inputs": [{"context": "c", "choices": ["good"]}]},
                             "inputs[0].choices"),
                            ({"inputs": [{"context": " ", "choices": ["good", "bad"]}]},
                             "inputs[0].context"),
                            ({"inputs": [{"context": "c", "choices": ["good", ""]}]},
                             "inputs[0].choices[1]")]:
            answer = http.post("/v1/multiple-choice", json=body)
            assert answer.status_code == 422 and answer.json()["error"]["field"] == field
        assert http.post("/v1/multiple-choice", json={"inputs": [{"context": "c"}]}
                         ).status_code == 422


def test_search_keeps_the_best_dev_trial(run, tmp_path, capsys):
    """``--search``: trials scored on the dev file only, the best one kept as OUT (not
    retrained), every trial in search.json, no other trial's weights left behind."""
    pytest.importorskip("optuna", reason="optuna not installed (pip install 'bertkit[search]')")
    from bertkit.security.provenance import verify_manifest

    root, _ = run
    out = tmp_path / "search"
    assert main(["finetune", "multiple-choice", "--model", str(root / "base"), "--train",
                 str(root / "train.jsonl"), "--eval", str(root / "dev.jsonl"), "--out", str(out),
                 "--max-length", "16", "--device", "cpu", "--search", "3"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    found = json.loads((out / "search.json").read_text())
    assert len(found["trials"]) == 3 and found["final_model"].startswith("kept best trial")
    complete = [t for t in found["trials"] if t["state"] == "complete"]
    best = max(complete, key=lambda t: t["dev_accuracy"])
    assert found["best_trial"] == best["trial"] == printed["best_trial"]
    assert len({json.dumps(t["params"], sort_keys=True) for t in found["trials"]}) == 3
    final = json.loads((out / "final_metrics.json").read_text())
    assert final["accuracy"] == best["dev_accuracy"] == printed["accuracy"]
    run_config = json.loads((out / "run_config.json").read_text())
    assert run_config["finetune"]["learning_rate"] == best["params"]["learning_rate"]
    assert run_config["eval"] == str(root / "dev.jsonl")
    assert not (out / ".trials").exists() and list(out.rglob("*.safetensors")) == [
        out / "model.safetensors"]
    assert verify_manifest(out).ok
    assert evaluate("multiple-choice", out, root / "dev.jsonl",
                    device="cpu")["accuracy"] == pytest.approx(final["accuracy"])


def test_search_bad_input_is_one_line(run, tmp_path, capsys, monkeypatch):
    root, _ = run
    base = ["finetune", "multiple-choice", "--model", str(root / "base"), "--train",
            str(root / "train.jsonl"), "--eval", str(root / "dev.jsonl"), "--device", "cpu"]
    with pytest.raises(SystemExit) as refused:  # argparse, from the flag's declared range
        main([*base, "--out", str(tmp_path / "a"), "--search", "0"])
    assert refused.value.code == 2
    assert "--search: expected an integer from 1" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "optuna", None)  # not installed
    assert main([*base, "--out", str(tmp_path / "b"), "--search", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --search needs Optuna: pip install 'bertkit[search]'"]
