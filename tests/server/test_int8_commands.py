"""``--quantize int8`` on ``bertkit embed``, ``predict`` and ``serve`` (the same int8 load as
``from_pretrained(quantize="int8")``), and the refusals around it: a dtype that would run
several times slower on this CPU, int8 with bfloat16, int8 on the ONNX backend, int8 training.
Here beside the server tests for their tiny checkpoints with tokenizers (``model_dirs``)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from bertkit.cli import main
from bertkit.errors import UsageError
from bertkit.inference.engine import Engine
from bertkit.inference.fastpath.quantized import is_quantized
from bertkit.model import placement
from bertkit.model.pretrained import BertModel
from bertkit.server import ServedModel
from bertkit.training import TrainConfig, Trainer

TEXTS = ["the cat sat on the mat .", "alice met bob in paris", "the film was very good"]


def embed(directory: Path, tmp_path: Path, *options: str) -> np.ndarray:
    source, out = tmp_path / "texts.txt", tmp_path / f"out{len(options)}.npy"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    assert main(["embed", "--model", str(directory), "--input", str(source), "--output",
                 str(out), "--device", "cpu", *options]) == 0
    return np.load(out)


def test_embed_int8_stays_close_to_float32(model_dirs: dict[str, Path], tmp_path: Path):
    float32 = embed(model_dirs["embeddings"], tmp_path)
    int8 = embed(model_dirs["embeddings"], tmp_path, "--quantize", "int8")
    assert int8.shape == float32.shape and not np.array_equal(int8, float32)
    cosine = (int8 * float32).sum(1) / np.linalg.norm(int8, axis=1) / np.linalg.norm(float32,
                                                                                      axis=1)
    assert cosine.min() > 0.99


def predict(directory: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
            *options: str) -> list[dict]:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(TEXTS)))
    assert main(["predict", "classify", "--model", str(directory), "-", "--device", "cpu",
                 *options]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_predict_int8_agrees_with_float32(model_dirs: dict[str, Path],
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture):
    float32 = predict(model_dirs["classify"], monkeypatch, capsys)
    int8 = predict(model_dirs["classify"], monkeypatch, capsys, "--quantize", "int8")
    assert len(int8) == len(float32) == len(TEXTS)
    for a, b in zip(float32, int8, strict=True):
        assert a["scores"].keys() == b["scores"].keys()
        assert max(abs(a["scores"][k] - b["scores"][k]) for k in a["scores"]) < 0.05


def test_serve_loads_int8_and_refuses_it_on_onnx(model_dirs: dict[str, Path]):
    served = ServedModel.load("c", model_dirs["classify"], device="cpu", quantize="int8")
    assert is_quantized(served.predictor.model) and served.engine.model is served.predictor.model
    embedder = ServedModel.load("e", model_dirs["embeddings"], device="cpu", quantize="int8")
    assert is_quantized(embedder.engine.model)
    with pytest.raises(UsageError, match="torch backend"):
        ServedModel.load("o", model_dirs["classify"], backend="onnx", quantize="int8")


def test_cli_rejects_unknown_quantization(model_dirs: dict[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        main(["embed", "--model", str(model_dirs["embeddings"]), "--output",
              str(tmp_path / "x.npy"), "--quantize", "int4"])
    assert "invalid choice: 'int4'" in capsys.readouterr().err


def test_slow_bfloat16_is_refused_unless_forced(model_dirs: dict[str, Path],
                                                monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture):
    monkeypatch.setattr(placement, "cpu_has_native_bf16", lambda: False)
    directory = model_dirs["embeddings"]
    with pytest.raises(UsageError, match=r"no native bfloat16 instructions.*--force-dtype"):
        Engine.from_pretrained(directory, device="cpu", dtype="bfloat16")
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        forced = Engine.from_pretrained(directory, device="cpu", dtype="bfloat16",
                                        force_dtype=True)
    assert next(forced.model.parameters()).dtype == torch.bfloat16
    assert "forced" in caplog.text


def test_int8_with_bfloat16_is_refused_as_a_conflict(model_dirs: dict[str, Path],
                                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(placement, "cpu_has_native_bf16", lambda: False)  # checked first
    with pytest.raises(UsageError, match="int8 keeps the layers it does not quantise"):
        Engine.from_pretrained(model_dirs["embeddings"], device="cpu", dtype="bfloat16",
                               quantize="int8")


def test_int8_model_is_refused_by_the_trainer(model_dirs: dict[str, Path]):
    model = BertModel.from_pretrained(model_dirs["embeddings"], quantize="int8")
    with pytest.raises(UsageError, match="holds int8 layers"):
        Trainer(model, lambda m, b: m(**b).last_hidden_state.sum(), [], TrainConfig())
