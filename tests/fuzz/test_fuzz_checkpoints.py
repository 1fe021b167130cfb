"""Fuzzed model files: config.json, vocab.txt, tokenizer.json, model.safetensors and
pytorch_model.bin, each mutated in a tiny saved checkpoint and loaded the way users load them.

Beyond the byte mutations (``tests/fuzzing.py``): config fields of the wrong type or out of
range; safetensors files with a tensor of the wrong dtype or shape, a required tensor missing,
an extra one (accepted with a warning, as ``transformers`` does); and a pickle that would run
code on load, which must be refused without running (it would create a file).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from bertkit import BertConfig, BertModel, Tokenizer
from bertkit.errors import CheckpointError, DataFormatError
from fuzzing import Case, byte_cases, json_field_cases, run_cases
from tiny import tiny_config, word_tokenizer

CASES = 16
WORDS = ["the", "cat", "sat", "on", "mat", "##s"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("checkpoint")
    torch.manual_seed(0)
    BertModel(tiny_config(len(WORDS) + 5, hidden_size=16, intermediate_size=24,
                          num_attention_heads=2)).save_pretrained(directory)
    tokenizer = word_tokenizer(directory, WORDS, max_length=32)
    tokenizer.save_pretrained(directory)
    return directory


def fresh(checkpoint: Path, tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    for file in checkpoint.iterdir():
        (directory / file.name).write_bytes(file.read_bytes())
    return directory


def test_config_json(checkpoint, tmp_path):
    directory = fresh(checkpoint, tmp_path)
    path = directory / "config.json"
    valid = path.read_bytes()
    config = json.loads(valid)
    fields = [(k,) for k in ("vocab_size", "hidden_size", "num_hidden_layers",
                             "num_attention_heads", "intermediate_size",
                             "max_position_embeddings")]
    numbers = (None, [], "12", 1.5, True, 0, -3, 10**12)
    # hidden_size 10**12 would be accepted by a config reader and then allocate; it is not
    # among the cases because the config alone cannot know the machine's memory.
    wrong = {f: numbers[:-1] for f in fields}
    structured = json_field_cases(config, fields, wrong=wrong,
                                  optional=tuple(fields))  # every field has a BERT default
    cases = [*byte_cases(valid, random.Random(11), CASES), *structured,
             Case("a JSON list", b"[1, 2]", True), Case("a JSON string", b'"bert"', True)]
    run_cases(BertConfig.from_pretrained, path, iter(cases))


def test_vocab_txt(checkpoint, tmp_path):
    path = fresh(checkpoint, tmp_path) / "vocab.txt"
    valid = path.read_bytes()
    without_mask = valid.replace(b"[MASK]\n", b"")
    cases = [*byte_cases(valid, random.Random(12), CASES),
             Case("no [MASK]", without_mask, False)]

    def read(file: Path) -> None:
        Tokenizer.from_pretrained(file)("the cat sat")

    run_cases(read, path, iter(cases))


def test_tokenizer_json(checkpoint, tmp_path):
    path = fresh(checkpoint, tmp_path) / "tokenizer.json"
    valid = path.read_bytes()
    document = json.loads(valid)
    structured = json_field_cases(document, [("model",), ("model", "vocab")],
                                  wrong={("model",): (None, [], 1.5, True),
                                         ("model", "vocab"): (None, 1.5, True, "x")})

    def read(file: Path) -> None:
        Tokenizer.from_pretrained(file)("the cat sat")

    run_cases(read, path, iter([*byte_cases(valid, random.Random(13), CASES), *structured]))


def tensor_cases(valid: dict[str, torch.Tensor]) -> list[tuple[str, dict, bool]]:
    """(name, tensors, must_fail) for the safetensors-level mutations."""
    name = "embeddings.word_embeddings.weight"
    first = next(iter(valid))
    out = []
    for dtype in (torch.int64, torch.int32, torch.bool, torch.uint8):
        out.append((f"{name} as {dtype}", {**valid, name: valid[name].to(dtype)}, True))
    out.append((f"{name} as float16", {**valid, name: valid[name].half()}, False))
    out.append(("wrong shape", {**valid, name: valid[name][:-1]}, True))
    out.append(("transposed", {**valid, name: valid[name].t().contiguous()}, True))
    out.append(("a scalar", {**valid, name: torch.tensor(1.0)}, True))
    missing = {k: v for k, v in valid.items() if k != name}
    out.append(("missing word embeddings", missing, True))
    out.append(("no tensors", {}, True))
    out.append(("extra tensor", {**valid, "extra.weight": torch.zeros(3)}, False))
    out.append((f"{first} renamed", {("x" + k if k == first else k): v
                                     for k, v in valid.items()}, True))
    return out


def test_model_safetensors(checkpoint, tmp_path, caplog):
    directory = fresh(checkpoint, tmp_path)
    path = directory / "model.safetensors"
    valid_bytes = path.read_bytes()
    valid = load_file(path)
    staged = tmp_path / "staged.safetensors"
    cases = list(byte_cases(valid_bytes, random.Random(14), CASES))
    for name, tensors, must_fail in tensor_cases(valid):
        save_file(tensors, staged)
        cases.append(Case(name, staged.read_bytes(), must_fail))
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        tally = run_cases(lambda _: BertModel.from_pretrained(directory), path, iter(cases))
    assert tally["accepted"] >= 2  # float16 weights and an extra tensor load, as in transformers
    assert "bert.extra" in caplog.text  # … and the extra tensor is named, not dropped silently


class _RunsCode:
    """A pickle that would create a file when unpickled (``os.mkdir`` through ``__reduce__``)."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (str(self.target),))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the plain-pickle case
def test_pytorch_model_bin(checkpoint, tmp_path):
    directory = fresh(checkpoint, tmp_path)
    (directory / "model.safetensors").unlink()
    path = directory / "pytorch_model.bin"
    torch.save({f"bert.{k}": v for k, v in load_file(checkpoint / "model.safetensors").items()},
               path)
    valid = path.read_bytes()
    BertModel.from_pretrained(directory)
    target = tmp_path / "created-by-the-pickle"
    staged = tmp_path / "staged.bin"
    torch.save({"bert.embeddings.word_embeddings.weight": _RunsCode(target)}, staged)
    evil_torch = staged.read_bytes()
    evil_plain = pickle.dumps({"weights": _RunsCode(target)})
    cases = [*byte_cases(valid, random.Random(15), CASES),
             Case("code in a torch.save pickle", evil_torch, True),
             Case("code in a plain pickle", evil_plain, True),
             Case("a list, not a mapping", pickle.dumps([1, 2]), True)]
    run_cases(lambda _: BertModel.from_pretrained(directory), path, iter(cases))
    assert not target.exists(), "a crafted pickle ran code on load"


def test_crafted_pickle_is_refused_with_a_clear_error(tmp_path):
    """The refusal itself: one CheckpointError that says why (not just 'some error')."""
    target = tmp_path / "created"
    torch.save({"w": _RunsCode(target)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="refused to load"):
        from bertkit.checkpoints.huggingface import read_weights
        read_weights(tmp_path / "pytorch_model.bin")
    assert not target.exists()


def test_directory_where_config_json_should_be(checkpoint, tmp_path):
    directory = fresh(checkpoint, tmp_path)
    (directory / "config.json").unlink()
    (directory / "config.json").mkdir()
    with pytest.raises(DataFormatError, match=r"config\.json: is a directory; expected a JSON"):
        BertModel.from_pretrained(directory)
