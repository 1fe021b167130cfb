"""HTTP inference server (optional ``server`` extra: FastAPI + uvicorn).

:func:`create_app` builds the ASGI app over models loaded with :meth:`ServedModel.load`;
:func:`serve` loads them and runs uvicorn. Routes: :mod:`bertkit.server.app` (bertkit's own),
:mod:`bertkit.server.openai_api` (OpenAI embeddings), :mod:`bertkit.server.tei_api`
(text-embeddings-inference); limits: :mod:`bertkit.server.limits` (their values) and
:mod:`bertkit.server.requests` (their checks); API key, body size and concurrency:
:mod:`bertkit.server.guard`; dynamic batching: :mod:`bertkit.server.batching`.

FastAPI is imported only when :func:`create_app` is first looked up (or :func:`serve` runs), so
``bertkit serve --help`` and :mod:`bertkit.server.limits` work without the extra.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bertkit.server.batching import DynamicBatcher, Overloaded
from bertkit.server.limits import BatchLimits, RequestLimits
from bertkit.server.models import BACKENDS, TASKS, ServedModel

__all__ = ["BACKENDS", "TASKS", "BatchLimits", "DynamicBatcher", "Overloaded", "RequestLimits",
           "ServedModel", "create_app", "serve"]

logger = logging.getLogger("bertkit.server")


def __getattr__(name: str) -> Any:
    """``create_app`` on first use: it is the one name that needs FastAPI."""
    if name == "create_app":
        from bertkit.server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def serve(models: Sequence[tuple[str, str]], *, task: str = "auto", backend: str = "torch",
          device: str | None = None, quantize: str | None = None, host: str = "127.0.0.1",
          port: int = 8080,
          batch_limits: BatchLimits | None = None, limits: RequestLimits | None = None,
          api_key: str | None = None, log_level: str = "info") -> None:
    """Load every ``(name, directory)`` and serve them until interrupted.

    ``host`` is loopback unless the caller opens it; ``api_key`` (if any) is then required on
    every route but ``/health``. ``quantize="int8"`` loads every model with int8 layers.
    """
    import uvicorn

    from bertkit.server.app import create_app

    batch_limits = (batch_limits or BatchLimits()).validate()
    limits = (limits or RequestLimits()).validate()
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        logger.warning("serving on %s without an API key: anyone who reaches this port can "
                       "use the models (set --api-key or BERTKIT_API_KEY)", host)
    served: list[ServedModel] = []
    try:
        for name, directory in models:
            served.append(ServedModel.load(name, directory, task=task, backend=backend,
                                           device=device, quantize=quantize,
                                           batch_size=batch_limits.max_batch_size))
            logger.info("model %s: %s", name, served[-1].describe())
        app = create_app(served, batch_limits=batch_limits, limits=limits, api_key=api_key)
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    finally:
        for model in served:
            model.close()
