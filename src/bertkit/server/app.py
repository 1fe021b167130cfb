"""The HTTP API: FastAPI routes over :class:`~bertkit.server.models.ServedModel` and the
:class:`~bertkit.server.batching.DynamicBatcher`.

Routes (JSON in, JSON out; ``model`` may be left out when one model is served):

* ``POST /v1/embeddings`` ``{"texts": [...], "pooling": "mean", "normalize": false,
  "truncate": false}`` → ``{"embeddings": [[...]], "dimensions": H}``. Texts longer than the
  model go through sliding windows (the whole text is embedded) unless ``truncate`` is true.
* ``POST /v1/classify`` ``{"texts": [...], "text_pairs": [...]?}`` → per text label + scores.
* ``POST /v1/ner`` ``{"texts": [...]}`` → per text entities with character offsets.
* ``POST /v1/qa`` ``{"inputs": [{"question", "context"}]}`` → per question answer + offsets.
* ``POST /v1/fill-mask`` ``{"texts": [...], "top_k": 5, "truncate": false}``.
* ``POST /v1/generate`` ``{"texts": [...], "num_beams": 1, "max_new_tokens": 48}`` → per text
  ``{"text"}``: an encoder–decoder's translations (:mod:`bertkit.server.seq2seq`).
* ``GET /health``, ``GET /metrics`` (Prometheus text), ``GET /openapi.json``.

Every request may carry an ``id`` string, echoed in the response. Errors are
``{"error": {"type", "message", "field"}}``: 400 malformed JSON, 422 wrong types / empty texts /
a text the model cannot take (``field`` names it, e.g. ``texts[3]``), 413 over a limit, 404
unknown model or endpoint, 503 + ``Retry-After`` when the queue is full. No stack trace ever
reaches a client; unexpected failures are logged and answered 500.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bertkit.errors import UsageError
from bertkit.server.batching import (
    BatchLimits,
    BatchStats,
    DynamicBatcher,
    ItemError,
    Overloaded,
    require_positive_ints,
)
from bertkit.server.metrics import (
    BATCH_BUCKETS,
    LATENCY_BUCKETS,
    Counter,
    Gauge,
    Histogram,
    Registry,
)
from bertkit.server.models import ServedModel
from bertkit.server.seq2seq import MAX_BEAMS
from bertkit.version import __version__

logger = logging.getLogger("bertkit.server")

INLINE_CHARS = 4096
ROUTES = ("/v1/embeddings", "/v1/classify", "/v1/ner", "/v1/qa", "/v1/fill-mask", "/health",
          "/metrics", "/openapi.json", "/docs")
ROUTES += ("/v1/generate",)


@dataclass(frozen=True)
class RequestLimits:
    """What one request may ask for."""

    max_texts: int = 64
    max_chars: int = 20_000
    max_top_k: int = 50

    def validate(self) -> RequestLimits:
        require_positive_ints(self, ("max_texts", "max_chars", "max_top_k"))
        return self


class RequestError(Exception):
    """A client's mistake: HTTP ``status``, the ``field`` at fault and what was expected."""

    def __init__(self, status: int, field: str | None, message: str, kind: str = "invalid"):
        super().__init__(message)
        self.status, self.field, self.message, self.kind = status, field, message, kind


# ---------------------------------------------------------------------------- schemas


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="served model name (optional with one model)")
    id: str | None = Field(None, max_length=256, description="echoed in the response")


class EmbeddingsRequest(_Request):
    texts: list[str]
    pooling: Literal["mean", "cls", "max"] = "mean"
    normalize: bool = False
    truncate: bool = Field(False, description="cut texts longer than the model instead of "
                                              "embedding them whole through sliding windows")


class ClassifyRequest(_Request):
    texts: list[str]
    text_pairs: list[str] | None = None


class NerRequest(_Request):
    texts: list[str]


class QAInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str
    context: str


class QARequest(_Request):
    inputs: list[QAInput]


class FillMaskRequest(_Request):
    texts: list[str]
    top_k: int = 5
    truncate: bool = False


class GenerateRequest(_Request):
    texts: list[str]
    num_beams: int = 1
    max_new_tokens: int = 48


# ---------------------------------------------------------------------------- checks


def _check_texts(field: str, texts: Sequence[str], limits: RequestLimits, *,
                 count: bool = True) -> None:
    if count and not texts:
        raise RequestError(422, field, "expected at least one text")
    if count and len(texts) > limits.max_texts:
        raise RequestError(413, field, f"{len(texts)} items; at most {limits.max_texts} per "
                                       "request", "too_large")
    for index, text in enumerate(texts):
        name = f"{field}[{index}]" if count else field
        if not text.strip():
            raise RequestError(422, name, "empty text; expected non-blank text")
        if len(text) > limits.max_chars:
            raise RequestError(413, name, f"{len(text)} characters; at most "
                                          f"{limits.max_chars} per text", "too_large")


def _error(status: int, kind: str, message: str, field: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": kind, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _location(loc: Sequence[Any]) -> str:
    """``("body", "texts", 3)`` → ``texts[3]``; ``("body", "inputs", 0, "question")`` →
    ``inputs[0].question``."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


# ---------------------------------------------------------------------------- the app


class _Server:
    """The served models, their batchers and the metrics: the app's state."""

    def __init__(self, models: Sequence[ServedModel], batch_limits: BatchLimits,
                 limits: RequestLimits):
        if not models:
            raise UsageError("serve at least one model")
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise UsageError(f"model names must be distinct, got {names}")
        self.models = {m.name: m for m in models}
        self.batch_limits = batch_limits.validate()
        self.limits = limits.validate()
        # ONE worker thread for every model: the forward passes already use all cores through
        # intra-op threads; two at once would only fight for them.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bertkit-infer")
        self.batchers: dict[str, DynamicBatcher] = {}
        self.registry = Registry()
        self.requests = self.registry.add(Counter(
            "bertkit_requests_total", "HTTP requests by endpoint and status code"))
        self.latency = self.registry.add(Histogram(
            "bertkit_request_duration_seconds", "HTTP request latency", LATENCY_BUCKETS))
        self.batch_size = self.registry.add(Histogram(
            "bertkit_batch_size", "items (texts, questions) per model batch", BATCH_BUCKETS))
        self.batch_seconds = self.registry.add(Histogram(
            "bertkit_batch_duration_seconds", "model time per batch", LATENCY_BUCKETS))
        self.registry.add(Gauge("bertkit_queue_items", "items waiting for a batch",
                                lambda: {(("model", n),): float(b.queued)
                                         for n, b in self.batchers.items()}))

    def start(self) -> None:
        for name, model in self.models.items():
            labels = (("model", name),)

            def observe(stats: BatchStats, labels: tuple = labels) -> None:
                self.batch_size.observe(stats.size, labels)  # type: ignore[union-attr]
                self.batch_seconds.observe(stats.seconds, labels)  # type: ignore[union-attr]

            self.batchers[name] = DynamicBatcher(model.run, self.executor, self.batch_limits,
                                                 on_batch=observe)
            self.batchers[name].start()

    async def stop(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()
        self.executor.shutdown(wait=True)

    def model_for(self, name: str | None, endpoint: str) -> ServedModel:
        if name is None:
            able = [m for m in self.models.values() if endpoint in m.endpoints]
            if len(able) == 1:
                return able[0]
            if not able:
                raise RequestError(404, None, f"no served model answers {endpoint}", "not_found")
            raise RequestError(422, "model", f"several models answer {endpoint}; name one of "
                                             f"{sorted(m.name for m in able)}")
        model = self.models.get(name)
        if model is None:
            raise RequestError(404, "model", f"unknown model {name!r}; served: "
                                             f"{sorted(self.models)}", "not_found")
        if endpoint not in model.endpoints:
            raise RequestError(404, "model", f"model {name!r} ({model.task}) does not answer "
                                             f"{endpoint}; it answers {list(model.endpoints)}",
                               "not_found")
        return model

    async def run(self, name: str | None, endpoint: str, field: str, payloads: list[Any],
                  options: tuple[Any, ...] = ()) -> tuple[ServedModel, list[Any]]:
        model = self.model_for(name, endpoint)
        # Tokenizing a few short texts takes microseconds: a thread hop would cost more (and two
        # GIL hand-overs with the busy inference thread). Large requests go to a thread.
        if sum(len(str(p)) for p in payloads) <= INLINE_CHARS:
            costs = model.costs(endpoint, payloads)
        else:
            costs = await run_in_threadpool(model.costs, endpoint, payloads)
        try:
            return model, await self.batchers[model.name].submit((endpoint, *options),
                                                                 payloads, costs)
        except ItemError as err:
            raise RequestError(422, f"{field}[{err.index}]", str(err.error)) from None


class _Metrics:
    """Pure ASGI middleware: count every HTTP request by route and status, time it."""

    def __init__(self, app: ASGIApp, server: _Server):
        self.app, self.server = app, server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = scope["path"] if scope["path"] in ROUTES else "other"
            labels = (("endpoint", route),)
            self.server.requests.inc((*labels, ("status", str(status["code"]))))  # type: ignore[union-attr]
            self.server.latency.observe(time.perf_counter() - started, labels)  # type: ignore[union-attr]


def create_app(models: Sequence[ServedModel], *, batch_limits: BatchLimits | None = None,
               limits: RequestLimits | None = None) -> FastAPI:
    """The ASGI app serving ``models`` (loaded already; the app never loads or reloads)."""
    server = _Server(models, batch_limits or BatchLimits(), limits or RequestLimits())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(title="bertkit", version=__version__, lifespan=lifespan,
                  description="BERT inference with dynamic batching: embeddings, "
                              "classification, NER, QA, fill-mask.")
    app.state.server = server
    app.add_middleware(_Metrics, server=server)
    _add_error_handlers(app)

    def reply(model: ServedModel, request: _Request, **body: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"model": model.name}
        if request.id is not None:
            out["id"] = request.id
        return {**out, **body}

    @app.post("/v1/embeddings")
    async def embeddings(request: EmbeddingsRequest) -> dict[str, Any]:
        _check_texts("texts", request.texts, server.limits)
        model, vectors = await server.run(request.model, "embeddings", "texts", request.texts,
                                          (request.pooling, request.truncate))
        if request.normalize:
            vectors = [_unit(v) for v in vectors]
        return reply(model, request, dimensions=model.dimensions, embeddings=vectors)

    @app.post("/v1/classify")
    async def classify(request: ClassifyRequest) -> dict[str, Any]:
        _check_texts("texts", request.texts, server.limits)
        pairs: list[str | None] = [None] * len(request.texts)
        if request.text_pairs is not None:
            if len(request.text_pairs) != len(request.texts):
                raise RequestError(422, "text_pairs", f"{len(request.text_pairs)} pairs for "
                                                      f"{len(request.texts)} texts; expected "
                                                      "one per text")
            _check_texts("text_pairs", request.text_pairs, server.limits)
            pairs = list(request.text_pairs)
        model, results = await server.run(request.model, "classify", "texts",
                                          list(zip(request.texts, pairs, strict=True)),
                                          (request.text_pairs is not None,))
        return reply(model, request, results=results)

    @app.post("/v1/ner")
    async def ner(request: NerRequest) -> dict[str, Any]:
        _check_texts("texts", request.texts, server.limits)
        model, results = await server.run(request.model, "ner", "texts", request.texts)
        return reply(model, request, results=results)

    @app.post("/v1/qa")
    async def qa(request: QARequest) -> dict[str, Any]:
        if not request.inputs:
            raise RequestError(422, "inputs", "expected at least one {question, context}")
        if len(request.inputs) > server.limits.max_texts:
            raise RequestError(413, "inputs", f"{len(request.inputs)} items; at most "
                                              f"{server.limits.max_texts} per request",
                               "too_large")
        for index, item in enumerate(request.inputs):
            _check_texts(f"inputs[{index}].question", [item.question], server.limits,
                         count=False)
            _check_texts(f"inputs[{index}].context", [item.context], server.limits,
                         count=False)
        model, results = await server.run(request.model, "qa", "inputs",
                                          [(i.question, i.context) for i in request.inputs])
        return reply(model, request, results=results)

    @app.post("/v1/fill-mask")
    async def fill_mask(request: FillMaskRequest) -> dict[str, Any]:
        _check_texts("texts", request.texts, server.limits)
        if not 1 <= request.top_k <= server.limits.max_top_k:
            raise RequestError(422, "top_k", f"top_k={request.top_k}; expected 1.."
                                             f"{server.limits.max_top_k}")
        model, results = await server.run(request.model, "fill-mask", "texts", request.texts,
                                          (request.top_k, request.truncate))
        return reply(model, request, results=results)

    @app.post("/v1/generate")
    async def generate(request: GenerateRequest) -> dict[str, Any]:
        _check_texts("texts", request.texts, server.limits)
        runner = server.model_for(request.model, "generate").seq2seq
        assert runner is not None
        if not 1 <= request.num_beams <= MAX_BEAMS:
            raise RequestError(422, "num_beams", f"num_beams={request.num_beams}; expected "
                                                 f"1..{MAX_BEAMS}")
        if not 1 <= request.max_new_tokens <= runner.max_new_tokens:
            raise RequestError(422, "max_new_tokens", f"max_new_tokens="
                               f"{request.max_new_tokens}; expected 1..{runner.max_new_tokens}")
        model, results = await server.run(request.model, "generate", "texts", request.texts,
                                          (request.num_beams, request.max_new_tokens))
        return reply(model, request, results=results)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__,
                "models": {name: m.describe() for name, m in server.models.items()}}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(server.registry.render(),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def _unit(vector: list[float]) -> list[float]:
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector] if norm > 0 else vector


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(_: Request, err: RequestError) -> JSONResponse:
        return _error(err.status, err.kind, err.message, err.field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return _error(400, "malformed_json", f"the body is not valid JSON: "
                                                 f"{first.get('ctx', {}).get('error', '')}",
                          "body")
        return _error(422, "invalid", str(first.get("msg")), _location(first.get("loc", ())))

    @app.exception_handler(Overloaded)
    async def overloaded(_: Request, err: Overloaded) -> JSONResponse:
        return _error(503, "overloaded", str(err),
                      headers={"Retry-After": str(err.retry_after)})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return _error(err.status_code, "http", str(err.detail), headers=err.headers)

    @app.exception_handler(Exception)
    async def internal(_: Request, err: Exception) -> JSONResponse:
        logger.error("unhandled error: %s: %s", type(err).__name__, err, exc_info=err)
        return _error(500, "internal", "internal server error")
