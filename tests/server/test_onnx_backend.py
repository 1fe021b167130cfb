"""The ONNX Runtime backend: the server exports the checkpoint at start-up and answers what
the PyTorch backend answers (embeddings through the encoder graph, classification through the
head's graph, both via :class:`bertkit.export.runtime.OnnxRuntimeModel`)."""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient

from bertkit.errors import UsageError
from bertkit.server import ServedModel, create_app

pytestmark = pytest.mark.slow

pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install "
                                          "'bertkit[onnx]')")
pytest.importorskip("onnxscript", reason="onnxscript not installed")

TEXTS = ["the cat sat on the mat .", "a very good film",
         " ".join(["bob lives in london and alice lives in paris ."] * 3)]  # needs windows


@pytest.mark.parametrize(("task", "path", "read"), [
    ("embeddings", "/v1/sentence-embeddings", lambda body: body["embeddings"]),
    ("classify", "/v1/classify",
     lambda body: [[r["scores"]["negative"], r["scores"]["positive"]] for r in body["results"]]),
])
def test_onnx_backend_answers_what_torch_answers(model_dirs, served, task, path, read):
    onnx = ServedModel.load(f"{task}-onnx", model_dirs[task], backend="onnx")
    try:
        assert onnx.endpoints == (task,)
        with TestClient(create_app([served[task], onnx])) as http:
            want = http.post(path, json={"texts": TEXTS, "model": task}).json()
            got = http.post(path, json={"texts": TEXTS, "model": f"{task}-onnx"}).json()
    finally:
        onnx.close()
    assert not onnx.workdir.exists()
    torch.testing.assert_close(torch.tensor(read(got)), torch.tensor(read(want)), atol=1e-4,
                               rtol=0)


def test_onnx_backend_refuses_fill_mask(model_dirs):
    with pytest.raises(UsageError, match="torch backend only"):
        ServedModel.load("fm", model_dirs["fill-mask"], backend="onnx")
