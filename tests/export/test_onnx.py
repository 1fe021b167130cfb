"""ONNX export: parity with PyTorch for every head, padded and unpadded, on other batch sizes
and lengths than the export example; a graph or weights that went wrong must fail ``verify``;
the CLI's exit codes; real all-MiniLM-L6-v2 parity on real sentences; int8 quantisation.

Each export costs seconds (torch.export tracing), so graphs are exported once per module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from bertkit.cli import main
from bertkit.errors import InputError, UsageError
from bertkit.export.onnx import (
    TASKS,
    ExportGraph,
    OnnxEncoder,
    ParityError,
    default_batches,
    export_onnx,
    output_names,
    verify,
)
from bertkit.model.config import BertConfig

pytestmark = pytest.mark.slow


def tiny_config(**overrides: object) -> BertConfig:
    values: dict = dict(vocab_size=101, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=48, max_position_embeddings=40,
                        type_vocab_size=2, num_labels=3)
    values.update(overrides)
    return BertConfig(**values)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple]:
    """Export each task's tiny random model once: returns (model, path)."""
    cache: dict[str, tuple] = {}
    folder = tmp_path_factory.mktemp("onnx")

    def get(task: str) -> tuple:
        if task not in cache:
            torch.manual_seed(0)
            model = TASKS[task].model_class(tiny_config()).eval()
            cache[task] = (model, export_onnx(model, folder / f"{task}.onnx"))
        return cache[task]

    return get


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_head_matches_pytorch_padded_and_unpadded(task: str, exported: Callable) -> None:
    model, path = exported(task)
    runner = OnnxEncoder(path)
    assert runner.input_names == ("input_ids", "attention_mask", "token_type_ids")
    assert runner.output_names == output_names(model) == TASKS[task].outputs
    assert runner.task == task
    # Default batches: padded 3×23 and unpadded 5×9, the export example was 2×16.
    report = verify(runner, model)
    assert report.ok and len(report.rows) == 2 * len(runner.output_names)
    assert max(report.max_abs.values()) <= 1e-4
    assert {row[0].split()[0] for row in report.rows} == {"padded", "unpadded"}


def test_axes_are_dynamic_in_the_graph(exported: Callable) -> None:
    _, path = exported("encoder")
    graph = onnx.load(str(path), load_external_data=False).graph
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        assert len(dims) == 2 and all(d.dim_param and not d.dim_value for d in dims), value
    hidden = next(v for v in graph.output if v.name == "last_hidden_state")
    dims = hidden.type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_param and dims[2].dim_value == 32


def test_graph_honours_the_mask_and_runs_other_shapes(exported: Callable) -> None:
    """The bias is in the graph for every input: a padded row equals the same row unpadded
    at its real positions, and differs from the row with the padding attended to."""
    model, path = exported("encoder")
    runner = OnnxEncoder(path)
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 101, (7, 31), generator=generator).numpy()
    mask = np.ones_like(ids)
    mask[2, 11:] = 0
    out = runner({"input_ids": ids, "attention_mask": mask})["last_hidden_state"]
    alone = runner({"input_ids": ids[2:3, :11]})["last_hidden_state"]
    np.testing.assert_allclose(out[2, :11], alone[0], atol=1e-5)
    unmasked = runner({"input_ids": ids})["last_hidden_state"]
    assert np.abs(unmasked[2, :11] - out[2, :11]).max() > 1e-3
    with torch.no_grad():
        want = model(torch.from_numpy(ids), torch.from_numpy(mask)).last_hidden_state.numpy()
    np.testing.assert_allclose(out[mask == 1], want[mask == 1], atol=1e-4)
    one = runner({"input_ids": ids[:1, :1]})["last_hidden_state"]
    assert one.shape == (1, 1, 32)


def test_verify_fails_on_tampered_weights(exported: Callable, tmp_path: Path) -> None:
    model, path = exported("sequence-classification")
    proto = onnx.load(str(path))
    target = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    array = onnx.numpy_helper.to_array(target).copy()
    # Noise, not a constant: a constant shift of the word embeddings is undone by LayerNorm.
    array += np.random.default_rng(0).normal(0.0, 0.05, array.shape).astype(array.dtype)
    target.CopyFrom(onnx.numpy_helper.from_array(array, target.name))
    tampered = tmp_path / "tampered.onnx"
    onnx.save(proto, str(tampered))
    with pytest.raises(ParityError, match="differs from PyTorch"):
        verify(tampered, model)
    report = verify(tampered, model, raise_on_failure=False)
    assert not report.ok and report.max_abs["logits"] > 1e-4


def test_verify_fails_against_other_weights_and_outputs(exported: Callable,
                                                        tmp_path: Path) -> None:
    model, path = exported("encoder")
    torch.manual_seed(1)
    other = type(model)(tiny_config()).eval()
    with pytest.raises(ParityError):
        verify(path, other)
    _, qa_path = exported("question-answering")
    with pytest.raises(ParityError, match="graph outputs"):
        verify(qa_path, model)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(path.read_bytes()[: 2000])
    with pytest.raises(ParityError, match="cannot load"):
        OnnxEncoder(broken)


def test_runner_takes_tokenizer_style_inputs_and_names_bad_ones(exported: Callable) -> None:
    _, path = exported("encoder")
    runner = OnnxEncoder(path)
    lists = {"input_ids": [[2, 5, 6, 3], [2, 7, 3, 0]], "attention_mask": [[1, 1, 1, 1],
                                                                           [1, 1, 1, 0]]}
    out = runner(lists)
    assert set(out) == {"last_hidden_state", "pooler_output"}
    assert out["pooler_output"].shape == (2, 32) and out["pooler_output"].dtype == np.float32
    tensors = {k: torch.tensor(v) for k, v in lists.items()}
    np.testing.assert_array_equal(runner(tensors)["pooler_output"], out["pooler_output"])
    with pytest.raises(InputError, match="input_ids"):
        runner({"ids": [[1, 2]]})
    with pytest.raises(InputError, match="attention_mask has shape"):
        runner({"input_ids": [[1, 2]], "attention_mask": [[1, 1, 1]]})
    with pytest.raises(InputError, match=r"\(batch, tokens\)"):
        runner({"input_ids": [1, 2]})


def test_export_rejects_unknown_models_and_writes_atomically(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot export"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "x.onnx")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UsageError, match="no such ONNX file"):
        OnnxEncoder(tmp_path / "missing.onnx")


def test_quantized_graph_runs_close_to_float(exported: Callable, tmp_path: Path) -> None:
    from bertkit.export.quantize import quantize_onnx, quantize_torch

    model, path = exported("encoder")
    target = quantize_onnx(path, tmp_path / "int8.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8.onnx"]
    ops = {node.op_type for node in onnx.load(str(target)).graph.node}
    assert ops & {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul"}
    batches = default_batches(model.config)
    report = verify(target, model, batches, raise_on_failure=False)
    assert 0 < max(report.max_abs.values()) < 0.5  # int8: close, not exact
    quantized = quantize_torch(model)
    ids = torch.from_numpy(batches["unpadded"]["input_ids"])
    with torch.no_grad():
        a = model(ids).last_hidden_state
        b = quantized(ids).last_hidden_state
    assert torch.nn.functional.cosine_similarity(a, b, dim=-1).min() > 0.95
    with pytest.raises(UsageError, match="no such ONNX file"):
        quantize_onnx(tmp_path / "missing.onnx", tmp_path / "out.onnx")


# ---------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bertkit.model.pretrained import BertForSequenceClassification

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("classifier")
    BertForSequenceClassification(tiny_config()).save_pretrained(directory)
    return directory


def test_cli_export_verify_ok_and_quantize(classifier_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.onnx"
    assert main(["export", "onnx", "--model", str(classifier_dir), "--out", str(out),
                 "--verify"]) == 0
    text = capsys.readouterr().out
    assert "exported BertForSequenceClassification" in text and "verify ok" in text
    assert OnnxEncoder(out).task == "sequence-classification"  # --task auto read config.json
    assert main(["export", "quantize", "--onnx", str(out), "--out",
                 str(tmp_path / "q.onnx")]) == 0
    assert "quantised" in capsys.readouterr().out


def test_cli_verify_exits_1_when_the_graph_ignores_the_mask(
        classifier_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The bug an exporter must not make — baking in the unpadded branch — is caught."""
    original = ExportGraph.forward

    def mask_ignored(self, input_ids, attention_mask, token_type_ids):
        return original(self, input_ids, torch.ones_like(attention_mask), token_type_ids)

    monkeypatch.setattr(ExportGraph, "forward", mask_ignored)
    rc = main(["export", "onnx", "--model", str(classifier_dir), "--task", "encoder",
               "--out", str(tmp_path / "bad.onnx"), "--verify"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "verify FAILED" in err and "padded" in err and "NO" in err


def test_cli_user_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "onnx", "--model", str(tmp_path / "nope"), "--out",
                 str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["export", "quantize", "--onnx", str(tmp_path / "nope.onnx"), "--out",
                 str(tmp_path / "q.onnx")]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "onnx", "--model", str(tmp_path), "--out", "m.onnx", "--task", "bogus"])
    assert exit_info.value.code == 2


# ------------------------------------------------------------------------------- real weights


@pytest.mark.needs_artifacts
def test_minilm_parity_on_real_sentences(minilm_dir: Path, real_lines: list[str],
                                         tmp_path: Path) -> None:
    from bertkit.export.quantize import quantize_onnx
    from bertkit.model.pretrained import BertModel
    from bertkit.tokenization import Tokenizer

    model = BertModel.from_pretrained(minilm_dir).eval()
    tokenizer = Tokenizer.from_pretrained(minilm_dir)
    path = export_onnx(model, tmp_path / "minilm.onnx")
    texts = real_lines[::50][:48]
    batches = {}
    for start in range(0, len(texts), 16):
        enc = tokenizer(texts[start:start + 16], padding=True, truncation=True,
                        return_tensors="np")
        batches[f"lines {start}-{start + 15}"] = dict(enc)
    unpadded = tokenizer([texts[0]] * 3, return_tensors="np")
    batches["unpadded"] = dict(unpadded)
    # 40×128 = 5,120 rows: past the size where the eager feed-forward splits its work into
    # blocks (4,096 rows for MiniLM), so a shape-dependent branch frozen at export would show.
    ids = np.random.default_rng(0).integers(1000, model.config.vocab_size, (40, 128))
    mask = np.ones_like(ids)
    mask[3, 50:] = 0
    batches["long"] = {"input_ids": ids, "attention_mask": mask}
    report = verify(path, model, batches, tolerance=1e-4)
    assert report.ok, report.table()
    assert any(not b["attention_mask"].all() for b in batches.values())
    # int8: the sentence vectors stay close (mean pooling over real tokens).
    int8 = OnnxEncoder(quantize_onnx(path, tmp_path / "int8.onnx"))
    fp32 = OnnxEncoder(path)
    enc = tokenizer(texts[:16], padding=True, return_tensors="np")
    m = enc["attention_mask"][..., None]
    a = (fp32(enc)["last_hidden_state"] * m).sum(1)
    b = (int8(enc)["last_hidden_state"] * m).sum(1)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() > 0.95 and cosine.mean() > 0.98  # measured 0.965 / 0.987
