"""Every model route × every kind of bad body: a 4xx in the route's own API shape with a
message, never a 500, never a traceback; and no request makes the server open a path it was not
started with. In process (one app for the module), so the grid stays fast."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bertkit.server import RequestLimits, ServedModel, create_app
from bertkit.server.errors import dialect

Body = dict[str, Any]
# route → (a valid body for one text, the field that holds the texts)
ROUTES: dict[str, Callable[[Any], Body]] = {
    "/v1/embeddings": lambda t: {"input": t, "model": "embeddings"},
    "/v1/sentence-embeddings": lambda t: {"texts": t, "model": "embeddings"},
    "/v1/classify": lambda t: {"texts": t, "model": "classify"},
    "/v1/ner": lambda t: {"texts": t},
    "/v1/qa": lambda t: {"inputs": t if not isinstance(t, list) or not t or not all(
        isinstance(x, str) for x in t) else [{"question": x, "context": x} for x in t]},
    "/v1/fill-mask": lambda t: {"texts": t},
    "/embed": lambda t: {"inputs": t, "model": "embeddings"},
    "/rerank": lambda t: {"query": "who is alice ?", "texts": t, "model": "rerank"},
    "/predict": lambda t: {"inputs": t, "model": "classify"},
    "/tokenize": lambda t: {"inputs": t},
    "/": lambda t: {"inputs": t},
}
GOOD = ["the cat [MASK] on the mat ."]
SURROGATE = '{"texts": ["\\ud800 cat"], "input": ["\\ud800 cat"], "inputs": ["\\ud800 cat"]}'

BAD: dict[str, Callable[[str], bytes | Body]] = {
    "malformed json": lambda r: b'{"texts": ["a", ',
    "not an object": lambda r: b"[1, 2, 3]",
    "null body": lambda r: b"null",
    "empty body": lambda r: b"",
    "invalid utf-8": lambda r: b'{"texts": ["\xff\xfe cat"]}',
    "deeply nested": lambda r: b"[" * 100_000 + b"]" * 100_000,
    "missing fields": lambda r: {},
    "number for texts": lambda r: ROUTES[r](5),
    "object for texts": lambda r: ROUTES[r]({"a": 1}),
    "booleans for texts": lambda r: ROUTES[r]([True, False]),
    "nulls for texts": lambda r: ROUTES[r]([None]),
    "empty list": lambda r: ROUTES[r]([]),
    "empty string": lambda r: ROUTES[r]([""]),
    "blank string": lambda r: ROUTES[r](["  \t\n "]),
    "1 MB string": lambda r: ROUTES[r](["a " * 500_000]),
    "10,000 items": lambda r: ROUTES[r](["the cat"] * 10_000),
    "token ids": lambda r: ROUTES[r]([[101, -5, 10**12]]),
    "lone surrogate": lambda r: ROUTES[r](["\ud800 cat"]),
    "unknown field": lambda r: {**ROUTES[r](GOOD), "colour": "red"},
    "huge top_k": lambda r: {**ROUTES[r](GOOD), "top_k": 10**30},
    "negative top_k": lambda r: {**ROUTES[r](GOOD), "top_k": -3},
    "negative dimensions": lambda r: {**ROUTES[r](GOOD), "dimensions": -5},
    "model is a path": lambda r: {**ROUTES[r](GOOD), "model": "/etc/passwd"},
    "model is a relative path": lambda r: {**ROUTES[r](GOOD), "model": "../../rerank"},
    "model is a number": lambda r: {**ROUTES[r](GOOD), "model": 7},
}
# Routes without the field: the bad value is an unknown field, refused too (except TEI's root,
# which reads "top_k" / "dimensions" as what they are for the model's kind).
VALID_UNICODE = ["\u202e\u0000 caf\u00e9 \U0001f600 \u0301\u0338 \u4e2d\u6587 [MASK] \ufeff"]


@pytest.fixture(scope="module")
def http(served: dict[str, ServedModel], reranker: ServedModel) -> Iterator[TestClient]:
    models = [served["embeddings"], served["classify"], served["ner"], served["qa"],
              served["fill-mask"], reranker]
    app = create_app(models, limits=RequestLimits(max_texts=64, max_chars=20_000))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def send(http: TestClient, route: str, body: bytes | Body | str):
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    return http.post(route, content=body, headers={"content-type": "application/json"})


def message_of(route: str, reply) -> str:
    body = reply.json()
    style = dialect(route)
    if style == "tei":
        assert set(body) == {"error", "error_type"}, body
        return body["error"]
    if style == "openai":
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]["message"]


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_valid_body_works(http, route):
    """The control: each route answers the well-formed version of the bodies below."""
    assert send(http, route, ROUTES[route](GOOD)).status_code == 200


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("route", list(ROUTES))
def test_bad_bodies_get_a_clear_4xx(http, route, case):
    body = BAD[case](route)
    if case == "lone surrogate":
        body = json.dumps(body)  # keeps "\ud800" as a JSON escape: valid JSON, invalid text
    reply = send(http, route, body)
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text[:300])
    assert "Traceback" not in reply.text
    assert len(message_of(route, reply)) > 5


@pytest.mark.parametrize("route", list(ROUTES))
def test_odd_but_valid_unicode_never_breaks_the_server(http, route):
    reply = send(http, route, ROUTES[route](VALID_UNICODE))
    assert reply.status_code < 500, reply.text[:300]


def test_no_request_opens_a_path(http, model_dirs, monkeypatch):
    """Model names that are paths — of real model folders not served, too — are unknown names;
    nothing is opened or loaded for them."""
    opened: list[str] = []
    real_open = builtins.open

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def no_load(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a request tried to load a model")

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(ServedModel, "load", no_load)
    paths = [str(model_dirs["embeddings"]), "/etc/passwd", "../../../etc/passwd",
             "file:///etc/passwd", "~/.ssh/id_rsa"]
    for path in paths:
        for route in ("/v1/embeddings", "/embed", "/v1/classify", "/rerank", "/tokenize"):
            reply = send(http, route, {**ROUTES[route](GOOD), "model": path})
            assert reply.status_code == 404, (route, path, reply.text)
        assert http.get(f"/v1/models/{path}").status_code == 404
        assert http.get("/info", params={"model": path}).status_code == 404
    assert not [f for f in opened if any(p.strip("./~") in f for p in paths)], opened
