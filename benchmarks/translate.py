"""German → English on Debian's translated package descriptions (issue 16): BLEU / chrF on the
held-out test split for (a) copy-the-source, (b) a randomly initialised encoder–decoder of the
same size, (c) the warm-started BERT2BERT (Rothe et al. 2020), same steps, data and budget.

The corpus is built by ``bertkit data ddtp`` (apt's DDTP indexes, split by description hash);
the model is the bert-tiny MLM checkpoint (``splade-tiny``, L=2 H=128) unless ``--encoder``
names another BERT directory. Both models train with the same settings and the same step
budget (``--steps``; ``--minutes`` caps each), then translate the first ``--test`` test pairs
greedily. The issue's full runs are 60 minutes per model; a short budget measures the trend
only — the load note beside the table says how busy the machine was.

    .venv/bin/python benchmarks/translate.py --steps 400 --minutes 3 --test 300
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from benchtools import cpu_ticks, load_note, table
from bertkit.data.readers import read_pairs
from bertkit.resources.artifacts import fetch
from bertkit.resources.ddtp import build_ddtp
from bertkit.runs.seq2seq import Seq2SeqSettings, evaluate_seq2seq, train_seq2seq
from bertkit.tasks.metrics.translation import copy_source_baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", type=Path, default=None,
                        help="BERT checkpoint (default: the bert-tiny MLM artifact)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--minutes", type=float, default=3.0, help="cap per model")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--train", type=int, default=None, help="first N training pairs")
    parser.add_argument("--test", type=int, default=300, help="first N test pairs")
    parser.add_argument("--field", choices=("short", "paragraph"), default="short")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="bertkit-translate-"))
    data = build_ddtp(work / "ddtp", languages=["de"])
    pairs_dir = work / "ddtp" / "de-en"
    fields = ({} if args.field == "short"
              else {"source_field": "source_paragraph", "target_field": "target_paragraph"})
    train_file = pairs_dir / "train.jsonl"
    if args.train:
        lines = train_file.read_text(encoding="utf-8").splitlines()[:args.train]
        train_file = work / "train-subset.jsonl"
        train_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    encoder = args.encoder or fetch("splade-tiny", quiet=True)
    test = read_pairs(pairs_dir / "test.jsonl", **fields)[:args.test]
    print(f"DDTP de-en: {data.counts['de-en']} pairs by split; training on "
          f"{len(read_pairs(train_file, **fields))}, testing on {len(test)} ({args.field})")

    since = cpu_ticks()
    rows, examples = [], {}
    baseline_cased = copy_source_baseline([p.source for p in test], [p.target for p in test])
    lowercase = None
    for name, random in (("(b) random init", True), ("(c) warm start BERT2BERT", False)):
        out = work / ("random" if random else "warm")
        settings = Seq2SeqSettings(
            train=train_file, output_dir=out, encoder=encoder, random=random,
            max_steps=args.steps, max_minutes=args.minutes, batch_size=args.batch_size,
            learning_rate=args.lr, warmup_steps=min(100, args.steps // 10), progress=False,
            threads=args.threads, max_source_length=64 if args.field == "short" else 160,
            max_target_length=48 if args.field == "short" else 128, device="cpu", **fields)
        result = train_seq2seq(settings)
        scores = evaluate_seq2seq(out, pairs_dir / "test.jsonl", limit=args.test,
                                  device="cpu", out=out, **fields,
                                  max_new_tokens=settings.max_target_length)
        lowercase = "case:lc" in scores["bleu_signature"]
        last = sum(result.train_losses[-20:]) / max(1, len(result.train_losses[-20:]))
        rows.append([name, str(result.step), f"{last:.3f}", f"{scores['bleu']:.2f}",
                     f"{scores['chrf']:.2f}"])
        records = [json.loads(line) for line in
                   (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
        examples[name] = records[:5]
        signature = scores["bleu_signature"]
    baseline = copy_source_baseline([p.source for p in test], [p.target for p in test],
                                    lowercase=bool(lowercase))
    rows.insert(0, ["(a) copy the source", "-", "-", f"{baseline.bleu:.2f}",
                    f"{baseline.chrf:.2f}"])
    table(["system", "steps", "train loss (last 20)", "BLEU", "chrF"], rows)
    print(f"\nBLEU signature: {signature}")
    print(f"copy baseline, case-sensitive: BLEU {baseline_cased.bleu:.2f} chrF "
          f"{baseline_cased.chrf:.2f}")
    print(f"encoder/decoder checkpoint: {encoder}; {load_note(since)}")
    print("\nexample translations (first test pairs):")
    first = next(iter(examples.values()))
    for index, record in enumerate(first):
        print(f"- source:    {record['source']}\n  reference: {record['reference']}")
        for name, records in examples.items():
            print(f"  {name}: {records[index]['hypothesis']}")


if __name__ == "__main__":
    main()
