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
from bertkit.cli.flags import OwnFlag, add_own_flags, own_values
from bertkit.cli.options import quantize_option
from bertkit.errors import UsageError
from bertkit.server.limits import BatchLimits, RequestLimits
from bertkit.tasks.registry import ROUTES

EXTRA_HINT = "bertkit serve needs the optional server extra: pip install 'bertkit[server]'"
TASK_CHOICES = ("auto", *ROUTES)

# The limit flags: (field, flag, type, help); defaults from the server.limits dataclasses,
# which import without the server extra.
_BATCH_FLAGS: list[OwnFlag] = [
    ("max_batch_size", "--max-batch-size", numbers.positive,
     "items per model batch (1 turns batching off)"),
    ("max_batch_tokens", "--max-batch-tokens", numbers.positive,
     "padded tokens per batch (items × longest)"),
    ("max_wait_ms", "--max-wait-ms", numbers.nonnegative_real,
     "how long the oldest queued item waits for company"),
    ("max_queue", "--max-queue", numbers.positive,
     "queued items before requests get 503 + Retry-After"),
]
_REQUEST_FLAGS: list[OwnFlag] = [
    ("max_texts", "--max-texts", numbers.positive, "texts (or questions) per request"),
    ("max_chars", "--max-chars", numbers.positive, "characters per text"),
    ("max_request_tokens", "--max-request-tokens", numbers.positive,
     "tokens of all texts of one request together"),
    ("max_body_bytes", "--max-body-bytes", numbers.positive, "bytes of a request body"),
    ("max_concurrent_requests", "--max-concurrent-requests", numbers.positive,
     "requests in flight before new ones get 429 + Retry-After"),
]


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
    for flag in _BATCH_FLAGS:  # counts take N, the wait milliseconds
        metavar = "MS" if flag[0] == "max_wait_ms" else "N"
        add_own_flags(batching, BatchLimits, [flag], metavar=metavar)
    add_own_flags(parser.add_argument_group("request limits"), RequestLimits, _REQUEST_FLAGS,
                  metavar="N")
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
    from bertkit.server import serve

    serve([parse_model(spec) for spec in args.model], task=args.task, backend=args.backend,
          device=args.device, quantize=args.quantize, host=args.host, port=args.port,
          batch_limits=BatchLimits(**own_values(args, _BATCH_FLAGS)),
          limits=RequestLimits(**own_values(args, _REQUEST_FLAGS)),
          api_key=args.api_key or os.environ.get("BERTKIT_API_KEY") or None,
          log_level="info" if args.verbose else "warning")
    return 0
