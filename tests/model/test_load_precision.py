"""``from_pretrained(dtype=..., torch_dtype=..., device=...)`` as ``transformers`` users write
them, and the refusals: unknown dtypes, disagreeing spellings, a precision this CPU would run
several times slower (bfloat16 without bf16 instructions, float16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bertkit import BertModel
from bertkit.errors import UsageError
from bertkit.model import placement
from tiny import tiny_config


@pytest.fixture()
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    BertModel(tiny_config(30)).save_pretrained(tmp_path)
    return tmp_path


@pytest.fixture()
def native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this CPU has bf16 instructions (the project's CI CPU may not)."""
    monkeypatch.setattr(placement, "cpu_has_native_bf16", lambda: True)


@pytest.fixture()
def no_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(placement, "cpu_has_native_bf16", lambda: False)


def dtype_of(model: BertModel) -> torch.dtype:
    return model.bert.embeddings.word.weight.dtype


@pytest.mark.parametrize("spelling", [{}, {"dtype": "float32"}, {"dtype": torch.float32},
                                      {"torch_dtype": "float32"},
                                      {"dtype": "float32", "torch_dtype": torch.float32}])
def test_float32_spellings(checkpoint: Path, spelling: dict):
    assert dtype_of(BertModel.from_pretrained(checkpoint, **spelling)) == torch.float32


@pytest.mark.parametrize("spelling", [{"dtype": "bfloat16"}, {"dtype": torch.bfloat16},
                                      {"torch_dtype": "bfloat16"}])
def test_bfloat16_spellings(checkpoint: Path, native_bf16: None, spelling: dict):
    model = BertModel.from_pretrained(checkpoint, **spelling)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    ids = torch.tensor([[2, 7, 8, 3]])
    with torch.inference_mode():
        assert model(ids).last_hidden_state.dtype == torch.bfloat16


@pytest.mark.parametrize("key", ["torch_dtype", "dtype"])
def test_auto_reads_config_json(checkpoint: Path, native_bf16: None, key: str):
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, key: "bfloat16"}))
    assert dtype_of(BertModel.from_pretrained(checkpoint, dtype="auto")) == torch.bfloat16
    assert dtype_of(BertModel.from_pretrained(checkpoint)) == torch.float32  # default


def test_auto_without_a_declared_dtype_uses_the_weights(checkpoint: Path):
    assert dtype_of(BertModel.from_pretrained(checkpoint, dtype="auto")) == torch.float32


def test_auto_keeps_float32_where_bf16_would_be_slow(checkpoint: Path, no_bf16: None):
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, "torch_dtype": "bfloat16"}))
    assert dtype_of(BertModel.from_pretrained(checkpoint, dtype="auto")) == torch.float32


def test_bfloat16_without_bf16_instructions_is_explained(checkpoint: Path, no_bf16: None):
    with pytest.raises(UsageError, match=r"no native bfloat16 instructions.*avx512_bf16"):
        BertModel.from_pretrained(checkpoint, dtype="bfloat16")


def test_float16_on_cpu_is_explained(checkpoint: Path):
    with pytest.raises(UsageError, match="float16 has no fast CPU kernels"):
        BertModel.from_pretrained(checkpoint, torch_dtype=torch.float16)


@pytest.mark.parametrize("bad", ["float8", "int8", torch.float64, 16])
def test_unknown_dtype_names_the_supported_ones(checkpoint: Path, bad: object):
    with pytest.raises(UsageError, match=r"expected one of \['float32', 'bfloat16', 'float16'\]"):
        BertModel.from_pretrained(checkpoint, dtype=bad)


def test_disagreeing_dtype_and_torch_dtype(checkpoint: Path):
    with pytest.raises(UsageError, match="disagree"):
        BertModel.from_pretrained(checkpoint, dtype="float32", torch_dtype="bfloat16")


def test_device(checkpoint: Path):
    model = BertModel.from_pretrained(checkpoint, device="cpu")
    assert dtype_of(model) == torch.float32 and model.bert.embeddings.word.weight.is_cpu
    assert BertModel.from_pretrained(checkpoint, device=torch.device("cpu")) is not None
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        BertModel.from_pretrained(checkpoint, device="tpu")


def test_bfloat16_minilm_stays_close_on_real_sentences(minilm_dir: Path, real_lines: list[str],
                                                       native_bf16: None):
    """bf16 weights, LayerNorm and softmax accumulating in float32 inside PyTorch's CPU
    kernels: mean-pooled sentence vectors within cosine 0.9999 of float32."""
    from bertkit import Tokenizer

    tokenizer = Tokenizer.from_pretrained(minilm_dir)
    batch = tokenizer(real_lines[:24], return_tensors="pt", padding=True, truncation=True,
                      max_length=64)
    vectors = []
    for kwargs in ({}, {"dtype": "bfloat16"}):
        model = BertModel.from_pretrained(minilm_dir, **kwargs)
        with torch.inference_mode():
            hidden = model(batch["input_ids"], batch["attention_mask"]).last_hidden_state
        weights = batch["attention_mask"].unsqueeze(-1).float()
        vectors.append((hidden.float() * weights).sum(1) / weights.sum(1))
    cosine = torch.cosine_similarity(*vectors)
    assert cosine.mean() >= 0.9999 and cosine.min() >= 0.999
