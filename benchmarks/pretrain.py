#!/usr/bin/env python
"""bertkit vs ``transformers``: one pretraining step (MLM 15 % + NSP), side by side, interleaved.

What it compares, on the same machine, config, batch and starting weights:

* ``hf`` — stock ``transformers.BertForPreTraining`` (sdpa attention): the baseline of every
  ratio. It projects *every* position onto the 30,522-word vocabulary.
* ``hf-masked`` — the same HF modules with the MLM head run on the masked rows only (the
  reference arrangement of ``shared/reference/perf-baselines.md`` §3: what a careful user of
  ``transformers`` can do without writing a model).
* ``bertkit`` — ``bertkit.objectives.PreTrainingObjective`` over ``bertkit.BertForPreTraining``
  (sparse prediction, vocabulary padded to a multiple of 64 at compute time) with bertkit's own
  optimizer builder (``bertkit.training.build_optimizer``: AdamW, no decay on biases/norms).

each in fp32 and under ``torch.autocast("cpu", dtype=torch.bfloat16)``. Config: 4 layers, hidden
256, 4 heads, intermediate 1024, vocab 30,522, dropout 0.1 (on), batch 32 × 128, a fixed random
batch with 15 % of positions masked and random NSP labels, AdamW lr 1e-4, no gradient clipping
for anyone. A step is forward, backward, ``optimizer.step()``, ``zero_grad``.

Why it is built this way (the method of ``perf-baselines.md``):

* **Interleaved.** The machine is shared and noisy; absolute times move ~20 % between runs,
  ratios much less. Every variant is stepped round-robin (the order rotated each round), each
  variant's first step and one warm-up step are not counted, a sample is ``--steps`` steps and
  a cell shows ``median (min..max)`` of ``--reps`` samples. Ratios are ratios of medians.
* **Same computation.** Before timing, the HF model is saved in the Hugging Face format and
  bertkit loads it; the losses of both (dropout off) are printed with their difference.
* **FLOPs** (matmuls only, 2 per multiply-add; perf-baselines §3):
  ``3 × (F + 2·R·(h² + h·V))`` with ``F = L·[2·T·(4h² + 2h·i) + 4·B·S²·h] + 2·B·h²``, ``R`` the
  rows sent through the MLM transform and decoder (all ``B·S`` for ``hf``, the masked ones
  otherwise), ``V`` = 30,522 (padding columns are not counted as useful work).
* **Ceiling** measured in the same run: the best median GFLOP/s of the 4096-row bert-base-shaped
  ``F.linear`` calls, per dtype.
* **Peak memory** of each variant in a fresh child process (nothing the parent allocated counts):
  ``VmRSS`` after set-up, and ``VmHWM`` (the process's peak RSS) after set-up + 3 steps.
  The bertkit child never imports ``transformers``: that is part of bertkit's footprint.
* **bf16 needs hardware.** Without native bf16 matmuls (AVX512_BF16 / AMX on x86) oneDNN
  emulates them 10–100× slower than fp32, so a bf16 row would measure the emulation; by default
  (``--bf16 auto``) the bf16 rows run only when ``torch`` reports native bf16 support.

Usage (from the repository root, with the project's virtualenv)::

    .venv/bin/python benchmarks/pretrain.py               # 3-6 min on 2 cores
    .venv/bin/python benchmarks/pretrain.py --quick       # smoke run
    .venv/bin/python benchmarks/pretrain.py --reps 9 --steps 2 --bf16 on --ablations
    ... --json FILE       # keep every raw sample
    ... --compile --threads 1 --clock cpu --no-memory   # + bertkit under torch.compile
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402  (the environment above must be set before the libraries load)
import torch.nn.functional as F  # noqa: E402

from benchtools import cpu_ticks, interleaved, load_note, ms_cell, table  # noqa: E402

CONFIG = {"vocab_size": 30522, "num_hidden_layers": 4, "hidden_size": 256,
          "num_attention_heads": 4, "intermediate_size": 1024}
MASK_RATE = 0.15
MASK_ID = 103
LEARNING_RATE = 1e-4
BASELINE = "hf fp32"
SYSTEMS = ["hf", "hf-masked", "bertkit"]
ABLATIONS = ["bertkit fused-adamw"]
COMPILED = "bertkit-compile"
"""bertkit's step with the objective under ``torch.compile`` (``bertkit pretrain --compile``)."""
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
COMPILE_SECONDS: dict[str, tuple[float, float]] = {}
"""Wall and CPU seconds of each compiled variant's first step (the compilation), by name."""
TARGETS = {"fp32": 3.0, "bf16": 4.5}  # bertkit tok/s ÷ HF fp32 tok/s (issue 3)
MEMORY_TARGET = 0.6  # bertkit peak RSS ÷ HF peak RSS, same precision
CEILING_GEMMS = [  # (label, M, K, N), as perf-baselines §1 measured them
    ("bert-base QKVO 4096x768->768", 4096, 768, 768),
    ("bert-base FFN up 4096x768->3072", 4096, 768, 3072),
    ("bert-base FFN down 4096x3072->768", 4096, 3072, 768),
]

Step = Callable[[], float]


# --------------------------------------------------------------------------------------------
# timing and printing


# --------------------------------------------------------------------------------------------
# hardware


def native_bf16() -> bool:
    """Whether oneDNN has native bf16 matmuls here (AVX512_BF16 or AMX), not an emulation."""
    with contextlib.suppress(Exception):
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        info = f.read()
        name = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                     if line.startswith("model name")), "unknown CPU")
        flags = next((line.split(":", 1)[1].split() for line in info.splitlines()
                      if line.startswith("flags")), [])
        simd = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
        return f"{name} ({', '.join(simd) or 'no AVX2'})"
    return "unknown CPU"


def measure_ceiling(dtype: torch.dtype, reps: int) -> float:
    """Best median GFLOP/s of the bert-base-shaped 4096-row GEMMs in ``dtype``."""
    torch.manual_seed(0)
    variants: dict[str, Step] = {}
    flops: dict[str, float] = {}
    for label, m, k, n in CEILING_GEMMS:
        x, w, b = (torch.randn(m, k, dtype=dtype), torch.randn(n, k, dtype=dtype),
                   torch.randn(n, dtype=dtype))
        variants[label] = lambda x=x, w=w, b=b: F.linear(x, w, b)
        flops[label] = 2.0 * m * k * n
    samples, _ = interleaved(variants, reps, calls=3)
    return max(flops[label] / 1e9 / statistics.median(xs) for label, xs in samples.items())


# --------------------------------------------------------------------------------------------
# the workload


def make_batch(batch: int, seq: int) -> dict[str, torch.Tensor]:
    """The fixed batch of perf-baselines §3: random ids, 15 % masked, two segments, NSP labels."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, CONFIG["vocab_size"], (batch, seq), generator=g)
    masked = torch.rand(batch, seq, generator=g) < MASK_RATE
    labels = torch.where(masked, ids, torch.full_like(ids, -100))
    ids = ids.masked_fill(masked, MASK_ID)
    segments = torch.zeros_like(ids)
    segments[:, seq // 2:] = 1
    nsp = torch.randint(0, 2, (batch,), generator=g)
    return {"input_ids": ids, "token_type_ids": segments, "attention_mask": torch.ones_like(ids),
            "labels": labels, "next_sentence_label": nsp}


def step_flops(batch: int, seq: int, mlm_rows: int) -> float:
    """perf-baselines §3: 3 × (encoder forward + MLM transform and decoder on mlm_rows)."""
    h, i, layers, v = (CONFIG["hidden_size"], CONFIG["intermediate_size"],
                       CONFIG["num_hidden_layers"], CONFIG["vocab_size"])
    tokens = batch * seq
    encoder = layers * (2.0 * tokens * (4 * h * h + 2 * h * i) + 4.0 * batch * seq**2 * h) \
        + 2.0 * batch * h * h
    return 3.0 * (encoder + 2.0 * mlm_rows * (h * h + h * v))


def hf_model(seed: int = 0) -> Any:
    from transformers import BertConfig, BertForPreTraining

    torch.manual_seed(seed)
    return BertForPreTraining(BertConfig(attn_implementation="sdpa", **CONFIG)).train()


def hf_step(model: Any, inputs: dict[str, torch.Tensor], *, masked_only: bool,
            bf16: bool) -> Step:
    """One reference step: stock forward with labels, or HF's modules on masked rows only."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    labels, nsp = inputs["labels"], inputs["next_sentence_label"]
    encoder_inputs = {k: inputs[k] for k in ("input_ids", "attention_mask", "token_type_ids")}

    def step() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if masked_only:
                sequence, pooled = model.bert(**encoder_inputs)[:2]
                chosen = labels != -100
                logits = model.cls.predictions(sequence[chosen])
                loss = (F.cross_entropy(logits.float(), labels[chosen])
                        + F.cross_entropy(model.cls.seq_relationship(pooled).float(), nsp))
            else:
                loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    return step


def bertkit_step(model: Any, inputs: dict[str, torch.Tensor], *, bf16: bool,
                 fused_adamw: bool = False, compiled: str | None = None) -> Step:
    """One bertkit step: the pretraining objective and bertkit's optimizer builder; with
    ``compiled`` (the variant's name) the objective runs under ``torch.compile``, and its
    first step, the compilation, runs here and is timed into :data:`COMPILE_SECONDS`."""
    from bertkit.data.batch import Batch
    from bertkit.objectives import PreTrainingObjective
    from bertkit.training import build_optimizer

    objective = PreTrainingObjective(model).train()
    if fused_adamw:  # the change proposed for training/optim.py: fused AdamW on CPU too
        from bertkit.training import param_groups

        optimizer = torch.optim.AdamW(param_groups(objective, 0.01), lr=LEARNING_RATE,
                                      eps=1e-6, fused=True)
    else:
        optimizer = build_optimizer(objective, learning_rate=LEARNING_RATE, weight_decay=0.01)
    batch = Batch(inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"],
                  inputs["labels"], inputs["next_sentence_label"])

    forward = torch.compile(objective) if compiled else objective

    def step() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = forward(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    if compiled:
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        COMPILE_SECONDS[compiled] = (time.perf_counter() - wall, time.process_time() - cpu)
    return step


def make_variant(name: str, inputs: dict[str, torch.Tensor], hf_init: Any | None,
                 bertkit_dir: Path | None) -> Step:
    """Build variant ``"<system> <precision>"``. The parent passes the shared starting weights;
    a memory child passes none and builds a fresh model (bertkit's without ``transformers``)."""
    system, precision = name.rsplit(" ", 1)
    bf16 = precision == "bf16"
    if system.startswith("hf"):
        model = copy.deepcopy(hf_init) if hf_init is not None else hf_model()
        return hf_step(model, inputs, masked_only=system == "hf-masked", bf16=bf16)
    from bertkit import BertConfig, BertForPreTraining

    if bertkit_dir is not None:
        model = BertForPreTraining.from_pretrained(bertkit_dir)
    else:
        torch.manual_seed(0)
        model = BertForPreTraining(BertConfig(**CONFIG))
    return bertkit_step(model.train(), inputs, bf16=bf16,
                        fused_adamw=system == "bertkit fused-adamw",
                        compiled=name if system == COMPILED else None)


def parity(hf_init: Any, bertkit_dir: Path, inputs: dict[str, torch.Tensor]) -> str:
    """The losses of the HF stock forward and bertkit's sparse objective on the same weights."""
    from bertkit import BertForPreTraining
    from bertkit.data.batch import Batch
    from bertkit.objectives import PreTrainingObjective

    reference = copy.deepcopy(hf_init).eval()
    objective = PreTrainingObjective(BertForPreTraining.from_pretrained(bertkit_dir)).eval()
    batch = Batch(inputs["input_ids"], inputs["token_type_ids"], inputs["attention_mask"],
                  inputs["labels"], inputs["next_sentence_label"])
    with torch.no_grad():
        expected = float(reference(**inputs).loss)
        got = float(objective(batch)[0])
    return (f"Same computation: loss on the same weights, dropout off — transformers (dense) "
            f"{expected:.6f}, bertkit (sparse) {got:.6f}, |Δ| = {abs(expected - got):.1e}")


# --------------------------------------------------------------------------------------------
# peak memory, one fresh process per variant


def proc_status_kb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return float("nan")


def memory_child(name: str, batch: int, seq: int, steps: int) -> None:
    """Runs in a fresh process: RSS after set-up, then peak RSS over set-up + ``steps`` steps."""
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    step = make_variant(name, make_batch(batch, seq), None, None)
    after_setup = proc_status_kb("VmRSS")
    for _ in range(steps):
        step()
    # VmHWM is this process image's peak; getrusage's ru_maxrss would carry the parent's over exec.
    print(json.dumps({"after_setup_mb": after_setup / 1024,
                      "peak_mb": proc_status_kb("VmHWM") / 1024}))


def measure_memory(name: str, batch: int, seq: int, steps: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--_memory-child", name, "--batch", str(batch),
               "--seq", str(seq), "--memory-steps", str(steps)]
    env = {**os.environ, "BENCH_THREADS": str(torch.get_num_threads())}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env,
                          check=False)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": proc.stderr.strip()[-300:]}


# --------------------------------------------------------------------------------------------
# main


def run(args: argparse.Namespace) -> dict[str, Any]:
    bf16_native = native_bf16()
    use_bf16 = args.bf16 == "on" or (args.bf16 == "auto" and bf16_native)
    precisions = ["fp32", "bf16"] if use_bf16 else ["fp32"]
    systems = SYSTEMS + (ABLATIONS if args.ablations else []) + ([COMPILED] if args.compile
                                                                   else [])
    names = [f"{system} {precision}" for precision in precisions for system in systems]
    inputs = make_batch(args.batch, args.seq)
    masked = int((inputs["labels"] != -100).sum())
    tokens = args.batch * args.seq

    print(f"# Pretraining step: bertkit vs transformers BertForPreTraining\n\n"
          f"torch {torch.__version__}, transformers {metadata.version('transformers')}, "
          f"{cpu_name()}, threads={torch.get_num_threads()}, native bf16: "
          f"{'yes' if bf16_native else 'no'}{'' if use_bf16 else ' (bf16 rows skipped)'}.\n"
          f"Config L={CONFIG['num_hidden_layers']} h={CONFIG['hidden_size']} "
          f"heads={CONFIG['num_attention_heads']} i={CONFIG['intermediate_size']} "
          f"V={CONFIG['vocab_size']}, batch {args.batch} x {args.seq} ({tokens} tokens, "
          f"{masked} masked), dropout on, AdamW lr {LEARNING_RATE}; {args.reps} interleaved "
          f"samples of {args.steps} step(s) per variant after 1 warm-up step, "
          f"{args.clock} clock.\n", flush=True)

    started = cpu_ticks()
    ceilings = {"fp32": measure_ceiling(torch.float32, 3)}
    if use_bf16:
        ceilings["bf16"] = measure_ceiling(torch.bfloat16, 3)

    with tempfile.TemporaryDirectory() as tmp:
        hf_init = hf_model()
        with contextlib.redirect_stderr(io.StringIO()):  # the HF shard-writing progress bar
            hf_init.save_pretrained(tmp)
        print(parity(hf_init, Path(tmp), inputs) + "\n", flush=True)
        variants = {name: make_variant(name, inputs, hf_init, Path(tmp)) for name in names}
        samples, first = interleaved(variants, args.reps, calls=args.steps,
                                     clock=CLOCKS[args.clock])
    del variants
    timing_note = load_note(started)

    memory = {}
    if not args.no_memory:
        for name in names:
            memory[name] = measure_memory(name, args.batch, args.seq, args.memory_steps)

    base = statistics.median(samples[BASELINE])
    rows = []
    for name in names:
        system, precision = name.rsplit(" ", 1)
        flops = step_flops(args.batch, args.seq, tokens if system == "hf" else masked)
        median = statistics.median(samples[name])
        rate = flops / median / 1e9
        mem = memory.get(name, {})
        hf_peak = memory.get(f"hf {precision}", {}).get("peak_mb")
        peak = mem.get("peak_mb")
        rows.append([
            name, ms_cell(samples[name], 0), f"{tokens / median:,.0f}", f"{flops / 1e9:.0f}",
            f"{rate:.0f}", f"{100 * rate / ceilings[precision]:.0f}%",
            f"**{base / median:.2f}x**" if system == "bertkit" else f"{base / median:.2f}x",
            (f"{peak:,.0f} ({mem['after_setup_mb']:,.0f})" if peak else
             mem.get("error", "–")[:60] or "–"),
            f"{peak / hf_peak:.2f}x" if peak and hf_peak else "–",
        ])
    print(f"## Training throughput and peak memory ({timing_note} during timing)\n")
    table(["variant", "ms/step median (min..max)", "tok/s", "GFLOP/step", "GFLOP/s",
           "% ceiling", "vs hf fp32", "peak RSS MB (after set-up)", "peak vs hf"], rows)
    print("GFLOP/step = 3 × (encoder + 2·R·(h² + h·V)), R = all B·S positions for `hf`, the masked "
          "ones otherwise. Ceilings (same run, best median of bert-base-shaped 4096-row "
          "F.linear): " + ", ".join(f"{p} {c:.0f} GFLOP/s" for p, c in ceilings.items())
          + ". `peak vs hf` compares with `hf` at the same precision.\n")

    target_rows = []
    for precision in precisions:
        name = f"bertkit {precision}"
        ratio = base / statistics.median(samples[name])
        paired = statistics.median(b / x for b, x in zip(samples[BASELINE], samples[name],
                                                          strict=True))
        target_rows.append([f"bertkit {precision} tok/s ≥ {TARGETS[precision]}× hf fp32",
                            f"{ratio:.2f}x (paired {paired:.2f}x)",
                            "yes" if ratio >= TARGETS[precision] else "no"])
        peak, hf_peak = (memory.get(name, {}).get("peak_mb"),
                         memory.get(f"hf {precision}", {}).get("peak_mb"))
        if peak and hf_peak:
            target_rows.append([f"bertkit {precision} peak RSS ≤ {MEMORY_TARGET}× hf {precision}",
                                f"{peak / hf_peak:.2f}x",
                                "yes" if peak / hf_peak <= MEMORY_TARGET else "no"])
        if f"{COMPILED} {precision}" in samples:
            compiled = statistics.median(samples[f"{COMPILED} {precision}"])
            target_rows.append([f"{COMPILED} {precision} vs bertkit {precision} (steady state)",
                                f"{statistics.median(samples[name]) / compiled:.2f}x "
                                f"({base / compiled:.2f}x hf fp32)", "(info)"])
        masked_ref = statistics.median(samples[f"hf-masked {precision}"])
        target_rows.append([f"bertkit {precision} vs hf-masked {precision} (reference arrangement)",
                            f"{masked_ref / statistics.median(samples[name]):.2f}x", "(info)"])
    print("## Targets (issue 3)\n")
    table(["target", "measured", "met"], target_rows)
    print("Measured = ratio of medians; paired = median over rounds of the ratio within a round "
          "(the two steps ran close in time: less sensitive to a slow spell of the host).\n")
    for name, (wall, cpu) in COMPILE_SECONDS.items():
        print(f"{name}: first step (torch.compile's compilation) {wall:.1f} s wall, {cpu:.1f} s "
              f"CPU of this process (Inductor's compile workers not counted).\n")
    if not use_bf16:
        print("bf16 rows skipped: this CPU has no native bf16 matmul (oneDNN would emulate it); "
              "pass `--bf16 on` to measure the emulation anyway.\n")
    return {"config": CONFIG, "batch": args.batch, "seq": args.seq, "masked": masked,
            "samples_s": samples, "first_step_s": first, "memory": memory,
            "ceilings_gflops": ceilings, "load": timing_note, "compile_s": COMPILE_SECONDS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7, help="interleaved samples per variant")
    parser.add_argument("--steps", type=int, default=1, help="training steps per sample")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                        help="bf16 autocast rows: auto = only with native bf16 hardware")
    parser.add_argument("--ablations", action="store_true",
                        help="add bertkit rows without vocabulary padding and with fused AdamW")
    parser.add_argument("--memory-steps", type=int, default=3,
                        help="steps each memory child runs after set-up")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS children")
    parser.add_argument("--compile", action="store_true",
                        help=f"add {COMPILED} rows: the bertkit step under torch.compile")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: "
                        "torch's own)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="cpu: this process's CPU seconds (steadier on a loaded machine "
                        "with --threads 1)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 samples, 2 memory steps")
    parser.add_argument("--json", type=Path, default=None, help="write raw samples here")
    parser.add_argument("--_memory-child", dest="memory_child", default=None,
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.batch, args.seq, args.memory_steps)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.reps, args.steps, args.memory_steps = 3, 1, 2
    if args.reps < 1 or args.steps < 1:
        parser.error("--reps and --steps must be >= 1")
    results = run(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
