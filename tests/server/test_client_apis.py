"""The OpenAI- and TEI-compatible routes, through the clients people use: the official
``openai`` client and ``huggingface_hub``'s ``InferenceClient`` against a real ``bertkit serve``
process on 127.0.0.1 with an API key; every TEI route in process against what the library
computes; limits, overload and keys answered in each API's own error shape."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

import bertkit
from bertkit.cli import main
from bertkit.inference.embeddings import sentence_embeddings
from bertkit.inference.engine import Engine
from bertkit.model.pretrained import BertForSequenceClassification
from bertkit.server import BatchLimits, RequestLimits, ServedModel, create_app
from bertkit.tasks.evaluation import predict

openai = pytest.importorskip("openai", reason="openai not installed (test extra)")
hub = pytest.importorskip("huggingface_hub", reason="huggingface_hub not installed")

KEY = "sk-bertkit-test-0123"
TEXTS = ["the cat sat on the mat .", "alice met bob in paris .", "a very good film"]
LONG = " ".join(["the dog sat on the mat in london and paris"] * 3)  # > 24 positions


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_client(models: list[ServedModel], **limits: object) -> TestClient:
    batch = {k: v for k, v in limits.items() if k in BatchLimits.__dataclass_fields__}
    request = {k: v for k, v in limits.items() if k in RequestLimits.__dataclass_fields__}
    return TestClient(create_app(models, batch_limits=BatchLimits(**batch),
                                 limits=RequestLimits(**request),
                                 api_key=limits.get("api_key")),  # type: ignore[arg-type]
                      raise_server_exceptions=False)


def library_vectors(directory: Path, texts: list[str], **options: object) -> torch.Tensor:
    return sentence_embeddings(Engine.from_pretrained(directory, device="cpu"), None, texts,
                               **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def live(model_dirs: dict[str, Path]) -> Iterator[str]:
    """``bertkit serve`` in its own process: an embedding model and a classifier, API key from
    the environment, default host (loopback)."""
    port = free_port()
    source = str(Path(bertkit.__file__).parents[1])
    env = {**os.environ, "BERTKIT_API_KEY": KEY,
           "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-m", "bertkit.cli", "serve", "--model",
         f"embeddings={model_dirs['embeddings']}", "--model",
         f"classify={model_dirs['classify']}", "--port", str(port), "--device", "cpu"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"bertkit serve exited: {process.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("bertkit serve did not answer /health within 120 s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_openai_client_gets_the_vectors_bertkit_embed_writes(live, model_dirs, tmp_path):
    texts = [*TEXTS, LONG]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert main(["embed", "--model", str(model_dirs["embeddings"]), "--input",
                 str(tmp_path / "texts.txt"), "--output", str(tmp_path / "out.npy"),
                 "--device", "cpu"]) == 0
    expected = np.load(tmp_path / "out.npy")
    client = openai.OpenAI(base_url=f"{live}/v1", api_key=KEY, max_retries=0)
    as_base64 = client.embeddings.create(model="embeddings", input=texts)  # client's default
    as_floats = client.embeddings.create(model="embeddings", input=texts,
                                         encoding_format="float")
    one = client.embeddings.create(model="embeddings", input=TEXTS[0])
    for reply in (as_base64, as_floats):
        assert [d.index for d in reply.data] == list(range(len(texts)))
        np.testing.assert_allclose(np.array([d.embedding for d in reply.data]), expected,
                                   atol=1e-5, rtol=0)
    np.testing.assert_allclose(one.data[0].embedding, expected[0], atol=1e-5, rtol=0)
    tokenizer = bertkit.Tokenizer.from_pretrained(model_dirs["embeddings"])
    tokens = sum(len(ids) for ids in tokenizer(texts)["input_ids"])
    assert as_floats.usage.prompt_tokens == as_floats.usage.total_tokens == tokens
    assert as_floats.model == "embeddings"
    short = client.embeddings.create(model="embeddings", input=TEXTS[:1], dimensions=8,
                                     encoding_format="float").data[0].embedding
    head = expected[0, :8]
    np.testing.assert_allclose(short, head / np.linalg.norm(head), atol=1e-5, rtol=0)
    assert {m.id for m in client.models.list()} == {"embeddings", "classify"}


def test_openai_client_reads_the_errors(live):
    client = openai.OpenAI(base_url=f"{live}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="/etc/passwd", input="the cat")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as empty:
        client.embeddings.create(model="embeddings", input=["the cat", "   "],
                                 encoding_format="float")
    assert empty.value.body["param"] == "input[1]"
    with pytest.raises(openai.BadRequestError, match="token-id input is not supported"):
        client.embeddings.create(model="embeddings", input=[[5, 6, 7]])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{live}/v1", api_key="wrong", max_retries=0).embeddings.create(
            model="embeddings", input="the cat")


def test_hf_inference_client_feature_extraction(live, model_dirs):
    client = hub.InferenceClient(model=live, token=KEY)
    unit = client.feature_extraction(TEXTS)                    # TEI normalises by default
    raw = client.feature_extraction(TEXTS, normalize=False)
    single = client.feature_extraction(TEXTS[0], normalize=False)
    expected = library_vectors(model_dirs["embeddings"], TEXTS).numpy()
    np.testing.assert_allclose(raw, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(unit, expected / np.linalg.norm(expected, axis=1, keepdims=True),
                               atol=1e-5, rtol=0)
    np.testing.assert_allclose(single, expected[:1], atol=1e-5, rtol=0)
    with pytest.raises(hub.errors.HfHubHTTPError):
        hub.InferenceClient(model=live, token="wrong").feature_extraction(TEXTS[0])


def test_health_is_open_every_other_route_needs_the_key(live):
    assert httpx.get(f"{live}/health").status_code == 200
    for method, path, check in [
            ("GET", "/v1/models", lambda b: b["error"]["code"] == "invalid_api_key"),
            ("POST", "/embed", lambda b: b["error_type"] == "Unauthorized"),
            ("GET", "/info", lambda b: b["error_type"] == "Unauthorized"),
            ("POST", "/v1/classify", lambda b: b["error"]["type"] == "unauthorized"),
            ("GET", "/metrics", lambda b: b["error"]["type"] == "unauthorized"),
            ("GET", "/openapi.json", lambda b: "error" in b)]:
        for headers in ({}, {"Authorization": "Bearer not-the-key"}, {"Authorization": KEY}):
            reply = httpx.request(method, f"{live}{path}", json={"inputs": "a"},
                                  headers=headers)
            assert reply.status_code == 401 and check(reply.json()), (path, reply.text)
    ok = httpx.get(f"{live}/info", headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200 and ok.json()["model_type"] == {"embedding": {"pooling":
                                                                              "mean"}}


# ---------------------------------------------------------------------------- TEI routes


def test_tei_embed_normalises_and_truncates_as_asked(served, model_dirs):
    with app_client([served["embeddings"]]) as http:
        unit = http.post("/embed", json={"inputs": TEXTS}).json()
        raw = http.post("/embed", json={"inputs": TEXTS[0], "normalize": False}).json()
        cut = http.post("/embed", json={"inputs": [LONG], "truncate": True}).json()
        refused = http.post("/embed", json={"inputs": [TEXTS[0], LONG]})
    directory = model_dirs["embeddings"]
    torch.testing.assert_close(torch.tensor(unit), library_vectors(directory, TEXTS,
                                                                   normalize=True),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.tensor(raw), library_vectors(directory, TEXTS[:1]),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.tensor(cut), library_vectors(
        directory, [LONG], truncate=True, normalize=True), atol=1e-5, rtol=0)
    assert refused.status_code == 413
    assert refused.json()["error_type"] == "Validation"
    assert "inputs[1]" in refused.json()["error"] and "24" in refused.json()["error"]


def test_tei_rerank_by_cross_encoder_scores_sigmoid_logits(reranker, cross_encoder_dir):
    query, docs = "where does alice live ?", [*TEXTS, "alice lives in paris ."]
    with app_client([reranker]) as http:
        ranked = http.post("/rerank", json={"query": query, "texts": docs,
                                            "return_text": True})
        raw = http.post("/rerank", json={"query": query, "texts": docs, "raw_scores": True})
        info = http.get("/info").json()
    model = BertForSequenceClassification.from_pretrained(cross_encoder_dir).eval()
    tokenizer = bertkit.Tokenizer.from_pretrained(cross_encoder_dir)
    encoded = tokenizer([query] * len(docs), docs, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"],
                       token_type_ids=encoded["token_type_ids"]).logits[:, 0]
    assert ranked.headers["x-rerank-method"] == "cross-encoder"
    assert info["rerank"] == "cross-encoder" and "reranker" in info["model_type"]
    body = ranked.json()
    assert [r["index"] for r in body] == torch.argsort(logits, descending=True).tolist()
    assert [r["text"] for r in body] == [docs[r["index"]] for r in body]
    for entry in body:
        assert entry["score"] == pytest.approx(torch.sigmoid(logits[entry["index"]]).item(),
                                               abs=1e-5)
    for entry in raw.json():
        assert entry["score"] == pytest.approx(logits[entry["index"]].item(), abs=1e-4)
        assert "text" not in entry


def test_tei_rerank_by_bi_encoder_is_cosine(served, model_dirs):
    query, docs = "alice in paris", [*TEXTS, "bob lives in london ."]
    with app_client([served["embeddings"]]) as http:
        reply = http.post("/rerank", json={"query": query, "texts": docs})
        info = http.get("/info").json()
    vectors = library_vectors(model_dirs["embeddings"], [query, *docs])
    cosine = torch.nn.functional.cosine_similarity(vectors[:1], vectors[1:])
    assert reply.headers["x-rerank-method"] == "cosine" and info["rerank"] == "cosine"
    assert [r["index"] for r in reply.json()] == torch.argsort(cosine, descending=True).tolist()
    for entry in reply.json():
        assert entry["score"] == pytest.approx(cosine[entry["index"]].item(), abs=1e-5)


def test_tei_predict_single_pair_and_batch(served, model_dirs):
    with app_client([served["classify"]]) as http:
        single = http.post("/predict", json={"inputs": TEXTS[0]}).json()
        batch = http.post("/predict", json={"inputs": TEXTS}).json()
        pair = http.post("/predict", json={"inputs": [TEXTS[0], TEXTS[1]]}).json()
        bertkit_pair = http.post("/v1/classify", json={"texts": [TEXTS[0]],
                                                       "text_pairs": [TEXTS[1]]}).json()
        root = http.post("/", json={"inputs": TEXTS}).json()
        raw = http.post("/predict", json={"inputs": TEXTS[0], "raw_scores": True})
    cli = predict("classify", model_dirs["classify"], texts=TEXTS)
    assert root == batch and single == batch[0]
    for got, want in zip(batch, cli, strict=True):
        assert [e["score"] for e in got] == sorted((e["score"] for e in got), reverse=True)
        assert got[0]["label"] == want["label"]
        assert {e["label"]: e["score"] for e in got} == pytest.approx(want["scores"], abs=1e-6)
    assert {e["label"]: e["score"] for e in pair} == bertkit_pair["results"][0]["scores"]
    assert raw.status_code == 422 and raw.json()["error_type"] == "Validation"


def test_tei_tokenize_gives_ids_offsets_and_specials(served, model_dirs):
    text = "alice met bob in paris ."
    with app_client([served["embeddings"]]) as http:
        tokens = http.post("/tokenize", json={"inputs": [text]}).json()[0]
        bare = http.post("/tokenize", json={"inputs": text, "add_special_tokens": False}).json()
    tokenizer = bertkit.Tokenizer.from_pretrained(model_dirs["embeddings"])
    assert [t["id"] for t in tokens] == tokenizer(text)["input_ids"]
    assert [t["special"] for t in tokens] == [True] + [False] * (len(tokens) - 2) + [True]
    assert tokens[0]["text"] == "[CLS]" and tokens[0]["start"] is None
    for token in tokens[1:-1]:
        assert text[token["start"]:token["stop"]] == token["text"]
    assert [t["id"] for t in bare[0]] == [t["id"] for t in tokens[1:-1]]


# ---------------------------------------------------------------------------- limits


def test_limits_answer_in_each_apis_shape(served):
    with app_client([served["embeddings"]], max_request_tokens=20, max_body_bytes=2000) as http:
        tokens = {path: http.post(path, json=body) for path, body in [
            ("/v1/embeddings", {"input": TEXTS}), ("/embed", {"inputs": TEXTS}),
            ("/v1/sentence-embeddings", {"texts": TEXTS})]}
        body = http.post("/embed", json={"inputs": ["the cat " * 300]})
    openai_error = tokens["/v1/embeddings"]
    assert openai_error.status_code == 400
    assert set(openai_error.json()["error"]) == {"message", "type", "param", "code"}
    assert openai_error.json()["error"]["param"] == "input"
    assert "at most 20" in openai_error.json()["error"]["message"]
    assert tokens["/embed"].status_code == 413
    assert tokens["/embed"].json()["error_type"] == "Validation"
    assert tokens["/v1/sentence-embeddings"].status_code == 413
    assert tokens["/v1/sentence-embeddings"].json()["error"]["field"] == "texts"
    assert body.status_code == 413 and "2000 bytes" in body.json()["error"]


def test_requests_beyond_the_concurrency_limit_get_429_with_retry_after(served):
    with app_client([served["embeddings"]], max_concurrent_requests=1, max_wait_ms=1500) as http, \
            ThreadPoolExecutor(1) as pool:
        first = pool.submit(http.post, "/v1/embeddings", json={"input": TEXTS[:2]})
        time.sleep(0.4)  # the first request waits in the queue for company
        shed = [http.post("/embed", json={"inputs": "the dog"}),
                http.post("/v1/embeddings", json={"input": "the dog"})]
        health = http.get("/health")
        assert first.result().status_code == 200
        after = http.post("/embed", json={"inputs": "the dog"})
    assert [r.status_code for r in shed] == [429, 429]
    assert all(int(r.headers["retry-after"]) >= 1 for r in shed)
    assert shed[0].json()["error_type"] == "Overloaded"
    assert shed[1].json()["error"]["type"] == "rate_limit_error"
    assert health.status_code == 200 and after.status_code == 200


def test_base64_is_little_endian_float32(served):
    with app_client([served["embeddings"]]) as http:
        floats = http.post("/v1/embeddings", json={"input": TEXTS[0]}).json()
        packed = http.post("/v1/embeddings", json={"input": TEXTS[0],
                                                   "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, floats["data"][0]["embedding"], rtol=1e-7)


@pytest.mark.needs_artifacts
def test_minilm_through_the_openai_route_equals_bertkit_inference(minilm_dir: Path):
    texts = ["A man is playing a guitar.", "The new movie is awesome!", "Hi"]
    with app_client([ServedModel.load("minilm", minilm_dir, device="cpu")]) as http:
        reply = http.post("/v1/embeddings", json={"input": texts, "model": "minilm"}).json()
        tei = http.post("/embed", json={"inputs": texts}).json()
    expected = library_vectors(minilm_dir, texts)
    torch.testing.assert_close(torch.tensor([d["embedding"] for d in reply["data"]]), expected,
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor(tei), torch.nn.functional.normalize(expected),
                               atol=1e-6, rtol=0)
