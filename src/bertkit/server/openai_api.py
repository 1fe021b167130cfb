"""OpenAI's embeddings API, so the official ``openai`` client (and every tool built on it)
talks to ``bertkit serve`` unchanged: ``OpenAI(base_url="http://127.0.0.1:8080/v1",
api_key=…).embeddings.create(model="minilm", input=[…])``.

* ``POST /v1/embeddings`` ``{"input": str | [str], "model", "encoding_format": "float" |
  "base64", "dimensions"?, "user"?}`` → ``{"object": "list", "data": [{"object": "embedding",
  "index", "embedding"}], "model", "usage": {"prompt_tokens", "total_tokens"}}``.
  The vectors are ``bertkit embed``'s defaults — mean pooling over the real tokens, not
  normalised, texts longer than the model embedded whole through sliding windows — so the
  server and the library give the same numbers. ``dimensions`` keeps the first N values at unit
  length, as OpenAI does. Token-id input is refused (send text).
* ``GET /v1/models``, ``GET /v1/models/{id}``: the served models.

Errors are OpenAI's ``{"error": {"message", "type", "param", "code"}}``
(:mod:`bertkit.server.errors`); unknown fields are refused, as OpenAI does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from bertkit.server.requests import RequestError, text_list
from bertkit.server.vectors import shorten, to_base64

if TYPE_CHECKING:
    from bertkit.server.app import ServerState


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: Any = Field(..., description="a text or a list of texts")
    model: str | None = Field(None, description="a served model's name (optional with one)")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, description="keep the first N values (unit length)")
    user: str | None = Field(None, max_length=256, description="accepted and ignored")


def add_openai_routes(app: FastAPI, server: ServerState) -> None:
    created = int(time.time())

    def card(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": created, "owned_by": "bertkit"}

    @app.post("/v1/embeddings")
    async def embeddings(request: EmbeddingRequest) -> dict[str, Any]:
        texts, _ = text_list("input", request.input, server.limits)
        model = server.model_for(request.model, "embeddings")
        dimensions = request.dimensions
        if dimensions is not None and not 1 <= dimensions <= model.dimensions:
            raise RequestError(422, "dimensions", f"dimensions={dimensions}; model "
                                                  f"{model.name!r} gives 1..{model.dimensions}")
        out = await server.run(None, "embeddings", "input", texts, ("mean", False), model=model)
        encode = to_base64 if request.encoding_format == "base64" else (lambda v: v)
        data = [{"object": "embedding", "index": index,
                 "embedding": encode(shorten(vector, dimensions))}
                for index, vector in enumerate(out.results)]
        return {"object": "list", "data": data, "model": model.name,
                "usage": {"prompt_tokens": out.tokens, "total_tokens": out.tokens}}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [card(name) for name in server.models]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict[str, Any]:
        return card(server.named(model_id).name)
