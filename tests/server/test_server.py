"""The HTTP server end to end on loopback: every endpoint answers what the library (and
``bertkit predict``) answers for the same inputs, bad input gets a 4xx naming the field,
overload a 503 with Retry-After, concurrent clients their own answers, in shared batches."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch
import uvicorn
from fastapi.testclient import TestClient

from bertkit.cli import main
from bertkit.inference.embeddings import sentence_embeddings
from bertkit.inference.engine import Engine
from bertkit.inference.fill_mask import fill_mask, load_fill_mask
from bertkit.server import BatchLimits, RequestLimits, ServedModel, create_app
from bertkit.tasks.evaluation import predict

TEXTS = ["the cat sat on the mat .", "alice met bob in paris .", "a very good film",
         "bob lives in london and alice lives in paris ."]
# 3 × 10 words + specials: longer than the tiny models' 24 positions, so it needs windows.
LONG = " ".join(["the dog sat on the mat in london and paris"] * 3)


def client(served: dict[str, ServedModel], *names: str, **limits: object) -> TestClient:
    batch = {k: v for k, v in limits.items() if k in BatchLimits.__dataclass_fields__}
    request = {k: v for k, v in limits.items() if k in RequestLimits.__dataclass_fields__}
    app = create_app([served[n] for n in names or served], batch_limits=BatchLimits(**batch),
                     limits=RequestLimits(**request))
    return TestClient(app, raise_server_exceptions=False)


def batch_sizes(metrics: str, model: str) -> tuple[int, int]:
    """(batches, batches of one item) from the batch-size histogram."""
    def value(pattern: str) -> int:
        found = re.search(pattern + r" (\d+)", metrics)
        return int(found.group(1)) if found else 0
    return (value(rf'bertkit_batch_size_count\{{model="{model}"\}}'),
            value(rf'bertkit_batch_size_bucket\{{model="{model}",le="1"\}}'))


# ---------------------------------------------------------------------------- endpoints


def test_embeddings_equal_the_library_long_texts_whole_or_truncated(served, model_dirs):
    engine = Engine.from_pretrained(model_dirs["embeddings"], device="cpu")
    texts = [*TEXTS, LONG]
    with client(served, "embeddings") as http:
        whole = http.post("/v1/sentence-embeddings", json={"texts": texts, "id": "r1"}).json()
        cut = http.post("/v1/sentence-embeddings", json={"texts": [LONG], "truncate": True,
                                                "pooling": "max", "normalize": True}).json()
    assert whole["id"] == "r1" and whole["dimensions"] == 32
    expected = sentence_embeddings(engine, None, texts)
    torch.testing.assert_close(torch.tensor(whole["embeddings"]), expected, atol=1e-5, rtol=0)
    expected_cut = sentence_embeddings(engine, None, [LONG], pooling="max", truncate=True,
                                       normalize=True)
    torch.testing.assert_close(torch.tensor(cut["embeddings"]), expected_cut, atol=1e-5, rtol=0)
    assert not torch.allclose(expected_cut, torch.nn.functional.normalize(expected[-1:]))


def test_classify_ner_answer_what_bertkit_predict_answers(served, model_dirs):
    with client(served, "classify", "ner") as http:
        classes = http.post("/v1/classify", json={"texts": [*TEXTS, LONG]}).json()["results"]
        entities = http.post("/v1/ner", json={"texts": [*TEXTS, LONG]}).json()["results"]
    cli = predict("classify", model_dirs["classify"], texts=[*TEXTS, LONG])
    assert [r["label"] for r in classes] == [r["label"] for r in cli]
    for got, want in zip(classes, cli, strict=True):
        assert got["scores"] == pytest.approx(want["scores"], abs=1e-5)
    # `bertkit predict ner` splits at whitespace: for single-spaced texts its offsets index
    # the text itself, as the server's (raw-text) offsets do.
    cli_ner = predict("ner", model_dirs["ner"], texts=[*TEXTS, LONG])
    assert [r["entities"] for r in entities] == [r["entities"] for r in cli_ner]
    assert sum(len(r["entities"]) for r in entities) > 0  # the random model tags something
    for text, result in zip([*TEXTS, LONG], entities, strict=True):
        for entity in result["entities"]:
            assert text[entity["start"]:entity["end"]] == entity["text"]


def test_qa_answers_with_offsets_into_the_context(served, model_dirs, tmp_path):
    contexts = [TEXTS[1], TEXTS[3], LONG]
    questions = ["who met bob ?", "where does alice live ?", "where is the dog ?"]
    with client(served, "qa") as http:
        reply = http.post("/v1/qa", json={"inputs": [{"question": q, "context": c} for q, c in
                                                     zip(questions, contexts, strict=True)]})
    results = reply.json()["results"]
    squad = {"version": "1.1", "data": [{"title": "t", "paragraphs": [
        {"context": c, "qas": [{"id": str(i), "question": q, "answers": []}]}
        for i, (q, c) in enumerate(zip(questions, contexts, strict=True))]}]}
    (tmp_path / "dev.json").write_text(json.dumps(squad), encoding="utf-8")
    cli = {r["id"]: r["answer"] for r in predict("qa", model_dirs["qa"], tmp_path / "dev.json")}
    for i, (context, result) in enumerate(zip(contexts, results, strict=True)):
        assert result["answer"] == cli[str(i)] != ""
        assert context[result["start"]:result["end"]] == result["answer"]
        assert 0 < result["score"] <= 1


def test_fill_mask_equals_the_library(served, model_dirs):
    texts = ["the cat [MASK] on the mat .", "[MASK] met bob in [MASK] ."]
    with client(served, "fill-mask") as http:
        results = http.post("/v1/fill-mask", json={"texts": texts, "top_k": 3}).json()["results"]
    expected = fill_mask(load_fill_mask(model_dirs["fill-mask"], device="cpu"), None, texts,
                         top_k=3)
    for got, want in zip(results, expected, strict=True):
        assert got["filled"] == want.filled
        assert [[c["token"] for c in m["candidates"]] for m in got["masks"]] == \
               [[c.token for c in m.candidates] for m in want.masks]


def test_health_metrics_and_openapi(served):
    with client(served) as http:
        health = http.get("/health").json()
        http.post("/v1/ner", json={"texts": ["alice met bob ."]})
        http.post("/v1/ner", json={"texts": [""]})
        paths = http.get("/openapi.json").json()["paths"]
        metrics = http.get("/metrics")
    assert health["status"] == "ok"
    assert {n: m["endpoints"][0] for n, m in health["models"].items()} == {
        "embeddings": "embeddings", "fill-mask": "fill-mask", "classify": "classify",
        "ner": "ner", "qa": "qa"}
    assert {"/v1/sentence-embeddings", "/v1/classify", "/v1/ner", "/v1/qa", "/v1/fill-mask",
            "/health", "/metrics"} <= set(paths)
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'bertkit_requests_total{endpoint="/v1/ner",status="200"} 1' in text
    assert 'bertkit_requests_total{endpoint="/v1/ner",status="422"} 1' in text
    assert 'bertkit_request_duration_seconds_count{endpoint="/v1/ner"} 2' in text
    assert batch_sizes(text, "ner")[0] == 1


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("path", "body", "status", "field"), [
    ("/v1/sentence-embeddings", b'{"texts": ["a", }', 400, "body"),
    ("/v1/sentence-embeddings", {"texts": ["the cat", 5]}, 422, "texts[1]"),
    ("/v1/sentence-embeddings", {"texts": "the cat"}, 422, "texts"),
    ("/v1/sentence-embeddings", {}, 422, "texts"),
    ("/v1/sentence-embeddings", {"texts": []}, 422, "texts"),
    ("/v1/sentence-embeddings", {"texts": ["the cat", "  "]}, 422, "texts[1]"),
    ("/v1/sentence-embeddings", {"texts": ["a"] * 5}, 413, "texts"),
    ("/v1/sentence-embeddings", {"texts": ["the cat", "x" * 41]}, 413, "texts[1]"),
    ("/v1/sentence-embeddings", {"texts": ["a"], "pooling": "sum"}, 422, "pooling"),
    ("/v1/sentence-embeddings", {"texts": ["a"], "colour": "red"}, 422, "colour"),
    ("/v1/sentence-embeddings", {"texts": ["a"], "model": "nope"}, 404, "model"),
    ("/v1/classify", {"texts": ["a"], "model": "embeddings"}, 404, "model"),
    ("/v1/classify", {"texts": ["a", "b"], "text_pairs": ["c"]}, 422, "text_pairs"),
    ("/v1/qa", {"inputs": [{"question": "who ?"}]}, 422, "inputs[0].context"),
    ("/v1/qa", {"inputs": [{"question": "who ?", "context": ""}]}, 422, "inputs[0].context"),
    ("/v1/fill-mask", {"texts": ["the cat [MASK]", "no mask here"]}, 422, "texts[1]"),
    ("/v1/fill-mask", {"texts": ["the cat [MASK]"], "top_k": 0}, 422, "top_k"),
])
def test_bad_requests_get_a_4xx_naming_the_field(served, path, body, status, field):
    with client(served, "embeddings", "classify", "qa", "fill-mask", max_texts=4,
                max_chars=40) as http:
        if isinstance(body, bytes):
            reply = http.post(path, content=body, headers={"content-type": "application/json"})
        else:
            body = body if "model" in body or path != "/v1/sentence-embeddings" else \
                {**body, "model": "embeddings"}
            reply = http.post(path, json=body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["field"] == field, error
    assert error["message"] and "Traceback" not in reply.text


def test_one_bad_text_fails_only_its_own_request(served):
    """A mask-less text batched with good ones: the batch is rerun item by item."""
    with client(served, "fill-mask", max_wait_ms=1000) as http, ThreadPoolExecutor(3) as pool:
        bodies = [{"texts": ["the cat [MASK] ."]}, {"texts": ["no mask"]},
                  {"texts": ["[MASK] met bob ."]}]
        replies = list(pool.map(lambda b: http.post("/v1/fill-mask", json=b), bodies))
        metrics = http.get("/metrics").text
    assert [r.status_code for r in replies] == [200, 422, 200]
    batches, singles = batch_sizes(metrics, "fill-mask")
    assert batches - singles >= 1  # the bad text did share a batch with a good one


def test_overload_is_a_503_with_retry_after(served):
    with client(served, "embeddings", max_queue=3, max_wait_ms=1500) as http, \
            ThreadPoolExecutor(1) as pool:
        first = pool.submit(http.post, "/v1/sentence-embeddings", json={"texts": TEXTS[:3]})
        time.sleep(0.3)  # the first request's three items wait in the queue
        second = http.post("/v1/sentence-embeddings", json={"texts": ["the dog"]})
        assert first.result().status_code == 200
    assert second.status_code == 503
    assert int(second.headers["retry-after"]) >= 1
    assert second.json()["error"]["type"] == "overloaded"


# ---------------------------------------------------------------------------- batching


def test_concurrent_clients_get_their_own_answers_in_shared_batches(served, model_dirs):
    engine = Engine.from_pretrained(model_dirs["embeddings"], device="cpu")
    words = ["cat", "dog", "mat", "sky", "film", "paris", "london", "alice"]
    requests = [{"id": f"client-{i}", "texts": [f"the {w} sat" for w in words[:1 + i % 3]]
                 + [f"{words[i % 8]} {words[(i * 3) % 8]} " * (1 + i % 4)]}
                for i in range(16)]
    with client(served, "embeddings", max_wait_ms=100, max_batch_size=16) as http, \
            ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda b: http.post("/v1/sentence-embeddings", json=b), requests))
        metrics = http.get("/metrics").text
    for request, reply in zip(requests, replies, strict=True):
        assert reply.status_code == 200
        body = reply.json()
        assert body["id"] == request["id"]
        torch.testing.assert_close(torch.tensor(body["embeddings"]),
                                   sentence_embeddings(engine, None, request["texts"]),
                                   atol=1e-5, rtol=0)
    batches, singles = batch_sizes(metrics, "embeddings")
    items = sum(len(r["texts"]) for r in requests)
    assert batches - singles > 0, metrics  # some batch held more than one item
    assert batches < items  # fewer forward passes than items


# ---------------------------------------------------------------------------- a real server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_real_uvicorn_on_loopback(served):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app([served["ner"]]), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert http.get("/health").json()["models"]["ner"]["task"] == "ner"
            reply = http.post("/v1/ner", json={"texts": [TEXTS[1]], "id": "x"})
            bad = http.post("/v1/ner", content=b"[", headers={"content-type":
                                                               "application/json"})
        assert reply.status_code == 200 and reply.json()["id"] == "x"
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "body"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_cli_serve_refuses_a_missing_model(tmp_path, capsys):
    assert main(["serve", "--model", f"m={tmp_path / 'nowhere'}"]) == 2
    assert "not a model directory" in capsys.readouterr().err


# ---------------------------------------------------------------------------- real weights


@pytest.mark.needs_artifacts
def test_minilm_embeddings_equal_bertkit_inference(minilm_dir: Path):
    texts = ["A man is playing a guitar.", "The new movie is awesome!",
             "Stocks fell sharply on Tuesday after the central bank raised rates.", "Hi"]
    served = ServedModel.load("minilm", minilm_dir, device="cpu")
    with TestClient(create_app([served])) as http:
        reply = http.post("/v1/sentence-embeddings", json={"texts": texts, "normalize": True})
    assert reply.json()["dimensions"] == 384
    expected = sentence_embeddings(Engine.from_pretrained(minilm_dir, device="cpu"), None,
                                   texts, normalize=True)
    torch.testing.assert_close(torch.tensor(reply.json()["embeddings"]), expected, atol=1e-6,
                               rtol=0)
