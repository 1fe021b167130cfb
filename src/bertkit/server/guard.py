"""The door of the server: API key, body size and concurrency, checked before any route runs.

A pure ASGI middleware, so the checks hold for every path (unknown ones included) and cost
nothing per route:

* **API key** (optional): every route but ``/health`` needs ``Authorization: Bearer KEY``
  (what the OpenAI and Hugging Face clients send); the key is compared in constant time.
* **Body size**: a body over ``max_body_bytes`` is refused with 413 before it is parsed — a
  JSON parser holds several times the body in memory.
* **Concurrency**: beyond ``max_concurrent_requests`` model requests in flight, new ones are
  shed at once with 429 and ``Retry-After`` (the queue's estimated drain time), instead of
  queueing until every client times out.

Refusals are answered in the shape of the API the path belongs to
(:func:`bertkit.server.errors.error_response`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bertkit.server.errors import error_response
from bertkit.server.limits import RequestLimits

OPEN_PATHS = ("/health",)


class Guard:
    """ASGI middleware; ``retry_after()`` estimates in seconds when the queue has drained."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, limits: RequestLimits,
                 retry_after: Callable[[], int]):
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.limits = limits
        self.retry_after = retry_after
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if self.api_key is not None and path not in OPEN_PATHS and not self._authorised(scope):
            await error_response(path, 401, "unauthorized",
                                 "missing or wrong API key; send 'Authorization: Bearer KEY'",
                                 headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limits.max_concurrent_requests:
            await error_response(
                path, 429, "rate_limited", f"{self.in_flight} requests in flight; at most "
                f"{self.limits.max_concurrent_requests}: retry later",
                headers={"Retry-After": str(self.retry_after())})(scope, receive, send)
            return
        self.in_flight += 1
        try:
            body = await self._read_body(receive)
            if body is None:
                await error_response(path, 413, "too_large", "request body over "
                                     f"{self.limits.max_body_bytes} bytes",
                                     "body")(scope, receive, send)
                return
            await self.app(scope, _replay(body, receive), send)
        finally:
            self.in_flight -= 1

    def _authorised(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(),
                                                                           self.api_key)
        return False

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit (the rest is not read)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the buffered body once, then waits on the real one (for the
    disconnect message)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
