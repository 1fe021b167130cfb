"""The server's limits: how large a batch may grow and what one request may ask for.

Plain dataclasses with no FastAPI import, so ``bertkit serve`` derives its flags and their
``--help`` defaults from these fields (``cli/serve.py``) even where the ``server`` extra is not
installed: each default is written here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bertkit.errors import UsageError


def require_positive_ints(settings: object, names: Sequence[str]) -> None:
    """A :class:`UsageError` naming the first of ``names`` that is not an int >= 1."""
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{name}={value!r}; expected an integer >= 1")


@dataclass(frozen=True)
class BatchLimits:
    """How large a batch may grow and how long its first item may wait
    (:class:`~bertkit.server.batching.DynamicBatcher`)."""

    max_batch_size: int = 32
    max_batch_tokens: int = 16384
    max_wait_ms: float = 5.0
    max_queue: int = 1024

    def validate(self) -> BatchLimits:
        require_positive_ints(self, ("max_batch_size", "max_batch_tokens", "max_queue"))
        if not (isinstance(self.max_wait_ms, int | float) and 0 <= self.max_wait_ms <= 10_000):
            raise UsageError(f"max_wait_ms={self.max_wait_ms!r}; expected 0..10000")
        return self


@dataclass(frozen=True)
class RequestLimits:
    """What one request may ask for; beyond these the answer is a 4xx, never a slow 200.

    ``max_texts``: items (texts, questions, documents to rerank) per request;
    ``max_chars``: characters per text; ``max_request_tokens``: tokens of all its items
    together (texts longer than the model count whole: they run through windows);
    ``max_body_bytes``: the JSON body; ``max_concurrent_requests``: model requests in flight
    at once before new ones are shed with 429 + ``Retry-After``.
    """

    max_texts: int = 64
    max_chars: int = 20_000
    max_top_k: int = 50
    max_request_tokens: int = 32_768
    max_body_bytes: int = 4 * 1024 * 1024
    max_concurrent_requests: int = 128

    def validate(self) -> RequestLimits:
        require_positive_ints(self, ("max_texts", "max_chars", "max_top_k",
                                     "max_request_tokens", "max_body_bytes",
                                     "max_concurrent_requests"))
        return self
