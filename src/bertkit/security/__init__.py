"""Security audits of an encoder model's own internals (DESIGN.md: the ``security`` layer).

- :mod:`~bertkit.security.confidence`: max-softmax / entropy / energy / Mahalanobis scores,
  temperature scaling and ECE, AUROC and FPR@95 %TPR, thresholds at a stated FPR.
- :mod:`~bertkit.security.membership`: pseudo-log-likelihood membership inference (loss and
  likelihood-ratio attacks), AUC and TPR at 1 % FPR.
- :mod:`~bertkit.security.embedding_shift`: representation-shift detection of modified inputs
  with thresholds calibrated on clean data, and leave-one-out token attribution.
- :mod:`~bertkit.security.provenance`: SHA-256 manifests of checkpoints and their verification
  (re-exported from :mod:`bertkit.checkpoints.provenance`, which the runners write with).

Submodules are imported on use, so ``import bertkit.security`` stays cheap.
"""
