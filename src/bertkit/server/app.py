"""The HTTP API: FastAPI routes over :class:`~bertkit.server.models.ServedModel` and the
:class:`~bertkit.server.batching.DynamicBatcher`.

The server speaks three APIs over the same models and batches:

* **OpenAI's embeddings API** (:mod:`bertkit.server.openai_api`): ``POST /v1/embeddings``,
  ``GET /v1/models`` — what the official ``openai`` client calls;
* **Hugging Face text-embeddings-inference** (:mod:`bertkit.server.tei_api`): ``/embed``,
  ``/rerank``, ``/predict``, ``/tokenize``, ``/info`` and ``POST /``;
* **bertkit's own routes** (here; ``model`` may be left out when one model answers):

  * ``POST /v1/sentence-embeddings`` ``{"texts": [...], "pooling": "mean", "normalize": false,
    "truncate": false}`` → ``{"embeddings": [[...]], "dimensions": H}``. Texts longer than the
    model go through sliding windows (the whole text is embedded) unless ``truncate`` is true;
  * ``POST /v1/classify`` ``{"texts": [...], "text_pairs": [...]?}`` → per text label + scores;
  * ``POST /v1/ner`` ``{"texts": [...]}`` → per text entities with character offsets;
  * ``POST /v1/qa`` ``{"inputs": [{"question", "context"}]}`` → per question answer + offsets;
  * ``POST /v1/multiple-choice`` ``{"inputs": [{"context", "choices": [...]}]}`` → per input
    the best choice's index and text, every choice's probability;
  * ``POST /v1/fill-mask`` ``{"texts": [...], "top_k": 5, "truncate": false}``;
  * ``POST /v1/generate`` ``{"texts": [...], "num_beams": 1, "max_new_tokens": 48}`` → per
    text ``{"text"}``: an encoder–decoder's translations (:mod:`bertkit.server.seq2seq`);
  * ``GET /health`` (never needs the API key), ``GET /metrics`` (Prometheus text),
    ``GET /openapi.json``.

Every bertkit request may carry an ``id`` string, echoed in the response. bertkit's errors are
``{"error": {"type", "message", "field"}}``: 400 malformed JSON, 422 wrong types / empty texts /
a text the model cannot take (``field`` names it, e.g. ``texts[3]``), 413 over a limit, 401 a
missing API key, 404 unknown model or endpoint, 429 too many requests in flight and 503 a full
queue (both with ``Retry-After``). OpenAI and TEI routes answer in their APIs' own shapes
(:mod:`bertkit.server.errors`). No stack trace ever reaches a client.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bertkit.errors import UsageError
from bertkit.server.batching import BatchStats, DynamicBatcher, ItemError
from bertkit.server.errors import add_error_handlers
from bertkit.server.guard import Guard
from bertkit.server.limits import BatchLimits, RequestLimits
from bertkit.server.metrics import (
    BATCH_BUCKETS,
    LATENCY_BUCKETS,
    Counter,
    Gauge,
    Histogram,
    Registry,
)
from bertkit.server.models import ServedModel
from bertkit.server.openai_api import add_openai_routes
from bertkit.server.requests import (
    RequestError,
    check_lengths,
    check_range,
    check_records,
    check_texts,
    check_tokens,
)
from bertkit.server.seq2seq import MAX_BEAMS
from bertkit.server.tei_api import add_tei_routes
from bertkit.server.vectors import unit
from bertkit.tasks.translation import MAX_NEW_TOKENS
from bertkit.version import __version__

logger = logging.getLogger("bertkit.server")

INLINE_CHARS = 4096
ROUTES = ("/v1/embeddings", "/v1/models", "/v1/sentence-embeddings", "/v1/classify", "/v1/ner",
          "/v1/qa", "/v1/multiple-choice", "/v1/fill-mask", "/", "/embed", "/rerank", "/predict",
          "/tokenize", "/info", "/v1/generate", "/health", "/metrics", "/openapi.json", "/docs")


# ---------------------------------------------------------------------------- schemas


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="served model name (optional with one model)")
    id: str | None = Field(None, max_length=256, description="echoed in the response")


class SentenceEmbeddingsRequest(_Request):
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


class ChoiceInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    context: str
    choices: list[str]


class MultipleChoiceRequest(_Request):
    inputs: list[ChoiceInput]


class FillMaskRequest(_Request):
    texts: list[str]
    top_k: int = 5
    truncate: bool = False


class GenerateRequest(_Request):
    texts: list[str]
    num_beams: int = 1
    max_new_tokens: int = MAX_NEW_TOKENS


@dataclass
class Outcome:
    """What a request's items gave: the model that ran them, one result per item, and their
    token count (OpenAI's ``usage``)."""

    model: ServedModel
    results: list[Any]
    tokens: int


# ---------------------------------------------------------------------------- the app


class ServerState:
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

    def named(self, name: str) -> ServedModel:
        """The served model called ``name`` (a name, never a path: nothing is loaded here)."""
        model = self.models.get(name)
        if model is None:
            raise RequestError(404, "model", f"unknown model {name!r}; served: "
                                             f"{sorted(self.models)}", "not_found")
        return model

    def model_for(self, name: str | None, endpoint: str) -> ServedModel:
        """The model answering ``endpoint``: ``name``'s, or the only one that can."""
        if name is None:
            able = [m for m in self.models.values() if endpoint in m.endpoints]
            # A classifier's encoder embeds too; an embedding model is the one meant.
            own = [m for m in able if m.task == endpoint]
            if len(able) == 1 or len(own) == 1:
                return (own or able)[0]
            if not able:
                raise RequestError(404, None, f"no served model answers {endpoint}", "not_found")
            raise RequestError(422, "model", f"several models answer {endpoint}; name one of "
                                             f"{sorted(m.name for m in able)}")
        model = self.named(name)
        if endpoint not in model.endpoints:
            raise RequestError(404, "model", f"model {name!r} ({model.task}) does not answer "
                                             f"{endpoint}; it answers {list(model.endpoints)}",
                               "not_found")
        return model

    def retry_after(self) -> int:
        """Seconds until the longest queue has drained (at least 1): the ``Retry-After``."""
        waits = [batcher.drain_seconds for batcher in self.batchers.values()]
        return max(1, math.ceil(max(waits, default=0.0)))

    async def run(self, name: str | None, endpoint: str, field: str, payloads: list[Any],
                  options: tuple[Any, ...] = (), *, model: ServedModel | None = None,
                  fit: bool = False) -> Outcome:
        """Run a request's items through ``model`` (or the one ``name`` picks) in the shared
        batches; the request's tokens must stay within ``max_request_tokens`` and, with
        ``fit``, each item within the model's length (TEI's ``truncate: false``)."""
        model = model or self.model_for(name, endpoint)
        # Tokenizing a few short texts takes microseconds: a thread hop would cost more (and two
        # GIL hand-overs with the busy inference thread). Large requests go to a thread.
        if sum(len(str(p)) for p in payloads) <= INLINE_CHARS:
            costs = model.costs(endpoint, payloads)
        else:
            costs = await run_in_threadpool(model.costs, endpoint, payloads)
        check_tokens(field, costs, self.limits)
        if fit:
            check_lengths(field, costs, model.max_length)
        try:
            results = await self.batchers[model.name].submit((endpoint, *options), payloads,
                                                             costs)
        except ItemError as err:
            raise RequestError(422, f"{field}[{err.index}]", str(err.error)) from None
        return Outcome(model, results, sum(costs))


class _Metrics:
    """Pure ASGI middleware: count every HTTP request by route and status, time it."""

    def __init__(self, app: ASGIApp, server: ServerState):
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
               limits: RequestLimits | None = None, api_key: str | None = None) -> FastAPI:
    """The ASGI app serving ``models`` (loaded already; the app never loads or reloads, and no
    request names a file: a ``model`` is one of the names served). With ``api_key``, every
    route but ``/health`` needs ``Authorization: Bearer API_KEY``."""
    server = ServerState(models, batch_limits or BatchLimits(), limits or RequestLimits())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(title="bertkit", version=__version__, lifespan=lifespan,
                  description="BERT inference with dynamic batching: embeddings, "
                              "classification, NER, QA, fill-mask; OpenAI- and "
                              "text-embeddings-inference-compatible routes.")
    app.state.server = server
    # Added last = outermost: the metrics count what the guard refuses, too.
    app.add_middleware(Guard, api_key=api_key, limits=server.limits,
                       retry_after=server.retry_after)
    app.add_middleware(_Metrics, server=server)
    add_error_handlers(app)

    def reply(model: ServedModel, request: _Request, **body: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"model": model.name}
        if request.id is not None:
            out["id"] = request.id
        return {**out, **body}

    @app.post("/v1/sentence-embeddings")
    async def sentence_embeddings(request: SentenceEmbeddingsRequest) -> dict[str, Any]:
        check_texts("texts", request.texts, server.limits)
        out = await server.run(request.model, "embeddings", "texts", request.texts,
                               (request.pooling, request.truncate))
        vectors = [unit(v) for v in out.results] if request.normalize else out.results
        return reply(out.model, request, dimensions=out.model.dimensions, embeddings=vectors)

    @app.post("/v1/classify")
    async def classify(request: ClassifyRequest) -> dict[str, Any]:
        check_texts("texts", request.texts, server.limits)
        pairs: list[str | None] = [None] * len(request.texts)
        if request.text_pairs is not None:
            if len(request.text_pairs) != len(request.texts):
                raise RequestError(422, "text_pairs", f"{len(request.text_pairs)} pairs for "
                                                      f"{len(request.texts)} texts; expected "
                                                      "one per text")
            check_texts("text_pairs", request.text_pairs, server.limits)
            pairs = list(request.text_pairs)
        out = await server.run(request.model, "classify", "texts",
                               list(zip(request.texts, pairs, strict=True)),
                               (request.text_pairs is not None,))
        return reply(out.model, request, results=out.results)

    @app.post("/v1/ner")
    async def ner(request: NerRequest) -> dict[str, Any]:
        check_texts("texts", request.texts, server.limits)
        out = await server.run(request.model, "ner", "texts", request.texts)
        return reply(out.model, request, results=out.results)

    @app.post("/v1/qa")
    async def qa(request: QARequest) -> dict[str, Any]:
        check_records("inputs", request.inputs, ("question", "context"), server.limits)
        out = await server.run(request.model, "qa", "inputs",
                               [(i.question, i.context) for i in request.inputs])
        return reply(out.model, request, results=out.results)

    @app.post("/v1/multiple-choice")
    async def multiple_choice(request: MultipleChoiceRequest) -> dict[str, Any]:
        check_records("inputs", request.inputs, ("context",), server.limits)
        for index, item in enumerate(request.inputs):
            if len(item.choices) < 2:
                raise RequestError(422, f"inputs[{index}].choices", f"{len(item.choices)} "
                                   "choices; expected at least 2")
            check_texts(f"inputs[{index}].choices", item.choices, server.limits)
        results: list[Any] = [None] * len(request.inputs)
        by_width: dict[int, list[int]] = {}  # one batch shape (B, C, T) per number of choices
        for index, item in enumerate(request.inputs):
            by_width.setdefault(len(item.choices), []).append(index)
        for width, indices in by_width.items():
            out = await server.run(request.model, "multiple-choice", "inputs",
                                   [(request.inputs[i].context, tuple(request.inputs[i].choices))
                                    for i in indices], (width,))
            for i, result in zip(indices, out.results, strict=True):
                results[i] = result
        return reply(out.model, request, results=results)

    @app.post("/v1/fill-mask")
    async def fill_mask(request: FillMaskRequest) -> dict[str, Any]:
        check_texts("texts", request.texts, server.limits)
        check_range("top_k", request.top_k, server.limits.max_top_k)
        out = await server.run(request.model, "fill-mask", "texts", request.texts,
                               (request.top_k, request.truncate))
        return reply(out.model, request, results=out.results)

    @app.post("/v1/generate")
    async def generate(request: GenerateRequest) -> dict[str, Any]:
        check_texts("texts", request.texts, server.limits)
        runner = server.model_for(request.model, "generate").seq2seq
        assert runner is not None
        check_range("num_beams", request.num_beams, MAX_BEAMS)
        check_range("max_new_tokens", request.max_new_tokens, runner.max_new_tokens)
        out = await server.run(request.model, "generate", "texts", request.texts,
                               (request.num_beams, request.max_new_tokens))
        return reply(out.model, request, results=out.results)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__,
                "models": {name: m.describe() for name, m in server.models.items()}}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(server.registry.render(),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    add_openai_routes(app, server)
    add_tei_routes(app, server)
    return app
