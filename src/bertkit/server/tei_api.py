"""Hugging Face text-embeddings-inference (TEI) routes, so TEI's clients — ``huggingface_hub``'s
``InferenceClient(model="http://127.0.0.1:8080").feature_extraction(…)``, LangChain's and
LlamaIndex's TEI integrations — talk to ``bertkit serve`` unchanged.

* ``POST /embed`` ``{"inputs": str | [str], "normalize": true, "truncate": false,
  "dimensions"?}`` → ``[[float, …], …]`` (mean pooling, as ``bertkit embed``);
* ``POST /rerank`` ``{"query", "texts": [...], "raw_scores": false, "return_text": false,
  "truncate": false}`` → ``[{"index", "score", "text"?}]``, best first. A cross-encoder (a
  ``BertForSequenceClassification`` with one label) scores each (query, text) pair: the
  sigmoid of its logit, or the logit itself with ``raw_scores``. An embedding model scores by
  the cosine of the two mean-pooled vectors. ``/info`` says which (``rerank``), and so does
  the ``X-Rerank-Method`` header of every answer;
* ``POST /predict`` ``{"inputs": str | [str, str] | [str | [str, str], …]}`` → per input
  ``[{"score", "label"}]``, best first (a list of two strings is ONE pair, as in TEI);
* ``POST /tokenize`` ``{"inputs", "add_special_tokens": true}`` → per input
  ``[{"id", "text", "special", "start", "stop"}]`` (character offsets);
* ``GET /info``; ``POST /`` does what the model's kind does in TEI (embed, rerank or predict).

``truncate: false`` refuses an input longer than the model with 413, as TEI does; with
``truncate: true`` embeddings cut the text, classification scores run over windows (as
``bertkit predict``). Several served models: the bertkit extension field ``model`` picks one.
Errors are TEI's ``{"error", "error_type"}`` (:mod:`bertkit.server.errors`).
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from bertkit.server.models import ServedModel
from bertkit.server.requests import RequestError, check_count, check_text, text_list
from bertkit.server.vectors import shorten, unit
from bertkit.version import __version__

if TYPE_CHECKING:
    from bertkit.server.app import ServerState


class _TeiRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="bertkit extension: a served model's name")
    truncate: bool | None = False
    truncation_direction: Literal["right", "Right"] = "right"
    prompt_name: None = Field(None, description="prompts are not supported (send null)")


class EmbedRequest(_TeiRequest):
    inputs: Any = Field(..., description="a text or a list of texts")
    normalize: bool = True
    dimensions: int | None = None


class RerankRequest(_TeiRequest):
    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False


class PredictRequest(_TeiRequest):
    inputs: Any = Field(..., description="a text, a [text, pair], or a list of those")
    raw_scores: bool = False


class TokenizeRequest(_TeiRequest):
    inputs: Any = Field(..., description="a text or a list of texts")
    add_special_tokens: bool = True


def num_labels(model: ServedModel) -> int | None:
    """Labels of a classification model's head; None for other tasks."""
    if model.task != "classify" or model.predictor is None:
        return None
    return int(model.predictor.model.config.num_labels)  # type: ignore[union-attr]


def rerank_method(model: ServedModel) -> str | None:
    """``cross-encoder`` (one-label classifier), ``cosine`` (embedding model) or None."""
    if num_labels(model) == 1:
        return "cross-encoder"
    return "cosine" if model.task == "embeddings" else None


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(unit(a), unit(b), strict=True))


def _pairs(value: Any, limits: Any) -> tuple[list[tuple[str, str | None]], bool]:
    """TEI's predict ``inputs``: (text, pair-or-None) items, and whether ONE was sent."""
    def one(item: Any, field: str) -> tuple[str, str | None] | None:
        if isinstance(item, str):
            check_text(field, item, limits)
            return item, None
        if (isinstance(item, list) and len(item) == 2
                and all(isinstance(part, str) for part in item)):
            check_text(f"{field}[0]", item[0], limits)
            check_text(f"{field}[1]", item[1], limits)
            return item[0], item[1]
        return None

    single = one(value, "inputs")
    if single is not None:
        return [single], True
    if not isinstance(value, list):
        raise RequestError(422, "inputs", "expected a text, a [text, text_pair], or a list "
                                          "of those")
    check_count("inputs", len(value), limits)
    items = [one(item, f"inputs[{index}]") for index, item in enumerate(value)]
    for index, item in enumerate(items):
        if item is None:
            raise RequestError(422, f"inputs[{index}]", "expected a text or a [text, "
                                                        "text_pair]")
    return items, False  # type: ignore[return-value]


def add_tei_routes(app: FastAPI, server: ServerState) -> None:
    limits = server.limits

    def reranker(name: str | None) -> ServedModel:
        """The named model if it can rerank; else the one cross-encoder (or embedding model)."""
        if name is not None:
            model = server.named(name)
            if rerank_method(model) is None:
                raise RequestError(404, "model", f"model {name!r} cannot rerank: it is neither "
                                                 "a one-label classifier nor an embedding "
                                                 "model", "not_found")
            return model
        able = [m for m in server.models.values() if rerank_method(m) == "cross-encoder"] or \
            [m for m in server.models.values() if rerank_method(m) == "cosine"]
        if not able:
            raise RequestError(404, None, "no served model can rerank (serve a one-label "
                                          "classifier or an embedding model)", "not_found")
        if len(able) > 1:
            raise RequestError(422, "model", "several models can rerank; name one of "
                                             f"{sorted(m.name for m in able)}")
        return able[0]

    async def embed(request: EmbedRequest) -> list[list[float]]:
        texts, _ = text_list("inputs", request.inputs, limits)
        model = server.model_for(request.model, "embeddings")
        if request.dimensions is not None and not 1 <= request.dimensions <= model.dimensions:
            raise RequestError(422, "dimensions", f"dimensions={request.dimensions}; model "
                                                  f"{model.name!r} gives 1..{model.dimensions}")
        out = await server.run(None, "embeddings", "inputs", texts,
                               ("mean", bool(request.truncate)), model=model,
                               fit=not request.truncate)
        vectors = [unit(v) for v in out.results] if request.normalize else out.results
        return [shorten(v, request.dimensions) for v in vectors]

    async def rerank(request: RerankRequest, response: Response) -> list[dict[str, Any]]:
        check_text("query", request.query, limits)
        texts, _ = text_list("texts", request.texts, limits)
        model = reranker(request.model)
        method = rerank_method(model)
        response.headers["X-Rerank-Method"] = str(method)
        fit = not request.truncate
        if method == "cross-encoder":
            out = await server.run(None, "classify", "texts",
                                   [(request.query, text) for text in texts], (True,),
                                   model=model, fit=fit)
            scores = [r["score"] if request.raw_scores else _sigmoid(r["score"])
                      for r in out.results]
        else:
            options = ("mean", bool(request.truncate))
            query, docs = await asyncio.gather(
                server.run(None, "embeddings", "query", [request.query], options, model=model,
                           fit=fit),
                server.run(None, "embeddings", "texts", texts, options, model=model, fit=fit))
            scores = [_cosine(query.results[0], vector) for vector in docs.results]
        ranked = sorted(range(len(texts)), key=lambda i: -scores[i])
        return [{"index": i, "score": scores[i], **({"text": texts[i]}
                                                     if request.return_text else {})}
                for i in ranked]

    async def predict(request: PredictRequest) -> list[Any]:
        items, single = _pairs(request.inputs, limits)
        paired = {pair is not None for _, pair in items}
        if len(paired) > 1:
            raise RequestError(422, "inputs", "mixes texts and [text, text_pair] pairs; send "
                                              "one kind per request")
        model = server.model_for(request.model, "classify")
        out = await server.run(None, "classify", "inputs", items, (True in paired,),
                               model=model, fit=not request.truncate)
        labels = model.predictor.model.config.id2label or {}  # type: ignore[union-attr]
        answers = []
        for record in out.results:
            if "score" in record:  # one label: a logit
                score = record["score"] if request.raw_scores else _sigmoid(record["score"])
                answers.append([{"score": score, "label": labels.get(0, "LABEL_0")}])
                continue
            if request.raw_scores:
                raise RequestError(422, "raw_scores", "this model's scores are probabilities; "
                                                      "raw logits are not served")
            answers.append(sorted(({"score": p, "label": label}
                                   for label, p in record["scores"].items()),
                                  key=lambda entry: -entry["score"]))
        return answers[0] if single else answers

    async def tokenize(request: TokenizeRequest) -> list[list[dict[str, Any]]]:
        texts, _ = text_list("inputs", request.inputs, limits)
        model = server.named(request.model) if request.model else \
            next(iter(server.models.values()))
        encoded = await run_in_threadpool(
            model.tokenizer, texts, add_special_tokens=request.add_special_tokens,
            return_offsets_mapping=True, return_special_tokens_mask=True)
        out = []
        for text, ids, offsets, special in zip(texts, encoded["input_ids"],
                                                encoded["offset_mapping"],
                                                encoded["special_tokens_mask"], strict=True):
            out.append([{"id": i, "text": model.tokenizer.convert_ids_to_tokens(i) if s
                         else text[a:b], "special": bool(s), "start": None if s else a,
                         "stop": None if s else b}
                        for i, (a, b), s in zip(ids, offsets, special, strict=True)])
        return out

    @app.get("/info")
    async def info(model: str | None = None) -> dict[str, Any]:
        served = server.named(model) if model else next(iter(server.models.values()))
        return {"model_id": served.name, "model_sha": None, "model_dtype": "float32",
                "model_type": _model_type(served), "rerank": rerank_method(served),
                "task": served.task, "served_models": list(server.models),
                "max_concurrent_requests": limits.max_concurrent_requests,
                "max_input_length": served.max_length,
                "max_batch_tokens": server.batch_limits.max_batch_tokens,
                "max_batch_requests": server.batch_limits.max_batch_size,
                "max_client_batch_size": limits.max_texts, "auto_truncate": False,
                "tokenization_workers": 1, "version": __version__, "sha": None,
                "docker_label": None}

    @app.post("/")
    async def root(body: dict[str, Any], response: Response) -> Any:
        """TEI's root route: what the model's kind does (embed, rerank or predict)."""
        name = body.get("model") if isinstance(body.get("model"), str) else None
        served = server.models.get(name) if name else next(iter(server.models.values()))
        kind = "embed" if served is None or served.task == "embeddings" else \
            ("rerank" if rerank_method(served) == "cross-encoder" else "predict")
        schema = {"embed": EmbedRequest, "rerank": RerankRequest, "predict": PredictRequest}
        try:
            request = schema[kind].model_validate(body)
        except ValidationError as err:
            raise RequestValidationError(err.errors()) from None
        if served is not None:
            request.model = served.name
        if kind == "rerank":
            return await rerank(request, response)  # type: ignore[arg-type]
        return await (embed if kind == "embed" else predict)(request)  # type: ignore[operator]

    app.post("/embed")(embed)
    app.post("/rerank")(rerank)
    app.post("/predict")(predict)
    app.post("/tokenize")(tokenize)


def _model_type(model: ServedModel) -> dict[str, Any]:
    """TEI's ``model_type``: embedding (with its pooling), reranker or classifier."""
    if model.task == "classify" and model.predictor is not None:
        config = model.predictor.model.config  # type: ignore[union-attr]
        heads = {"id2label": {str(k): v for k, v in (config.id2label or {}).items()},
                 "label2id": config.label2id or {}}
        return {"reranker" if num_labels(model) == 1 else "classifier": heads}
    return {"embedding": {"pooling": "mean"}}
