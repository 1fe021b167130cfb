#!/usr/bin/env python
"""bertkit vs ``transformers``: BertModel forward passes, side by side in one interleaved run.

What it compares: ``bertkit.model.pretrained.BertModel`` as loaded (``bertkit``) and as bertkit's
inference engine runs it, after ``prepare_for_inference()`` (``bertkit-prepared``: weights
prepacked for oneDNN, see ``bertkit.model.prepacked``), against the reference ``transformers``
``BertModel`` with ``attn_implementation="sdpa"`` (the reference's default, and the baseline of
every ratio) and ``"eager"``, on the same weights, under ``torch.inference_mode()``, on
all-MiniLM-L6-v2 (real weights) and a bert-base-sized model (random init, seed 0), for dense
batch × length shapes and one ragged batch of 64 real sentences padded to the longest.

Why it is built this way (the method of ``shared/reference/perf-baselines.md``):

* **Interleaved.** This machine is shared and noisy; absolute times move ~20 % between runs,
  ratios inside one run ~5 %. So every variant of a row is timed round-robin (A, B, C, then the
  order rotated), each sample repeats the call until it lasts ``--min-sample`` seconds, and a
  cell shows ``median (min..max)``. Ratios are ratios of medians; compare bertkit by ratio.
* **Same weights.** The reference model is saved (or, for MiniLM, already is) a Hugging Face
  directory and bertkit loads that directory; the max |Δ| of ``last_hidden_state`` against the
  reference is printed before any timing.
* **FLOPs count matmuls only** (2 per multiply-add): per layer ``2·T·(4h² + 2h·i)`` for the
  Q, K, V, O projections and the FFN, ``4·B·S²·h`` for QKᵀ and PV, plus the pooler ``2·B·h²``.
  For the ragged batch only the *useful* FLOPs are counted (each sentence at its own length),
  so its GFLOP/s says how much of the machine went into real tokens.
* **Ceiling measured in the same run**: the best median GFLOP/s of the 4096-token BERT-shaped
  fp32 ``F.linear`` calls (QKVO, FFN up, FFN down of both models).
* **Peak memory** of each variant is measured in a fresh child process (so nothing the parent
  allocated counts): RSS after loading, then per shape the peak RSS (``VmHWM`` of
  ``/proc/self/status``, reset before each shape through ``/proc/self/clear_refs``) of one
  forward pass.

Usage (from the repository root, with the project's virtualenv)::

    .venv/bin/python benchmarks/forward.py                     # full run, ~8-10 min on 2 cores
    .venv/bin/python benchmarks/forward.py --quick             # smoke run, ~2-3 min
    .venv/bin/python benchmarks/forward.py --models minilm --shapes 1x128,ragged64 --reps 9
    ... --compile            # add torch.compile(bertkit) rows (information only, slow to build)
    ... --minilm-path DIR    # a MiniLM checkpoint folder instead of fetching one
    ... --json FILE          # keep every raw sample
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import torch  # noqa: E402  (the environment above must be set before the libraries load)
import torch.nn.functional as F  # noqa: E402

from benchtools import cpu_ticks, interleaved, load_note, ms_cell, table  # noqa: E402

DENSE_SHAPES = ["1x128", "8x128", "32x128", "8x512"]
RAGGED = "ragged64"
ALL_SHAPES = [*DENSE_SHAPES, RAGGED]
MODELS = ["minilm", "bert-base"]
BASELINE = "hf-sdpa"
VARIANTS = ["bertkit", "bertkit-prepared", "hf-sdpa", "hf-eager"]
PREPARED = "bertkit-prepared"  # what bertkit's inference engine runs
RAGGED_SENTENCES = 64
RAGGED_LENGTHS = (10, 128)  # inclusive range of sentence lengths, [CLS] and [SEP] included
CLS_ID, SEP_ID = 101, 102

Inputs = dict[str, torch.Tensor]


# --------------------------------------------------------------------------------------------
# timing


# --------------------------------------------------------------------------------------------
# the matmul ceiling


CEILING_GEMMS = [  # (label, M, K, N): y[M, N] = x[M, K] @ W[N, K]^T + b, as nn.Linear runs it
    ("bert-base QKVO 4096x768->768", 4096, 768, 768),
    ("bert-base FFN up 4096x768->3072", 4096, 768, 3072),
    ("bert-base FFN down 4096x3072->768", 4096, 3072, 768),
    ("MiniLM QKVO 4096x384->384", 4096, 384, 384),
    ("MiniLM FFN up 4096x384->1536", 4096, 384, 1536),
    ("MiniLM FFN down 4096x1536->384", 4096, 1536, 384),
    ("bert-base FFN up 128x768->3072 (one 1x128 call)", 128, 768, 3072),
    ("MiniLM FFN up 128x384->1536 (one 1x128 call)", 128, 384, 1536),
]


def measure_ceiling(reps: int, min_sample_s: float) -> float:
    """Print the fp32 GEMM table; return the ceiling (best median of the 4096-row GEMMs)."""
    torch.manual_seed(0)
    variants: dict[str, Callable[[], object]] = {}
    flops: dict[str, float] = {}
    for label, m, k, n in CEILING_GEMMS:
        x, w, b = torch.randn(m, k), torch.randn(n, k), torch.randn(n)
        variants[label] = lambda x=x, w=w, b=b: F.linear(x, w, b)
        flops[label] = 2.0 * m * k * n
    samples, _ = interleaved(variants, reps, min_sample_s=min_sample_s)
    rates = {label: flops[label] / 1e9 / statistics.median(xs) for label, xs in samples.items()}
    ceiling = max(rate for (label, m, *_), rate in zip(CEILING_GEMMS, rates.values(),
                                                        strict=True) if m == 4096)
    rows = [[label,
             f"{rates[label]:.0f} ({flops[label] / 1e9 / max(xs):.0f}.."
             f"{flops[label] / 1e9 / min(xs):.0f})",
             f"{100 * rates[label] / ceiling:.0f}%"]
            for label, xs in samples.items()]
    print(f"## fp32 matmul ceiling (F.linear, torch {torch.__version__}, "
          f"threads={torch.get_num_threads()}; GFLOP/s median (min..max) of {reps} samples)")
    table(["GEMM", "GFLOP/s", "% of ceiling"], rows)
    print(f"Ceiling used below: **{ceiling:.0f} GFLOP/s** (best median of the 4096-row GEMMs)\n")
    return ceiling


def encoder_flops(hidden: int, intermediate: int, layers: int, batch: int, seq: int) -> float:
    """Forward FLOPs of a BertModel on a dense (batch, seq) input, matmuls only."""
    tokens = batch * seq
    per_layer = 2.0 * tokens * (4 * hidden**2 + 2 * hidden * intermediate) \
        + 4.0 * batch * seq**2 * hidden
    return layers * per_layer + 2.0 * batch * hidden**2


# --------------------------------------------------------------------------------------------
# models and inputs


def minilm_dir(arg: str | None) -> Path:
    """The MiniLM checkpoint folder: ``--minilm-path``, else bertkit's artifact cache."""
    if arg:
        return Path(arg)
    from bertkit.resources.artifacts import fetch

    return fetch("all-minilm-l6-v2", quiet=True)


def model_dir(kind: str, minilm: Path | None, workdir: Path) -> Path:
    """A Hugging Face checkpoint folder that every variant loads, so weights are identical."""
    if kind == "minilm":
        assert minilm is not None
        return minilm
    folder = workdir / "bert-base-seed0"
    if not (folder / "config.json").exists():
        from transformers import BertConfig, BertModel

        torch.manual_seed(0)
        BertModel(BertConfig()).save_pretrained(folder)
    return folder


class AlternativeBert(torch.nn.Module):
    """bertkit's model with the encoder taken from another copy of ``model/bert.py``.

    For before/after measurements of a change to the encoder inside one interleaved run:
    keep the old file somewhere, pass it as ``--bertkit-baseline``; the parameter names are
    the same, so the weights are copied over.
    """

    def __init__(self, source: Path, folder: Path):
        super().__init__()
        import importlib.util

        spec = importlib.util.spec_from_file_location("bertkit_baseline_bert", source)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        from bertkit.model.pretrained import BertModel

        current = BertModel.from_pretrained(folder)
        self.config = current.config
        self.bert = module.Bert(current.config)
        self.bert.load_state_dict(current.bert.state_dict())
        self.eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> Any:
        return self.bert(input_ids, attention_mask, token_type_ids)


def load_variant(variant: str, folder: Path) -> torch.nn.Module:
    """One model in eval mode; ``hf-<impl>`` is transformers with that attention implementation,
    ``bertkit@<file>`` bertkit with the encoder of another ``bert.py`` (see AlternativeBert)."""
    if variant.startswith("bertkit@"):
        return AlternativeBert(Path(variant.removeprefix("bertkit@")), folder)
    if variant.startswith("hf-"):
        from transformers import BertModel as ReferenceBertModel

        return ReferenceBertModel.from_pretrained(
            str(folder), attn_implementation=variant.removeprefix("hf-")).eval()
    from bertkit.model.pretrained import BertModel

    model = BertModel.from_pretrained(folder)
    return model.prepare_for_inference() if variant == PREPARED else model.eval()


def dense_inputs(batch: int, seq: int, seed: int = 0) -> Inputs:
    """Random in-vocabulary ids framed by [CLS] … [SEP], an all-ones mask as a tokenizer gives."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 29000, (batch, seq), generator=g)
    ids[:, 0], ids[:, -1] = CLS_ID, SEP_ID
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
            "token_type_ids": torch.zeros_like(ids)}


def real_text(minilm: Path) -> list[str]:
    """Real English lines: the MiniLM model card, then the summaries of the installed packages."""
    lines = []
    readme = minilm / "README.md"
    if readme.exists():
        in_code = False
        for raw in readme.read_text(encoding="utf-8").splitlines():
            if raw.strip().startswith("```"):
                in_code = not in_code
                continue
            text = raw.strip().lstrip("#>-* ").strip()
            if not in_code and len(text) >= 20 and not text.startswith(("|", "<", "[")):
                lines.append(text)
    summaries = sorted({(d.metadata.get("Summary") or "").strip()
                        for d in metadata.distributions()})
    lines.extend(s for s in summaries if len(s) >= 20)
    return lines


def ragged_inputs(tokenizer_file: Path, text: list[str]) -> tuple[Inputs, list[int]]:
    """64 sentences of real token ids, lengths uniform in 10..128 (seed 0), padded to the longest.

    As in the reference measurement: the text is tokenized into one stream of ids and cut into
    pieces of the drawn lengths, each framed by [CLS] … [SEP] (the stream is reused from its
    start if the text runs out). The same seed gives the reference's lengths: 4,898 real
    tokens, longest 127, 66 % padding when padded to the longest.
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    stream = [i for e in tokenizer.encode_batch(text, add_special_tokens=False) for i in e.ids]
    rng = random.Random(0)
    lengths = [rng.randint(*RAGGED_LENGTHS) for _ in range(RAGGED_SENTENCES)]
    width = max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    pos = 0
    for row, n in enumerate(lengths):
        piece = [stream[(pos + j) % len(stream)] for j in range(n - 2)]
        pos += n - 2
        ids[row, :n] = torch.tensor([CLS_ID, *piece, SEP_ID])
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}, \
        lengths


def runner(model: torch.nn.Module, inputs: Inputs) -> Callable[[], torch.Tensor]:
    def run() -> torch.Tensor:
        with torch.inference_mode():
            return model(**inputs).last_hidden_state

    return run


def parity(models: dict[str, torch.nn.Module], inputs: Inputs) -> dict[str, float]:
    """Max |Δ| of ``last_hidden_state`` at real (unpadded) positions, each variant vs hf-eager."""
    keep = inputs["attention_mask"].bool()
    outs = {name: runner(model, inputs)()[keep] for name, model in models.items()}
    reference = outs["hf-eager"]
    return {name: float((out - reference).abs().max()) for name, out in outs.items()}


# --------------------------------------------------------------------------------------------
# peak memory, in a fresh child process per variant


def status_kb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return float("nan")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def memory_child(variant: str, folder: str, inputs_file: str, shapes: list[str]) -> None:
    """Runs in a fresh process: RSS after loading, then each shape's peak RSS of one forward."""
    torch.set_grad_enabled(False)
    model = load_variant(variant, Path(folder))
    all_inputs = torch.load(inputs_file, weights_only=True)
    report: dict[str, Any] = {"loaded_mb": status_kb("VmRSS") / 1024, "peak_mb": {},
                              "resettable": True}
    for shape in shapes:
        report["resettable"] &= reset_peak()
        runner(model, all_inputs[shape])()
        report["peak_mb"][shape] = status_kb("VmHWM") / 1024
    print(json.dumps(report))


def measure_memory(variants: list[str], folder: Path, inputs: dict[str, Inputs],
                   workdir: Path) -> dict[str, dict[str, Any]]:
    inputs_file = workdir / "inputs.pt"
    torch.save(inputs, inputs_file)
    out = {}
    for variant in variants:
        proc = subprocess.run(
            [sys.executable, __file__, "--_memory-child", variant, "--_folder", str(folder),
             "--_inputs", str(inputs_file), "--shapes", ",".join(inputs)],
            capture_output=True, text=True, timeout=900, check=False)
        try:
            out[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            out[variant] = {"error": proc.stderr.strip()[-300:]}
    return out


# --------------------------------------------------------------------------------------------
# the benchmark


def shape_inputs(shapes: list[str], ragged: tuple[Inputs, list[int]] | None) -> dict[str, Inputs]:
    out = {}
    for shape in shapes:
        if shape == RAGGED:
            assert ragged is not None
            out[shape] = ragged[0]
        else:
            batch, seq = (int(v) for v in shape.split("x"))
            out[shape] = dense_inputs(batch, seq)
    return out


def flops_and_tokens(config: Any, shape: str, inputs: Inputs,
                     lengths: list[int] | None) -> tuple[float, int]:
    """Useful FLOPs per call and real tokens per call (the ragged batch: at real lengths)."""
    dims = (config.hidden_size, config.intermediate_size, config.num_hidden_layers)
    if shape == RAGGED:
        assert lengths is not None
        return sum(encoder_flops(*dims, 1, n) for n in lengths), sum(lengths)
    batch, seq = inputs["input_ids"].shape
    return encoder_flops(*dims, batch, seq), batch * seq


@contextlib.contextmanager
def section(title: str, results: dict[str, Any]) -> Iterator[None]:
    start, ticks = time.perf_counter(), cpu_ticks()
    yield
    note = load_note(ticks)
    results.setdefault("load", {})[title] = note
    print(f"[{title}: {time.perf_counter() - start:.0f} s; {note}]\n", flush=True)


def run_model(kind: str, args: argparse.Namespace, ceiling: float, minilm: Path,
              ragged: tuple[Inputs, list[int]], workdir: Path,
              results: dict[str, Any]) -> list[list[str]]:
    """Benchmark one model over every requested shape; return its summary rows."""
    folder = model_dir(kind, minilm, workdir)
    variants = list(VARIANTS)
    if args.bertkit_baseline:
        variants.insert(1, f"bertkit@{args.bertkit_baseline}")
    models = {variant: load_variant(variant, folder) for variant in variants}
    config = models["bertkit"].config
    if args.compile:
        torch._dynamo.reset()
        # One static graph per shape; the default limit (8) would silently fall back to eager.
        torch._dynamo.config.recompile_limit = 64
        torch._logging.set_logs(dynamo=logging.ERROR)  # graph breaks are expected, not news
        models["bertkit-compile"] = torch.compile(models["bertkit"], dynamic=False)
        variants.append("bertkit-compile")
    if args.bertkit_baseline:
        print(f"(bertkit@… = bertkit with the encoder of {args.bertkit_baseline})")
    params = sum(p.numel() for p in models["bertkit"].parameters())
    probe = dense_inputs(2, 64, seed=1)
    probe["attention_mask"][1, 40:] = 0
    probe["input_ids"][1, 40:] = 0
    checks = {"2x64, one row padded": parity(models, probe),
              "ragged64": parity(models, ragged[0])}
    print(f"## {kind}: {config.num_hidden_layers} layers, h={config.hidden_size}, "
          f"i={config.intermediate_size}, {params / 1e6:.1f} M params "
          f"({'real weights' if kind == 'minilm' else 'random init, seed 0'}; {folder})")
    for label, diffs in checks.items():
        print(f"max |Δ| of last_hidden_state at real positions vs hf-eager ({label}): "
              + ", ".join(f"{name} {diff:.1e}" for name, diff in diffs.items()))
    print()
    shapes = args.shapes
    inputs = shape_inputs(shapes, ragged)
    memory = ({} if args.no_memory
              else measure_memory(variants, folder, inputs, workdir))
    rows, summary = [], []
    kind_results: dict[str, Any] = {"parity": checks, "memory": memory, "shapes": {}}
    for shape in shapes:
        runners = {name: runner(models[name], inputs[shape]) for name in variants}
        samples, first = interleaved(runners, args.reps, min_sample_s=args.min_sample)
        flops, tokens = flops_and_tokens(config, shape, inputs[shape], ragged[1])
        base = statistics.median(samples[BASELINE])
        for name in variants:
            median = statistics.median(samples[name])
            gflops = flops / median / 1e9
            mem = memory.get(name, {})
            peak = mem.get("peak_mb", {}).get(shape)
            rows.append([
                shape, name, ms_cell(samples[name]), f"{tokens / median:,.0f}",
                f"{gflops:.0f}", f"{100 * gflops / ceiling:.0f}%", f"{base / median:.2f}x",
                "" if peak is None else f"{peak:,.0f} (+{peak - mem['loaded_mb']:,.0f})",
                f"{first[name]:.1f}" if name.endswith("compile") else "",
            ])
        ratio = base / statistics.median(samples["bertkit"])
        prepared = base / statistics.median(samples[PREPARED])
        target = 1.2 if shape == "1x128" else 1.0
        before = [f"{base / statistics.median(samples[n]):.2f}x" for n in variants
                  if n.startswith("bertkit@")]
        summary.append([kind, shape, f"{ratio:.2f}x", f"{prepared:.2f}x", *before,
                        f"≥ {target:.1f}x", "yes" if prepared >= target else "**no**"])
        kind_results["shapes"][shape] = {"samples_s": samples, "first_call_s": first,
                                         "gflop_per_call": flops / 1e9, "tokens": tokens}
    padded = ragged[0]["input_ids"].numel()
    print(f"### {kind}: forward passes, ms per call, median (min..max) of {args.reps} interleaved "
          f"samples; `vs sdpa` = hf-sdpa median / variant median (> 1 is faster)")
    table(["shape", "variant", "ms/call", "tok/s", "GFLOP/s", "% ceil", "vs sdpa",
           "peak RSS MB (+fwd)", "compile s"], rows)
    if RAGGED in shapes:
        print(f"{RAGGED}: {len(ragged[1])} sentences, {sum(ragged[1]):,} real tokens padded to "
              f"{ragged[0]['input_ids'].shape[1]} ({padded:,} positions, "
              f"{100 * (padded / sum(ragged[1]) - 1):.0f}% padding); tok/s and GFLOP/s count "
              f"real tokens and useful FLOPs only.\n")
    results[kind] = kind_results
    del models
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help="minilm,bert-base")
    parser.add_argument("--shapes", default=",".join(ALL_SHAPES),
                        help="BxS shapes and/or 'ragged64' (default: %(default)s)")
    parser.add_argument("--reps", type=int, default=5, help="interleaved samples per variant")
    parser.add_argument("--min-sample", type=float, default=0.3,
                        help="repeat a call until one sample lasts this many seconds")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 samples of ≥ 0.05 s, no memory children")
    parser.add_argument("--compile", action="store_true",
                        help="add a torch.compile(bertkit) variant (information only)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS children")
    parser.add_argument("--minilm-path", default=None, help="MiniLM checkpoint folder")
    parser.add_argument("--bertkit-baseline", default=None, metavar="BERT_PY",
                        help="also time bertkit with the encoder from this copy of bert.py "
                             "(before/after comparisons)")
    parser.add_argument("--json", default=None, help="write every raw sample to this file")
    parser.add_argument("--_memory-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_folder", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_inputs", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.shapes = [s for s in args.shapes.split(",") if s]
    for shape in args.shapes:
        if shape != RAGGED and not (len(shape.split("x")) == 2
                                    and all(v.isdigit() for v in shape.split("x"))):
            parser.error(f"--shapes: {shape!r} is neither BxS nor {RAGGED!r}")
    if args._memory_child:
        memory_child(args._memory_child, args._folder, args._inputs, args.shapes)
        return
    if args.quick:
        args.reps, args.min_sample, args.no_memory = 2, 0.05, True

    logging.getLogger("bertkit").setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import tokenizers
    import transformers

    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    print(f"# bertkit forward benchmark: torch {torch.__version__}, transformers "
          f"{transformers.__version__}, tokenizers {tokenizers.__version__}, {cpu}, "
          f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    results: dict[str, Any] = {"argv": sys.argv[1:]}
    started = time.perf_counter()
    minilm = minilm_dir(args.minilm_path)
    ragged = ragged_inputs(minilm / "tokenizer.json", real_text(minilm))
    summary: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="bertkit_forward_") as tmp:
        with section("ceiling", results):
            ceiling = measure_ceiling(args.reps + 2, min(args.min_sample, 0.2))
        results["ceiling_gflops"] = ceiling
        for kind in [k for k in args.models.split(",") if k]:
            if kind not in MODELS:
                parser.error(f"--models: unknown model {kind!r}; known: {MODELS}")
            with section(kind, results):
                summary += run_model(kind, args, ceiling, minilm, ragged, Path(tmp), results)
    print("## Summary: bertkit throughput vs hf-sdpa (ratio of medians)")
    baseline = ["bertkit@baseline vs sdpa"] if args.bertkit_baseline else []
    table(["model", "shape", "bertkit vs sdpa", "prepared vs sdpa", *baseline, "target",
           "met (prepared)"], summary)
    print(f"FLOPs per forward = L·(2·T·(4h² + 2h·i) + 4·B·S²·h) + 2·B·h², T = B·S; '% ceil' is "
          f"against the fp32 ceiling measured above ({ceiling:.0f} GFLOP/s). Peak RSS: a fresh "
          f"process per variant, VmHWM reset before each shape; (+fwd) = peak minus RSS after "
          f"loading. Total wall time {time.perf_counter() - started:.0f} s.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)


if __name__ == "__main__":
    main()
