"""German → English on Debian's translated package descriptions (issue 16): BLEU / chrF on the
held-out test split for (a) copy-the-source, (b) a randomly initialised encoder–decoder of the
same size, (c) the warm-started BERT2BERT (Rothe et al. 2020), same steps, data and settings.

The corpus is built by ``bertkit data ddtp`` (apt's DDTP indexes, split by description hash);
the model is the bert-tiny MLM checkpoint (``splade-tiny``, L=2 H=128) unless ``--encoder``
names another BERT directory. (b) and (c) train for the same FIXED number of steps (``--steps``)
with the same settings, so machine load changes the wall time, not the comparison; they run as
two single-threaded processes side by side (``--jobs 2``) or one after the other (``--jobs 1``).
Then each translates the test split greedily and, with ``--beams`` / ``--no-repeat-ngram-size``,
a second time with that search (the same for (b) and (c)); the table (one row per system and
decoding), sacreBLEU's signature, example translations and the cross-attention alignment of one
test sentence by (c) (PNG + HTML) are written. ``--minutes`` is only a safety cap: a model it
stopped is marked in the table. ``--rescore`` scores the models an earlier run of the same flags
left in ``--work`` again (e.g. with another decoding), keeping that run's training record.

    .venv/bin/python benchmarks/translate.py --steps 250 --work /tmp/translate
    .venv/bin/python benchmarks/translate.py --field paragraph --beams 4 --no-repeat-ngram-size 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchtools import cpu_ticks, load_note, table
from bertkit import _fileio
from bertkit.data.readers import read_pairs
from bertkit.inference.alignment import write_alignment
from bertkit.resources.artifacts import fetch
from bertkit.resources.ddtp import build_ddtp
from bertkit.runs.seq2seq import Seq2SeqSettings, evaluate_seq2seq, load_seq2seq, train_seq2seq
from bertkit.tasks.metrics.translation import copy_source_baseline

SYSTEMS = {"random": "(b) random init, same size", "warm": "(c) warm start BERT2BERT"}
RESULT = "bench.json"


def _fields(args: argparse.Namespace) -> dict[str, str]:
    return ({} if args.field == "short"
            else {"source_field": "source_paragraph", "target_field": "target_paragraph"})


def _lengths(args: argparse.Namespace) -> tuple[int, int]:
    return (64, 48) if args.field == "short" else (160, 128)


def _decodings(args: argparse.Namespace) -> dict[str, dict[str, int]]:
    """Greedy always; the ``--beams`` / ``--no-repeat-ngram-size`` search too when asked."""
    decodings: dict[str, dict[str, int]] = {"greedy": {}}
    if args.beams > 1 or args.no_repeat_ngram_size:
        name = (f"beam {args.beams}" if args.beams > 1 else "greedy") + (
            f", no-repeat {args.no_repeat_ngram_size}-gram" if args.no_repeat_ngram_size else "")
        decodings[name] = {"num_beams": args.beams,
                           "no_repeat_ngram_size": args.no_repeat_ngram_size}
    return decodings


def _decoding_dir(out: Path, decoding: str) -> Path:
    return out if decoding == "greedy" else out / ("decode-" + "".join(
        c if c.isalnum() else "-" for c in decoding))


#: What a training run records in ``bench.json`` (kept as it is by ``--rescore``).
TRAINING_RECORD = ("system", "steps", "stop_reason", "train_loss_last50", "train_wall_s",
                   "train_cpu_s")


def _train(args: argparse.Namespace, system: str, out: Path) -> dict:
    """Train one system for the fixed steps; its training record."""
    source_length, target_length = _lengths(args)
    started, cpu = time.monotonic(), time.process_time()
    settings = Seq2SeqSettings(
        train=args.work / "ddtp" / "de-en" / "train.jsonl", output_dir=out,
        encoder=args.encoder or fetch("splade-tiny", quiet=True), random=system == "random",
        max_steps=args.steps, max_minutes=args.minutes, batch_size=args.batch_size,
        learning_rate=args.lr, warmup_steps=max(1, args.steps // 10), progress=False,
        threads=args.threads, max_source_length=source_length,
        max_target_length=target_length, device="cpu", seed=args.seed, **_fields(args))
    result = train_seq2seq(settings)
    tail = result.train_losses[-50:]
    return {"system": system, "steps": result.step, "stop_reason": result.stop_reason,
            "train_loss_last50": sum(tail) / max(1, len(tail)),
            "train_wall_s": time.monotonic() - started, "train_cpu_s": time.process_time() - cpu}


def train_one(args: argparse.Namespace, system: str) -> None:
    """Train (or, with ``--rescore``, reuse the model an earlier run of the same flags
    trained in WORK) and score one system; its numbers go to ``WORK/<system>/bench.json``."""
    out = args.work / system
    if args.rescore:
        if not (out / "model.safetensors").is_file() or not (out / RESULT).is_file():
            sys.exit(f"--rescore: {out} holds no trained model and {RESULT}; run without it")
        earlier = _fileio.read_json(out / RESULT)
        record = {key: earlier[key] for key in TRAINING_RECORD}
    else:
        record = _train(args, system, out)
    started, cpu = time.monotonic(), time.process_time()
    source_length, target_length = _lengths(args)
    test = args.work / "ddtp" / "de-en" / "test.jsonl"
    scores = {name: evaluate_seq2seq(out, test, limit=args.test, device="cpu",
                                     out=_decoding_dir(out, name), max_new_tokens=target_length,
                                     max_source_length=source_length, **_fields(args), **search)
              for name, search in _decodings(args).items()}
    _fileio.write_json(out / RESULT, {**record, "eval_wall_s": time.monotonic() - started,
                                      "eval_cpu_s": time.process_time() - cpu, "scores": scores})


def _alignment(args: argparse.Namespace, records: list[dict]) -> str:
    """Draw (c)'s cross-attention for the first test translation of 4+ words."""
    record = next((r for r in records if len(r["hypothesis"].split()) >= 4),
                  next((r for r in records if r["hypothesis"].strip()), None))
    if record is None:
        return "no alignment: model (c) translated no test sentence to any word"
    model, tokenizer, _ = load_seq2seq(args.work / "warm", device="cpu")
    source_length, target_length = _lengths(args)
    written = write_alignment(model, tokenizer, record["source"], record["hypothesis"],
                              args.work / "alignment.html", args.work / "alignment.png",
                              title="bertkit cross-attention, DDTP de→en, model (c)",
                              max_source_length=source_length,
                              max_target_length=target_length)
    return "alignment of " + written.text + ": " + ", ".join(str(p) for p in written.files)


def report(args: argparse.Namespace, since: tuple[list[int], float]) -> None:
    """Print the table, the signature, the examples and write the alignment map."""
    pairs_dir = args.work / "ddtp" / "de-en"
    test = read_pairs(pairs_dir / "test.jsonl", **_fields(args))[:args.test]
    results = {name: _fileio.read_json(args.work / name / RESULT) for name in SYSTEMS}
    decodings = list(_decodings(args))
    signature = results["warm"]["scores"]["greedy"]
    lowercase = "case:lc" in signature["bleu_signature"]
    sources, targets = [p.source for p in test], [p.target for p in test]
    baseline = copy_source_baseline(sources, targets, lowercase=lowercase)
    cased = copy_source_baseline(sources, targets)
    rows = [["(a) copy the source", "-", "-", "-", "-", f"{baseline.bleu:.2f}",
             f"{baseline.chrf:.2f}"]]
    for name, label in SYSTEMS.items():
        r = results[name]
        steps = str(r["steps"]) + ("" if r["stop_reason"] == "max_steps"
                                   else f" ({r['stop_reason']})")
        for decoding in decodings:
            scores = r["scores"][decoding]
            rows.append([label, steps, f"{r['train_loss_last50']:.3f}",
                         f"{r['train_wall_s'] / 60:.1f} / {r['train_cpu_s'] / 60:.1f}",
                         decoding, f"{scores['bleu']:.2f}", f"{scores['chrf']:.2f}"])
    print(f"DDTP de→en ({args.field}): {len(read_pairs(pairs_dir / 'train.jsonl'))} training "
          f"pairs, {len(test)} held-out test pairs; lr {args.lr}, batch {args.batch_size}, "
          f"{args.threads} thread(s) per model, seed {args.seed}\n")
    table(["system", "steps", "train loss (last 50)", "train min wall / CPU", "decoding",
           "BLEU", "chrF"], rows)
    print(f"\nBLEU signature: {signature['bleu_signature']}")
    print(f"chrF signature: {signature.get('chrf_signature', '?')}")
    print(f"copy baseline, case-sensitive: BLEU {cased.bleu:.2f} chrF {cased.chrf:.2f}")
    print(f"encoder/decoder checkpoint: {args.encoder or 'splade-tiny (bert-tiny MLM)'}; "
          f"{load_note(since)}")
    records = {(name, decoding): [
        json.loads(line) for line in (_decoding_dir(args.work / name, decoding)
                                      / "predictions.jsonl").read_text(encoding="utf-8")
        .splitlines()] for name in SYSTEMS for decoding in decodings}
    print(f"\nexample translations (the first {args.examples} test pairs):")
    for index in range(min(args.examples, len(test))):
        first = records["warm", "greedy"][index]
        print(f"- source:    {first['source']}\n  reference: {first['reference']}")
        for (name, decoding), translated in records.items():
            print(f"  {SYSTEMS[name][:3]} {decoding}: {translated[index]['hypothesis']}")
    print("\n" + _alignment(args, records["warm", decodings[-1]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", type=Path, default=None,
                        help="BERT checkpoint (default: the bert-tiny MLM artifact)")
    parser.add_argument("--steps", type=int, default=250, help="fixed optimizer steps per model")
    parser.add_argument("--minutes", type=float, default=90.0, help="safety cap per model")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test", type=int, default=None, help="first N test pairs (all)")
    parser.add_argument("--examples", type=int, default=6)
    parser.add_argument("--field", choices=("short", "paragraph"), default="short")
    parser.add_argument("--beams", type=int, default=1,
                        help="also decode with this beam search (greedy is always scored)")
    parser.add_argument("--no-repeat-ngram-size", type=int, default=0,
                        help="also decode forbidding repeated n-grams of this size")
    parser.add_argument("--threads", type=int, default=1, help="per model")
    parser.add_argument("--jobs", type=int, choices=(1, 2), default=2,
                        help="train (b) and (c) side by side (2) or one after the other")
    parser.add_argument("--rescore", action="store_true",
                        help="score the models an earlier run left in --work again (other "
                             "decoding) instead of training them")
    parser.add_argument("--system", choices=tuple(SYSTEMS), default=None,
                        help=argparse.SUPPRESS)  # internal: one side of --jobs 2
    parser.add_argument("--work", type=Path, default=Path("translate-bench"))
    args = parser.parse_args()
    if args.system is not None:
        train_one(args, args.system)
        return
    since = cpu_ticks()
    data = build_ddtp(args.work / "ddtp", languages=["de"])
    print(f"DDTP de-en pairs by split: {data.counts['de-en']}", flush=True)
    if args.jobs == 1:
        for system in SYSTEMS:
            train_one(args, system)
    else:
        children = []
        for system in SYSTEMS:
            log = (args.work / f"{system}.log").open("w")
            children.append(subprocess.Popen([sys.executable, *sys.argv, "--system", system],
                                             stdout=log, stderr=subprocess.STDOUT,
                                             env={**os.environ, "OMP_NUM_THREADS":
                                                  str(args.threads)}))
        codes = [child.wait() for child in children]
        if any(codes):
            sys.exit(f"a training process failed ({codes}); see {args.work}/*.log")
    report(args, since)


if __name__ == "__main__":
    main()
