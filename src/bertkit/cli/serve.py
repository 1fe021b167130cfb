"""``bertkit serve``: an HTTP inference server with dynamic batching (needs the ``server``
extra). Argument parsing only; the server is :func:`bertkit.server.serve`.

``--model`` may be given several times, as ``DIR`` or ``NAME=DIR`` (the name defaults to the
directory's name); requests pick a model by ``"model": NAME``. The server binds 127.0.0.1
unless ``--host`` says otherwise; ``--api-key`` (or ``BERTKIT_API_KEY``, which keeps the key out
of the process list) makes every route but ``/health`` need ``Authorization: Bearer KEY``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bertkit.cli import numbers
from bertkit.cli.options import quantize_option
from bertkit.errors import UsageError
from bertkit.tasks.registry import ROUTES

EXTRA_HINT = "bertkit serve needs the optional server extra: pip install 'bertkit[server]'"
TASK_CHOICES = ("auto", *ROUTES)


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("serve", help="serve models over HTTP (dynamic batching)",
                                    description=__doc__)
    parser.add_argument("--model", action="append", required=True, metavar="[NAME=]DIR",
                        help="model directory to serve (repeat for several)")
    parser.add_argument("--task", default="auto", choices=TASK_CHOICES,
                        help="what to serve (default auto: from config.json 'architectures')")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                        help="onnx: export at start-up and run with ONNX Runtime "
                             "(needs the onnx extra)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only; "
                             "0.0.0.0 opens it to the network)")
    parser.add_argument("--api-key", default=None, metavar="KEY",
                        help="require 'Authorization: Bearer KEY' on every route but /health "
                             "(default: $BERTKIT_API_KEY, else no key)")
    parser.add_argument("--port", type=numbers.port, default=8080)
    parser.add_argument("--device", default=None, help="cpu, cuda, … (default: cuda if any)")
    quantize_option(parser)
    batching = parser.add_argument_group("dynamic batching")
    batching.add_argument("--max-batch-size", type=numbers.positive, default=32, metavar="N",
                          help="items per model batch (1 turns batching off)")
    batching.add_argument("--max-batch-tokens", type=numbers.positive, default=16384, metavar="N",
                          help="padded tokens per batch (items × longest)")
    batching.add_argument("--max-wait-ms", type=numbers.nonnegative_real, default=5.0, metavar="MS",
                          help="how long the oldest queued item waits for company")
    batching.add_argument("--max-queue", type=numbers.positive, default=1024, metavar="N",
                          help="queued items before requests get 503 + Retry-After")
    limits = parser.add_argument_group("request limits")
    limits.add_argument("--max-texts", type=numbers.positive, default=64, metavar="N",
                        help="texts (or questions) per request")
    limits.add_argument("--max-chars", type=numbers.positive, default=20_000, metavar="N",
                        help="characters per text")
    limits.add_argument("--max-request-tokens", type=numbers.positive, default=32_768, metavar="N",
                        help="tokens of all texts of one request together")
    limits.add_argument("--max-body-bytes", type=numbers.positive, default=4 * 1024 * 1024,
                        metavar="N",
                        help="bytes of a request body")
    limits.add_argument("--max-concurrent-requests", type=numbers.positive, default=128,
                        metavar="N",
                        help="requests in flight before new ones get 429 + Retry-After")
    parser.set_defaults(handler=run)


def parse_model(spec: str) -> tuple[str, str]:
    """``NAME=DIR`` or ``DIR`` → (name, directory)."""
    name, sep, directory = spec.partition("=")
    if not sep:
        name, directory = Path(spec).resolve().name or "model", spec
    if not name or not directory:
        raise UsageError(f"--model {spec!r}; expected DIR or NAME=DIR")
    return name, directory


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UsageError(EXTRA_HINT) from None
    from bertkit.server import BatchLimits, RequestLimits, serve

    serve([parse_model(spec) for spec in args.model], task=args.task, backend=args.backend,
          device=args.device, quantize=args.quantize, host=args.host, port=args.port,
          batch_limits=BatchLimits(args.max_batch_size, args.max_batch_tokens, args.max_wait_ms,
                                   args.max_queue),
          limits=RequestLimits(max_texts=args.max_texts, max_chars=args.max_chars,
                               max_request_tokens=args.max_request_tokens,
                               max_body_bytes=args.max_body_bytes,
                               max_concurrent_requests=args.max_concurrent_requests),
          api_key=args.api_key or os.environ.get("BERTKIT_API_KEY") or None,
          log_level="info" if args.verbose else "warning")
    return 0
