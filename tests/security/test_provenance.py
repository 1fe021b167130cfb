"""Provenance manifests: a saved checkpoint verifies; one flipped value, a truncated file, an
added or removed file is found and named; the CLI exits 2 with one ``error:`` line."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from bertkit import BertModel, CheckpointError
from bertkit.cli import main
from bertkit.security.provenance import (
    MANIFEST,
    build_manifest,
    data_fingerprint,
    verify_manifest,
    write_manifest,
)

from .conftest import tiny_config

WEIGHTS = "model.safetensors"


@pytest.fixture
def checkpoint(tmp_path: Path, tokenizer) -> Path:
    torch.manual_seed(0)
    directory = tmp_path / "ckpt"
    BertModel(tiny_config(len(tokenizer))).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    data = tmp_path / "corpus.txt"
    data.write_text("the cat sat on the mat .\n\na big dog ran far\n", encoding="utf-8")
    write_manifest(directory, training_data=[data], seed=1234)
    return directory


def _offsets(path: Path) -> dict[str, tuple[int, int]]:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    header.pop("__metadata__", None)
    return {k: (8 + length + v["data_offsets"][0], 8 + length + v["data_offsets"][1])
            for k, v in header.items()}


def test_manifest_content_and_clean_verify(checkpoint: Path):
    manifest = json.loads((checkpoint / MANIFEST).read_text())
    tensors = load_file(checkpoint / WEIGHTS)
    assert set(manifest["tensors"][WEIGHTS]) == set(tensors)
    assert {"config.json", WEIGHTS, "tokenizer.json"} <= set(manifest["files"])
    assert "tokenizer.json" in manifest["tokenizer_files"]
    assert manifest["config"]["hidden_size"] == 16
    assert manifest["seed"] == 1234
    assert manifest["bertkit_version"]
    assert len(manifest["training_data"]["fingerprint"]) == 64
    report = verify_manifest(checkpoint)
    assert report.ok, report.summary()
    assert report.tensors_checked == len(tensors)
    # deterministic: rebuilding gives the same manifest
    assert build_manifest(checkpoint, training_data=None, seed=1234)["files"] == manifest["files"]


def test_data_fingerprint_tracks_content_not_location(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "data").mkdir(parents=True)
        (d / "data" / "x.txt").write_text("hello\n")
    assert data_fingerprint([a / "data"]) == data_fingerprint([b / "data"])
    (b / "data" / "x.txt").write_text("hellO\n")
    assert data_fingerprint([a / "data"])["fingerprint"] != data_fingerprint([b / "data"])[
        "fingerprint"]


def test_one_flipped_byte_names_the_tensor(checkpoint: Path):
    path = checkpoint / WEIGHTS
    name = sorted(_offsets(path))[3]
    start, _ = _offsets(path)[name]
    raw = bytearray(path.read_bytes())
    raw[start + 1] ^= 0x01  # one bit of one float
    path.write_bytes(bytes(raw))
    report = verify_manifest(checkpoint)
    assert [(m.kind, m.tensor) for m in report.mismatches] == [("tensor-changed", name)]
    assert name in report.summary()


def test_a_rewritten_tensor_value_is_named(checkpoint: Path):
    path = checkpoint / WEIGHTS
    state = load_file(path)
    target = "encoder.layer.1.attention.output.dense.weight"
    target = target if target in state else sorted(state)[-1]
    state[target][0, 0] += 1.0  # a planted change, saved the normal way
    save_file(state, str(path), metadata={"format": "pt"})
    report = verify_manifest(checkpoint)
    assert [m.tensor for m in report.mismatches] == [target]
    with pytest.raises(CheckpointError, match=target.replace(".", r"\.")):
        report.raise_on_mismatch()


def test_truncation_names_the_cut_tensors(checkpoint: Path):
    path = checkpoint / WEIGHTS
    offsets = _offsets(path)
    last = max(offsets, key=lambda k: offsets[k][1])
    path.write_bytes(path.read_bytes()[:-8])
    report = verify_manifest(checkpoint)
    assert ("tensor-truncated", last) in [(m.kind, m.tensor) for m in report.mismatches]
    assert all(m.kind == "tensor-truncated" for m in report.mismatches)


def test_added_removed_and_edited_files(checkpoint: Path):
    (checkpoint / "pytorch_model.bin").write_bytes(b"pickled surprise")
    (checkpoint / "vocab.txt").unlink()
    config = json.loads((checkpoint / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (checkpoint / "config.json").write_text(json.dumps(config))
    found = {(m.kind, m.file) for m in verify_manifest(checkpoint).mismatches}
    assert found == {("unexpected", "pytorch_model.bin"), ("missing", "vocab.txt"),
                     ("changed", "config.json")}


def test_cli_exit_codes(checkpoint: Path, capsys):
    assert main(["audit", "verify", str(checkpoint)]) == 0
    assert "provenance verified" in capsys.readouterr().out
    path = checkpoint / WEIGHTS
    name = sorted(_offsets(path))[0]
    start, _ = _offsets(path)[name]
    raw = bytearray(path.read_bytes())
    raw[start] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert main(["audit", "verify", str(checkpoint)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and name in err[0]
    # a fresh manifest accepts the new state
    assert main(["audit", "manifest", str(checkpoint), "--seed", "7"]) == 0
    assert main(["audit", "verify", str(checkpoint)]) == 0


def test_cli_errors_for_missing_manifest_and_directory(tmp_path: Path, capsys):
    (tmp_path / "config.json").write_text("{}")
    assert main(["audit", "verify", str(tmp_path)]) == 2
    assert "no provenance.json" in capsys.readouterr().err
    assert main(["audit", "manifest", str(tmp_path / "nope")]) == 2
    assert "no such checkpoint directory" in capsys.readouterr().err


def test_load_verified_refuses_a_tampered_checkpoint(checkpoint: Path):
    from bertkit.security.provenance import load_verified

    model = load_verified(BertModel, checkpoint)
    assert model.config.hidden_size == 16
    path = checkpoint / WEIGHTS
    name = sorted(_offsets(path))[-1]
    start, _ = _offsets(path)[name]
    raw = bytearray(path.read_bytes())
    raw[start] ^= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        load_verified(BertModel, checkpoint)


@pytest.fixture
def finetuned_run(tmp_path: Path, tokenizer) -> Path:
    """A run directory written by bertkit's own fine-tuning runner (tiny model, 8 texts)."""
    from bertkit.data.readers import TextExample
    from bertkit.runs.finetune import FinetuneConfig, finetune_classifier

    base = tmp_path / "base"
    torch.manual_seed(0)
    BertModel(tiny_config(len(tokenizer))).save_pretrained(base)
    tokenizer.save_pretrained(base)
    train = tmp_path / "train.tsv"
    rows = [("the cat is red", "a"), ("a dog ran far", "b")] * 4
    train.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    examples = [TextExample(t, label=y) for t, y in rows]
    finetune_classifier(base, train, "held-out", tmp_path / "run", eval_examples=examples,
                        config=FinetuneConfig(epochs=1, batch_size=4, max_length=16, seed=3))
    return tmp_path / "run"


def test_the_finetuning_runner_writes_a_manifest_that_verifies(finetuned_run: Path, capsys):
    manifest = json.loads((finetuned_run / MANIFEST).read_text())
    files = sorted(p.name for p in finetuned_run.iterdir() if p.name != MANIFEST)
    assert sorted(manifest["files"]) == files  # written last: every file is listed
    assert {WEIGHTS, "config.json", "vocab.txt", "run_config.json",
            "predictions.jsonl"} <= set(files)
    assert manifest["seed"] == 3 and manifest["training_data"]["files"][0]["name"] == "train.tsv"
    assert main(["audit", "verify", str(finetuned_run)]) == 0
    assert "provenance verified" in capsys.readouterr().out


def test_tampering_any_file_of_a_finetuned_run_is_named(finetuned_run: Path, capsys):
    from bertkit.security.audits import load_classifier

    files = sorted(p for p in finetuned_run.iterdir() if p.name != MANIFEST)
    for path in files:
        original = path.read_bytes()
        raw = bytearray(original)
        raw[-2] ^= 0x01  # the last bytes: tensor data in a safetensors file, text elsewhere
        path.write_bytes(bytes(raw))
        assert main(["audit", "verify", str(finetuned_run)]) == 2, path.name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and path.name in err[0], (path.name, err)
        with pytest.raises(CheckpointError, match=path.name.replace(".", r"\.")):
            load_classifier(finetuned_run, verify_manifest=True)
        path.write_bytes(original)
    model, _ = load_classifier(finetuned_run, verify_manifest=True)  # restored: loads
    assert model.config.num_labels == 2


def test_the_pretraining_runner_writes_a_manifest_that_verifies(tmp_path: Path, tokenizer):
    from bertkit.runs.pretrain import PretrainSettings, pretrain

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat .\na big dog ran far\n\nthe house is red\n" * 4,
                      encoding="utf-8")
    tokenizer.save_pretrained(tmp_path / "vocab")
    result = pretrain(PretrainSettings(
        corpus=[corpus], output_dir=tmp_path / "out", tokenizer=tmp_path / "vocab",
        model_overrides={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                         "intermediate_size": 32}, seq_len=16, batch_size=4, max_steps=2,
        eval_fraction=0, log_every=0, progress=False, device="cpu"))
    model_dir = result.model_dir
    report = verify_manifest(model_dir)
    assert report.ok and report.files_checked == len(
        [p for p in model_dir.rglob("*") if p.is_file() and p.name != MANIFEST])
    assert WEIGHTS in json.loads((model_dir / MANIFEST).read_text())["files"]
