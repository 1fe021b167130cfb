"""Error answers in the shape each client expects.

One server speaks three APIs, and each client library parses errors its own way:

* bertkit's routes (``/v1/classify`` …): ``{"error": {"type", "message", "field"}}``;
* OpenAI's (``/v1/embeddings``, ``/v1/models``): ``{"error": {"message", "type", "param",
  "code"}}``, status 400 for every invalid request (OpenAI never answers 422);
* Hugging Face text-embeddings-inference (``/embed``, ``/rerank``, ``/predict``,
  ``/tokenize``, ``/info``, ``/``): ``{"error": "...", "error_type": "Validation" | "Empty" |
  "Overloaded" | …}``, 413 for inputs over a limit and 429 when overloaded, as TEI does.

:func:`error_response` picks the shape from the request path, so every check
(:class:`~bertkit.server.requests.RequestError`) and every guard (authentication, overload,
body size) answers in the right one. No stack trace ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bertkit.errors import BertkitError
from bertkit.server.batching import Overloaded
from bertkit.server.requests import RequestError

logger = logging.getLogger("bertkit.server")

OPENAI_PREFIXES = ("/v1/embeddings", "/v1/models")
TEI_PATHS = ("/", "/embed", "/rerank", "/predict", "/tokenize", "/info")
# kind → (OpenAI error type, TEI error type)
_TYPES = {"invalid": ("invalid_request_error", "Validation"),
          "malformed_json": ("invalid_request_error", "Validation"),
          "empty": ("invalid_request_error", "Empty"),
          "too_large": ("invalid_request_error", "Validation"),
          "not_found": ("invalid_request_error", "NotFound"),
          "unauthorized": ("authentication_error", "Unauthorized"),
          "overloaded": ("server_error", "Overloaded"),
          "rate_limited": ("rate_limit_error", "Overloaded"),
          "internal": ("server_error", "Backend"),
          "http": ("invalid_request_error", "Validation")}


def dialect(path: str) -> str:
    """``"openai"``, ``"tei"`` or ``"bertkit"``: whose API the path belongs to."""
    if path.startswith(OPENAI_PREFIXES):
        return "openai"
    return "tei" if path in TEI_PATHS else "bertkit"


def error_response(path: str, status: int, kind: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The error answer for a request to ``path``, in that API's shape and status codes."""
    openai_type, tei_type = _TYPES.get(kind, _TYPES["invalid"])
    style = dialect(path)
    body: dict[str, Any]
    if style == "openai":
        if status == 422 or (status == 413 and field != "body"):  # the body itself: 413
            status = 400
        code = "model_not_found" if kind == "not_found" and field == "model" else \
            ("invalid_api_key" if kind == "unauthorized" else kind)
        body = {"error": {"message": message, "type": openai_type, "param": field,
                          "code": code}}
    elif style == "tei":
        if kind == "empty":
            status = 400
        elif kind == "overloaded":
            status = 429
        where = f"`{field}`: " if field and field != "body" else ""
        body = {"error": where + message, "error_type": tei_type}
    else:
        inner: dict[str, Any] = {"type": kind, "message": message}
        if field is not None:
            inner["field"] = field
        body = {"error": inner}
    return JSONResponse(body, status_code=status, headers=headers)


def location(loc: Sequence[Any]) -> str:
    """``("body", "texts", 3)`` → ``texts[3]``; ``("body", "inputs", 0, "question")`` →
    ``inputs[0].question``."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def add_error_handlers(app: FastAPI) -> None:
    """Every failure a request can meet, answered in its API's shape."""

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError) -> JSONResponse:
        return error_response(request.url.path, err.status, err.kind, err.message, err.field,
                              err.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        path = request.url.path
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return error_response(path, 400, "malformed_json", "the body is not valid JSON: "
                                  f"{first.get('ctx', {}).get('error', '')}", "body")
        field = location(first.get("loc", ()))
        message = str(first.get("msg"))
        if first.get("type") == "extra_forbidden":
            message = f"unknown field {field!r}"
            if dialect(path) == "openai" and field == "texts":
                message += ("; this route speaks OpenAI's embeddings API: send {\"input\": "
                            "[...]} (bertkit's own shape is POST /v1/sentence-embeddings)")
        return error_response(path, 422, "invalid", message, field)

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, err: Overloaded) -> JSONResponse:
        return error_response(request.url.path, 503, "overloaded", str(err),
                              headers={"Retry-After": str(err.retry_after)})

    @app.exception_handler(BertkitError)
    async def bertkit_error(request: Request, err: BertkitError) -> JSONResponse:
        # A check inside the library (a tokenizer refusing a text): the client's input.
        return error_response(request.url.path, 422, "invalid", str(err))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        kind = "not_found" if err.status_code == 404 else "http"
        return error_response(request.url.path, err.status_code, kind, str(err.detail),
                              headers=err.headers)

    @app.exception_handler(Exception)
    async def internal(request: Request, err: Exception) -> JSONResponse:
        logger.error("unhandled error: %s: %s", type(err).__name__, err, exc_info=err)
        return error_response(request.url.path, 500, "internal", "internal server error")
