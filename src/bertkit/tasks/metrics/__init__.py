"""Evaluation metrics for fine-tuning, written to match the field's reference implementations.

Published numbers are only comparable when every corner case is decided the same way, so each
family here follows one named reference and says where it departs from it:

* **Classification / multi-label / regression** follow scikit-learn's definitions
  (``precision_recall_fscore_support``, ``matthews_corrcoef``, ``hamming_loss``) and SciPy's
  ``pearsonr`` / ``spearmanr``. Every ill-defined ratio (``0/0``) is **0.0**, as scikit-learn's
  ``zero_division="warn"`` default returns, but silently. A correlation with a constant side is
  **0.0** too (SciPy gives ``nan``), so "keep the best checkpoint by metric" stays well ordered.
* **NER** follows seqeval's *default* mode (conlleval-compatible chunking, lenient: an ``I-``
  after ``O`` or after another type starts an entity). See :func:`extract_entities` for the exact
  rules and the two places where plain-tag handling is decided.
* **Translation**: sacreBLEU itself (BLEU with its signature, chrF), an optional extra.
* **SQuAD** follows the official v1.1 and v2.0 evaluation scripts line for line, including the
  quirks of ``find_best_thresh`` (see :func:`best_threshold`).

Everything is a pure function over Python sequences or NumPy arrays; no torch, so metrics can
run in a data-loader worker, a CLI ``evaluate`` command or a notebook alike.
"""

from bertkit.data.tags import Entity, extract_entities, validate_bio, validate_iob2
from bertkit.tasks.metrics.classification import (
    PRF,
    accuracy,
    classification_report,
    confusion_matrix,
    matthews_corrcoef,
    mse,
    multilabel_metrics,
    pearson,
    precision_recall_f1,
    roc_auc,
    spearman,
)
from bertkit.tasks.metrics.entities import EntityScores, entity_scores, token_accuracy
from bertkit.tasks.metrics.squad import (
    best_threshold,
    exact_match,
    f1_score,
    normalize_answer,
    squad_evaluate,
)
from bertkit.tasks.metrics.translation import (
    TranslationScores,
    copy_source_baseline,
    detokenize,
    translation_scores,
)

__all__ = [
    "PRF",
    "Entity",
    "EntityScores",
    "TranslationScores",
    "accuracy",
    "best_threshold",
    "classification_report",
    "confusion_matrix",
    "copy_source_baseline",
    "detokenize",
    "entity_scores",
    "exact_match",
    "extract_entities",
    "f1_score",
    "matthews_corrcoef",
    "mse",
    "multilabel_metrics",
    "normalize_answer",
    "pearson",
    "precision_recall_f1",
    "roc_auc",
    "spearman",
    "squad_evaluate",
    "token_accuracy",
    "translation_scores",
    "validate_bio",
    "validate_iob2",
]
