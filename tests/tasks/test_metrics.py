"""Metric tests against hand-computed values.

Every expected number is written out with its arithmetic in a comment, so a test fails when the
code drifts from the definition, not merely when it changes. Reference libraries (scikit-learn,
SciPy, seqeval) are used only in the cross-check tests at the end, which skip when absent.
"""

from __future__ import annotations

import math
import random
import warnings

import numpy as np
import pytest

from bertkit.errors import BertkitError, DataFormatError, UsageError
from bertkit.tasks.metrics import (
    PRF,
    Entity,
    accuracy,
    best_threshold,
    classification_report,
    confusion_matrix,
    entity_scores,
    exact_match,
    extract_entities,
    f1_score,
    matthews_corrcoef,
    mse,
    multilabel_metrics,
    normalize_answer,
    pearson,
    precision_recall_f1,
    roc_auc,
    spearman,
    squad_evaluate,
    token_accuracy,
    validate_bio,
    validate_iob2,
)

approx = pytest.approx


def assert_prf(scores: PRF, precision: float, recall: float, f1: float, support: int) -> None:
    assert scores.precision == approx(precision)
    assert scores.recall == approx(recall)
    assert scores.f1 == approx(f1)
    assert scores.support == support


# ============================================================================================
# Classification
# ============================================================================================

# Shared 3-class example.
#   index:   0  1  2  3  4  5
#   true:    0  0  0  1  1  2
#   pred:    0  0  1  1  2  2
# label 0: tp=2 (idx 0,1), predicted 2, true 3 -> P=1,   R=2/3, F=2*1*(2/3)/(5/3) = 0.8
# label 1: tp=1 (idx 3),   predicted 2, true 2 -> P=1/2, R=1/2, F=1/2
# label 2: tp=1 (idx 5),   predicted 2, true 1 -> P=1/2, R=1,   F=2*(1/2)/(3/2) = 2/3
Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 1, 1, 2, 2]


def test_accuracy() -> None:
    # 4 of 6 equal (idx 0, 1, 3, 5)
    assert accuracy(Y_TRUE, Y_PRED) == approx(4 / 6)
    assert accuracy(["a", "b"], ["a", "b"]) == 1.0


def test_confusion_matrix_rows_true_columns_pred() -> None:
    # (true, pred) pairs: (0,0) x2, (0,1), (1,1), (1,2), (2,2); label 3 never occurs
    expected = np.array(
        [
            [2, 1, 0, 0],
            [0, 1, 1, 0],
            [0, 0, 1, 0],
            [0, 0, 0, 0],
        ]
    )
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED, num_labels=4), expected)


def test_confusion_matrix_rejects_out_of_range_ids() -> None:
    with pytest.raises(UsageError, match=r"label id 3, outside 0\.\.2"):
        confusion_matrix([0, 1], [0, 3], num_labels=3)
    with pytest.raises(UsageError, match="integer label ids"):
        confusion_matrix(["a"], ["a"], num_labels=1)


def test_precision_recall_f1_per_label() -> None:
    per_label = precision_recall_f1(Y_TRUE, Y_PRED, average=None)
    assert isinstance(per_label, dict)
    assert list(per_label) == [0, 1, 2]
    assert_prf(per_label[0], 1.0, 2 / 3, 0.8, 3)
    assert_prf(per_label[1], 0.5, 0.5, 0.5, 2)
    assert_prf(per_label[2], 0.5, 1.0, 2 / 3, 1)


def test_precision_recall_f1_macro_micro_weighted() -> None:
    # macro: P = (1 + 1/2 + 1/2)/3 = 2/3; R = (2/3 + 1/2 + 1)/3 = 13/18;
    #        F = (0.8 + 0.5 + 2/3)/3 = (24 + 15 + 20)/90 = 59/90 (mean of per-label F1,
    #        NOT 2PR/(P+R) of the means, which would be 0.6964)
    macro = precision_recall_f1(Y_TRUE, Y_PRED, average="macro")
    assert isinstance(macro, PRF)
    assert_prf(macro, 2 / 3, 13 / 18, 59 / 90, 6)
    # micro: tp=4, predicted=6, true=6 -> P = R = F = 4/6 (= accuracy for single-label data)
    assert_prf(precision_recall_f1(Y_TRUE, Y_PRED, average="micro"), 4 / 6, 4 / 6, 4 / 6, 6)
    # weighted by support 3, 2, 1 (sum 6):
    #   P = (3*1 + 2*0.5 + 1*0.5)/6 = 4.5/6 = 0.75
    #   R = (3*2/3 + 2*0.5 + 1*1)/6 = 4/6
    #   F = (3*0.8 + 2*0.5 + 1*2/3)/6 = (2.4 + 1 + 2/3)/6 = 61/90
    weighted = precision_recall_f1(Y_TRUE, Y_PRED, average="weighted")
    assert_prf(weighted, 0.75, 4 / 6, 61 / 90, 6)


def test_precision_recall_f1_label_subset() -> None:
    # labels=[0, 1]: micro pools only those: tp = 2 + 1 = 3, predicted = 2 + 2 = 4,
    # true = 3 + 2 = 5 -> P = 3/4, R = 3/5, F = 2*(0.45)/(1.35) = 2/3
    assert_prf(precision_recall_f1(Y_TRUE, Y_PRED, "micro", labels=[0, 1]), 0.75, 0.6, 2 / 3, 5)
    # label order follows `labels`
    per_label = precision_recall_f1(Y_TRUE, Y_PRED, None, labels=[2, 0])
    assert isinstance(per_label, dict)
    assert list(per_label) == [2, 0]


def test_zero_division_is_zero() -> None:
    # true [0, 1, 1], pred [0, 0, 0]
    # label 0: tp=1, predicted 3, true 1 -> P=1/3, R=1, F=2*(1/3)/(4/3) = 1/2
    # label 1: never predicted -> P = 0/0 -> 0, R = 0/2 = 0, F = 0
    per_label = precision_recall_f1([0, 1, 1], [0, 0, 0], average=None)
    assert isinstance(per_label, dict)
    assert_prf(per_label[1], 0.0, 0.0, 0.0, 2)
    # macro F = (1/2 + 0)/2 = 1/4
    assert precision_recall_f1([0, 1, 1], [0, 0, 0]).f1 == approx(0.25)  # type: ignore[union-attr]
    # a listed label with no true and no prediction still counts, as 0: F = (1/2 + 0 + 0)/3
    macro = precision_recall_f1([0, 1, 1], [0, 0, 0], labels=[0, 1, 2])
    assert isinstance(macro, PRF)
    assert macro.f1 == approx(1 / 6)


def test_string_labels_sorted() -> None:
    # true [dog, cat, cat], pred [dog, dog, cat]; labels sorted -> cat, dog
    # cat: tp 1, predicted 1, true 2 -> P 1, R 1/2, F 2/3
    # dog: tp 1, predicted 2, true 1 -> P 1/2, R 1, F 2/3
    per_label = precision_recall_f1(["dog", "cat", "cat"], ["dog", "dog", "cat"], average=None)
    assert isinstance(per_label, dict)
    assert list(per_label) == ["cat", "dog"]
    assert_prf(per_label["cat"], 1.0, 0.5, 2 / 3, 2)
    assert_prf(per_label["dog"], 0.5, 1.0, 2 / 3, 1)


def test_mcc_binary() -> None:
    # true [1,1,1,0], pred [1,0,1,1]: TP=2, FN=1, FP=1, TN=0
    # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (0 - 1)/sqrt(3*3*1*1) = -1/3
    assert matthews_corrcoef([1, 1, 1, 0], [1, 0, 1, 1]) == approx(-1 / 3)
    assert matthews_corrcoef([0, 1, 0, 1], [0, 1, 0, 1]) == approx(1.0)
    assert matthews_corrcoef([0, 1, 0, 1], [1, 0, 1, 0]) == approx(-1.0)


def test_mcc_multiclass() -> None:
    # Y_TRUE / Y_PRED: true counts t = [3, 2, 1], predicted counts p = [2, 2, 2], correct c = 4,
    # samples s = 6.
    #   cov(yt, yp) = c*s - t.p = 24 - (6 + 4 + 2) = 12
    #   cov(yp, yp) = s^2 - p.p = 36 - 12 = 24
    #   cov(yt, yt) = s^2 - t.t = 36 - (9 + 4 + 1) = 22
    #   MCC = 12 / sqrt(24 * 22) = 12 / sqrt(528) = 0.522232...
    assert matthews_corrcoef(Y_TRUE, Y_PRED) == approx(12 / math.sqrt(528))


def test_mcc_degenerate_is_zero() -> None:
    # constant prediction: cov(yp, yp) = s^2 - s^2 = 0 -> 0.0 by convention
    assert matthews_corrcoef([0, 1, 2], [1, 1, 1]) == 0.0
    # a single class on both sides: both factors 0
    assert matthews_corrcoef([1, 1], [1, 1]) == 0.0


def test_classification_report_keys_and_values() -> None:
    report = classification_report(Y_TRUE, Y_PRED, names=["neg", "neu", "pos"])
    assert list(report) == ["neg", "neu", "pos", "accuracy", "micro avg", "macro avg",
                            "weighted avg"]  # fmt: skip
    assert report["neg"] == approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert report["accuracy"] == approx(4 / 6)
    assert report["macro avg"]["f1"] == approx(59 / 90)
    with pytest.raises(UsageError, match="names has 2 entries but there are 3 labels"):
        classification_report(Y_TRUE, Y_PRED, names=["a", "b"])


def test_classification_input_errors() -> None:
    with pytest.raises(UsageError, match="y_true has 2 items but y_pred has 1"):
        accuracy([0, 1], [0])
    with pytest.raises(UsageError, match="no samples"):
        precision_recall_f1([], [])
    with pytest.raises(UsageError, match="average must be"):
        precision_recall_f1([0], [0], average="samples")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="y_true holds number labels but y_pred holds text"):
        accuracy([0, 1], ["0", "1"])
    with pytest.raises(UsageError, match="mixed types"):
        precision_recall_f1(np.array([0, "a"], dtype=object), [0, "a"], average=None)
    # every metric error is a BertkitError, so the CLI can print it in one line
    assert issubclass(UsageError, BertkitError)


# ============================================================================================
# Multi-label
# ============================================================================================


def test_multilabel_metrics() -> None:
    y_true = [[1, 0, 1], [0, 1, 0], [1, 1, 0]]
    y_pred = [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    # subset accuracy: only row 1 is exactly right -> 1/3
    # hamming: wrong cells (0,2), (2,1), (2,2) -> 3/9
    # per label (columns):
    #   col 0: true [1,0,1] pred [1,0,1] -> tp 2, pred 2, true 2 -> P 1, R 1,   F 1
    #   col 1: true [0,1,1] pred [0,1,0] -> tp 1, pred 1, true 2 -> P 1, R 1/2, F 2/3
    #   col 2: true [1,0,0] pred [0,0,1] -> tp 0, pred 1, true 1 -> P 0, R 0,   F 0
    # micro: tp 3, pred 4, true 5 -> P 3/4, R 3/5, F 2*(0.45)/1.35 = 2/3
    # macro: P (1+1+0)/3 = 2/3, R (1+1/2+0)/3 = 1/2, F (1+2/3+0)/3 = 5/9
    scores = multilabel_metrics(y_true, y_pred)
    assert scores == approx(
        {
            "subset_accuracy": 1 / 3,
            "hamming_loss": 3 / 9,
            "micro_precision": 0.75,
            "micro_recall": 0.6,
            "micro_f1": 2 / 3,
            "macro_precision": 2 / 3,
            "macro_recall": 0.5,
            "macro_f1": 5 / 9,
        }
    )


def test_multilabel_empty_label_counts_as_zero_in_macro() -> None:
    # col 0 perfect (F 1), col 1 never true nor predicted (0/0 -> F 0) -> macro F = 1/2;
    # micro ignores the empty column: tp 1, pred 1, true 1 -> 1
    scores = multilabel_metrics([[1, 0], [0, 0]], [[1, 0], [0, 0]])
    assert scores["macro_f1"] == approx(0.5)
    assert scores["micro_f1"] == approx(1.0)
    assert scores["subset_accuracy"] == 1.0
    assert scores["hamming_loss"] == 0.0


def test_multilabel_rejects_probabilities_and_shape_mismatch() -> None:
    with pytest.raises(UsageError, match="0/1 indicators"):
        multilabel_metrics([[1, 0]], [[0.7, 0.2]])
    with pytest.raises(UsageError, match=r"y_true \(1, 2\) and y_pred \(1, 3\)"):
        multilabel_metrics([[1, 0]], [[1, 0, 0]])


# ============================================================================================
# Regression
# ============================================================================================


def test_mse() -> None:
    # errors 0, -2, 3 -> (0 + 4 + 9)/3 = 13/3
    assert mse([1, 2, 3], [1, 4, 0]) == approx(13 / 3)


def test_pearson() -> None:
    # x = [1,2,3,4] (mean 2.5): dx = [-1.5,-0.5,0.5,1.5], sum dx^2 = 5
    # y = [2,4,5,9] (mean 5):   dy = [-3,-1,0,4],         sum dy^2 = 26
    # sum dx*dy = 4.5 + 0.5 + 0 + 6 = 11 -> r = 11/sqrt(5*26) = 11/sqrt(130) = 0.964764...
    assert pearson([1, 2, 3, 4], [2, 4, 5, 9]) == approx(11 / math.sqrt(130))
    assert pearson([1, 2, 3], [3, 2, 1]) == approx(-1.0)


def test_spearman_with_ties_uses_average_ranks() -> None:
    # x = [1,2,2,3] -> ranks [1, 2.5, 2.5, 4] (the tied 2s share ranks 2 and 3)
    # y = [1,3,2,4] -> ranks [1, 3, 2, 4]; both rank means 2.5
    # dx = [-1.5,0,0,1.5] (sum sq 4.5), dy = [-1.5,0.5,-0.5,1.5] (sum sq 5)
    # sum dx*dy = 2.25 + 0 + 0 + 2.25 = 4.5 -> rho = 4.5/sqrt(4.5*5) = 3/sqrt(10) = 0.948683...
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == approx(3 / math.sqrt(10))
    # monotone but not linear: ranks identical -> 1 (Pearson would be < 1)
    assert spearman([1, 2, 3], [1, 10, 100]) == approx(1.0)
    assert pearson([1, 2, 3], [1, 10, 100]) < 0.99


def test_correlation_with_constant_side_is_zero() -> None:
    assert pearson([1.0, 2.0, 3.0], [0.1, 0.1, 0.1]) == 0.0
    assert spearman([5, 5, 5], [1, 2, 3]) == 0.0


def test_roc_auc_counts_ranked_pairs_and_ties_half() -> None:
    # positives score 0.9 and 0.4, negatives 0.4 and 0.1: of the 4 (positive, negative)
    # pairs, 0.9 beats both, 0.4 beats 0.1 and ties 0.4 (half) -> (2 + 1 + 0.5) / 4
    assert roc_auc([1, 1, 0, 0], [0.9, 0.4, 0.4, 0.1]) == approx(3.5 / 4)
    assert roc_auc([0, 1], [0.0, 1.0]) == 1.0 and roc_auc([1, 0], [0.0, 1.0]) == 0.0
    assert roc_auc([0, 1, 0, 1], [5.0, 5.0, 5.0, 5.0]) == 0.5  # no ranking, no skill


def test_roc_auc_refuses_one_class_and_other_labels() -> None:
    with pytest.raises(UsageError, match="both classes"):
        roc_auc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(UsageError, match="0/1"):
        roc_auc([0, 2, 1], [0.1, 0.2, 0.3])


def test_regression_rejects_nan() -> None:
    with pytest.raises(UsageError, match="NaN"):
        pearson([1.0, float("nan")], [1.0, 2.0])


# ============================================================================================
# NER: entity extraction (seqeval default mode; end indices EXCLUSIVE)
# ============================================================================================


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        # plain IOB2
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
        # entity at the very end of the sentence is closed
        (["O", "B-LOC", "I-LOC"], [("LOC", 1, 3)]),
        # I- without B- starts an entity (at sentence start and after O)
        (["I-PER", "I-PER", "O", "I-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
        # I- of another type ends the current entity and starts a new one
        (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 3)]),
        # B- always starts, even right after an entity of the same type
        (["B-PER", "I-PER", "B-PER"], [("PER", 0, 2), ("PER", 2, 3)]),
        # IOB1: B- only separates adjacent same-type entities
        (["I-PER", "I-PER", "B-PER", "O"], [("PER", 0, 2), ("PER", 2, 3)]),
        # types split at the FIRST hyphen (WNUT's geo-loc)
        (["B-geo-loc", "I-geo-loc"], [("geo-loc", 0, 2)]),
        # BIOES as seqeval reads it: S is one token; E closes; E after E starts a new entity
        (["S-LOC", "B-PER", "E-PER", "E-PER"], [("LOC", 0, 1), ("PER", 1, 3), ("PER", 3, 4)]),
        # plain tags = conlleval -r: one entity per token
        (["PER", "PER", "O"], [("PER", 0, 1), ("PER", 1, 2)]),
        # bare prefixes carry the empty type, reported as "_"
        (["B", "I", "O"], [("_", 0, 2)]),
        # an I after O starts an entity even when the types agree (bare I and O both type "_")
        (["O", "I", "I"], [("_", 1, 3)]),
        ([], []),
        (["O", "O"], []),
    ],
)
def test_extract_entities(tags: list[str], expected: list[tuple[str, int, int]]) -> None:
    entities = extract_entities(tags)
    assert entities == expected
    assert all(isinstance(e, Entity) for e in entities)


def test_entity_span_slices_tokens() -> None:
    tokens = ["Ada", "Lovelace", "met", "Babbage"]
    entity = extract_entities(["B-PER", "I-PER", "O", "B-PER"])[0]
    assert tokens[entity.start : entity.end] == ["Ada", "Lovelace"]


# ============================================================================================
# NER: entity-level scores
# ============================================================================================


def test_entity_scores_exact_match() -> None:
    tags = [["B-PER", "I-PER", "O", "B-LOC"]]
    scores = entity_scores(tags, tags)
    assert_prf(scores.micro, 1.0, 1.0, 1.0, 2)
    assert_prf(scores.per_type["PER"], 1.0, 1.0, 1.0, 1)
    assert_prf(scores.per_type["LOC"], 1.0, 1.0, 1.0, 1)


def test_entity_scores_partial_span_and_type_mismatch() -> None:
    true = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG"]]
    pred = [["B-PER", "O", "O", "B-LOC", "O", "B-MISC"]]
    # gold: PER[0,2) LOC[3,4) ORG[5,6); predicted: PER[0,1) LOC[3,4) MISC[5,6)
    # PER: wrong boundary -> 1 FP and 1 FN; ORG vs MISC: same span, wrong type -> FN + FP
    # micro: tp 1 (LOC), predicted 3, gold 3 -> P = R = F = 1/3
    scores = entity_scores(true, pred)
    assert_prf(scores.micro, 1 / 3, 1 / 3, 1 / 3, 3)
    assert list(scores.per_type) == ["LOC", "MISC", "ORG", "PER"]  # sorted union of types
    assert_prf(scores.per_type["LOC"], 1.0, 1.0, 1.0, 1)
    assert_prf(scores.per_type["MISC"], 0.0, 0.0, 0.0, 0)  # predicted only: P 0/1, R 0/0 -> 0
    assert_prf(scores.per_type["ORG"], 0.0, 0.0, 0.0, 1)  # never predicted: P 0/0 -> 0
    assert_prf(scores.per_type["PER"], 0.0, 0.0, 0.0, 1)  # P 0/1, R 0/1
    # macro over the 4 types (MISC included): (1 + 0 + 0 + 0)/4 = 1/4 for P, R and F
    assert_prf(scores.macro, 0.25, 0.25, 0.25, 3)
    # weighted by support LOC 1, MISC 0, ORG 1, PER 1: (1*1)/3 = 1/3
    assert_prf(scores.weighted, 1 / 3, 1 / 3, 1 / 3, 3)


def test_entity_scores_i_without_b_counts_as_entity() -> None:
    # predicted "O I-PER I-PER" is the entity PER[1,3) in default mode: it matches gold
    scores = entity_scores([["O", "B-PER", "I-PER"]], [["O", "I-PER", "I-PER"]])
    assert_prf(scores.micro, 1.0, 1.0, 1.0, 1)


def test_entity_scores_entity_at_sequence_end() -> None:
    # gold LOC[2,4) ends the sentence; predicted LOC[2,3) + LOC[3,4) (B restarts) -> tp 0
    # P = 0/2, R = 0/1 -> all 0
    scores = entity_scores([["O", "O", "B-LOC", "I-LOC"]], [["O", "O", "B-LOC", "B-LOC"]])
    assert_prf(scores.micro, 0.0, 0.0, 0.0, 1)
    # and the same span predicted right is found even though no O follows it
    scores = entity_scores([["O", "O", "B-LOC", "I-LOC"]], [["O", "O", "B-LOC", "I-LOC"]])
    assert_prf(scores.micro, 1.0, 1.0, 1.0, 1)


def test_entity_scores_empty_predictions() -> None:
    # no predicted entity: P = 0/0 -> 0 by convention, R = 0/2 = 0, F = 0
    scores = entity_scores([["B-PER", "O", "B-LOC"]], [["O", "O", "O"]])
    assert_prf(scores.micro, 0.0, 0.0, 0.0, 2)
    assert_prf(scores.macro, 0.0, 0.0, 0.0, 2)
    # only spurious predictions: P = 0/1, R = 0/0 -> 0; support 0 makes the weighted mean
    # 0/0 as well -> 0
    scores = entity_scores([["O", "O"]], [["B-PER", "O"]])
    assert_prf(scores.per_type["PER"], 0.0, 0.0, 0.0, 0)
    assert_prf(scores.micro, 0.0, 0.0, 0.0, 0)
    assert_prf(scores.weighted, 0.0, 0.0, 0.0, 0)
    # nothing anywhere: every score 0, no types
    scores = entity_scores([["O"]], [["O"]])
    assert scores.per_type == {}
    assert_prf(scores.micro, 0.0, 0.0, 0.0, 0)
    assert_prf(scores.macro, 0.0, 0.0, 0.0, 0)


def test_entity_scores_never_cross_sentences() -> None:
    # "O B-PER | I-PER O": joined, gold would be one entity over the boundary; per sentence it
    # is PER[1,2) in s0 and (I- after sentence start) PER[0,1) in s1 -> both predicted -> F 1
    true = [["O", "B-PER"], ["I-PER", "O"]]
    pred = [["O", "B-PER"], ["B-PER", "O"]]
    assert_prf(entity_scores(true, pred).micro, 1.0, 1.0, 1.0, 2)
    # the same span in two sentences is two entities: tp 1, predicted 1, gold 2
    # -> P 1, R 1/2, F 2/3
    assert_prf(entity_scores([["B-PER"], ["B-PER"]], [["B-PER"], ["O"]]).micro,
               1.0, 0.5, 2 / 3, 2)  # fmt: skip


def test_entity_scores_as_dict() -> None:
    report = entity_scores([["B-PER"]], [["B-PER"]]).as_dict()
    assert list(report) == ["PER", "micro avg", "macro avg", "weighted avg"]
    assert report["micro avg"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}


def test_entity_scores_input_errors() -> None:
    with pytest.raises(UsageError, match="list of sentences"):
        entity_scores(["B-PER", "O"], ["B-PER", "O"])
    with pytest.raises(UsageError, match="sentence 1: 2 gold tags but 1 predicted"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(UsageError, match="2 gold sentences but 1 predicted"):
        entity_scores([["O"], ["O"]], [["O"]])


def test_token_accuracy() -> None:
    # 4 tokens, only s1[0] differs (I-PER vs B-PER) -> 3/4
    assert token_accuracy([["O", "B-PER"], ["I-PER", "O"]], [["O", "B-PER"], ["B-PER", "O"]]) == (
        approx(0.75)
    )


# ============================================================================================
# NER: tag validation
# ============================================================================================


def test_validate_bio_accepts_bio_and_iob1() -> None:
    validate_bio(["O", "B-PER", "I-PER", "I-LOC", "B-geo-loc"])
    validate_bio(["O", "I-PER"])  # form only: IOB1 passes
    validate_bio([])


@pytest.mark.parametrize("bad", ["E-PER", "S-LOC", "B-", "PER", "o", "b-PER", "", "I-"])
def test_validate_bio_rejects_malformed(bad: str) -> None:
    with pytest.raises(DataFormatError, match="expected O, B-TYPE or I-TYPE"):
        validate_bio(["O", bad])


def test_validate_bio_points_at_path_and_line() -> None:
    # tags[0] is on line 10, so the bad tags[2] is on line 12
    with pytest.raises(DataFormatError) as info:
        validate_bio(["O", "B-PER", "X-PER"], path="train.conll", line=10)
    assert str(info.value).startswith("train.conll:12: tag 'X-PER'")
    assert info.value.line == 12
    # without a line number the message names the token index
    with pytest.raises(DataFormatError, match="token 1: tag 'BAD'"):
        validate_bio(["O", "BAD"])


def test_validate_iob2_requires_b_first() -> None:
    validate_iob2(["B-PER", "I-PER", "I-PER", "O", "B-LOC"])
    with pytest.raises(DataFormatError, match="'I-PER' follows 'O'") as info:
        validate_iob2(["O", "I-PER"], path="dev.conll", line=5)
    assert info.value.line == 6
    with pytest.raises(DataFormatError, match="'I-LOC' follows 'B-PER'"):
        validate_iob2(["B-PER", "I-LOC"])
    with pytest.raises(DataFormatError, match="token 0: tag 'I-PER' follows 'O'"):
        validate_iob2(["I-PER"])


# ============================================================================================
# SQuAD: normalisation, EM, F1
# ============================================================================================


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # lower -> "the quick, brown fox!" -> drop , ! -> drop "the" -> collapse spaces
        ("The Quick, Brown Fox!", "quick brown fox"),
        ("an apple a day", "apple day"),
        ("a", ""),
        # articles only as whole words
        ("theatre Anne", "theatre anne"),
        # punctuation goes first: "the-end" -> "theend" (no longer the article)
        ("the-end", "theend"),
        ("A.B.C.", "abc"),
        ("1,000", "1000"),
        # Unicode: lower-casing works, only ASCII punctuation is removed
        ("Zürich", "zürich"),
        ("«Paris»", "«paris»"),
        # the article is replaced by a SPACE, which survives between non-space characters
        ("«the»", "« »"),
        ("Ça va — bien", "ça va — bien"),
        # \b is Unicode-aware: é is a word character, so "theé" is one word
        ("theé", "theé"),
        # ’ (U+2019) is not string.punctuation but is a word boundary: "the" after it goes
        ("l’the", "l’"),
        # str.split() splits on NBSP and other Unicode whitespace
        ("New\u00a0York\t\n City", "new york city"),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_match() -> None:
    assert exact_match("The Eiffel Tower.", "eiffel tower") == 1.0
    assert exact_match("Eiffel", "eiffel tower") == 0.0
    assert exact_match("", "the") == 1.0  # both normalise to ""


def test_f1_token_overlap() -> None:
    # pred "the cat sat on the mat" -> [cat, sat, on, mat]; gold "a cat on a mat" -> [cat, on,
    # mat]; common 3 -> P 3/4, R 3/3 -> F = 2*(3/4)/(7/4) = 6/7
    assert f1_score("the cat sat on the mat", "a cat on a mat") == approx(6 / 7)
    # bag overlap: common = min(3, 1) = 1 -> P 1/3, R 1/2 -> F = 2*(1/6)/(5/6) = 2/5
    assert f1_score("cat cat cat", "cat dog") == approx(0.4)
    assert f1_score("Paris", "London") == 0.0


def test_f1_empty_answers_v2_and_v1() -> None:
    # v2.0: either side empty -> 1 iff both are
    assert f1_score("", "") == 1.0
    assert f1_score("The", "") == 1.0  # "the" normalises to ""
    assert f1_score("Paris", "") == 0.0
    assert f1_score("", "Paris") == 0.0
    # v1.1: no shared token -> 0, even when both are empty
    assert f1_score("", "", version="1.1") == 0.0


# ============================================================================================
# SQuAD: evaluation
# ============================================================================================


def squad_json() -> dict:
    """A SQuAD 2.0-shaped file: 2 answerable questions (q1 with 3 golds), 2 unanswerable."""
    qas = [
        {
            "id": "q1",
            "question": "Who won?",
            "answers": [
                {"text": "Denver Broncos", "answer_start": 0},
                {"text": "the Denver Broncos", "answer_start": 0},
                {"text": "Broncos", "answer_start": 7},
            ],
        },
        {
            "id": "q2",
            "question": "Where?",
            "answers": [{"text": "Santa Clara, California", "answer_start": 30}],
        },
        {"id": "q3", "question": "Why?", "answers": [], "is_impossible": True},
        {"id": "q4", "question": "When?", "answers": [], "is_impossible": True},
    ]
    paragraph = {"context": "…", "qas": qas}
    return {"version": "v2.0", "data": [{"title": "SB50", "paragraphs": [paragraph]}]}


PREDICTIONS = {"q1": "Broncos!", "q2": "Santa Clara", "q3": "", "q4": "Levi's Stadium"}
# Raw per-question scores (max over golds):
#   q1 "Broncos!" -> "broncos" == gold "Broncos"            EM 1, F1 1
#   q2 [santa, clara] vs [santa, clara, california]          EM 0, F1 2*1*(2/3)/(5/3) = 0.8
#   q3 unanswerable, predicted ""                            EM 1, F1 1
#   q4 unanswerable, predicted an answer                     EM 0, F1 0


def test_squad_evaluate_has_and_no_answer_splits() -> None:
    result = squad_evaluate(squad_json(), PREDICTIONS)
    assert result == approx(
        {
            "exact": 100 * (1 + 0 + 1 + 0) / 4,  # 50
            "f1": 100 * (1 + 0.8 + 1 + 0) / 4,  # 70
            "total": 4,
            "HasAns_exact": 100 * (1 + 0) / 2,  # 50
            "HasAns_f1": 100 * (1 + 0.8) / 2,  # 90
            "HasAns_total": 2,
            "NoAns_exact": 100 * (1 + 0) / 2,  # 50
            "NoAns_f1": 100 * (1 + 0) / 2,  # 50
            "NoAns_total": 2,
            "missing": 0,
        }
    )


def test_squad_evaluate_accepts_data_list_and_answer_mapping() -> None:
    expected = squad_evaluate(squad_json(), PREDICTIONS)
    assert squad_evaluate(squad_json()["data"], PREDICTIONS) == expected
    answers = {
        "q1": ["Denver Broncos", "the Denver Broncos", "Broncos"],
        "q2": ["Santa Clara, California"],
        "q3": [],
        "q4": [],
    }
    assert squad_evaluate(answers, PREDICTIONS) == expected


def test_squad_multiple_golds_take_the_max() -> None:
    # F1 against "Denver Broncos" = 1 (exact); against "Broncos": P 1/2, R 1 -> 2/3; max = 1
    result = squad_evaluate({"q": ["Broncos", "Denver Broncos"]}, {"q": "Denver Broncos"})
    assert result["exact"] == 100.0
    assert result["f1"] == 100.0
    # none exact: "Denver" vs "Denver Broncos" -> 2/3, vs "the Broncos" -> 0; max = 2/3
    result = squad_evaluate({"q": ["Denver Broncos", "the Broncos"]}, {"q": "Denver"})
    assert result["exact"] == 0.0
    assert result["f1"] == approx(100 * 2 / 3)


def test_squad_v2_drops_golds_that_normalise_empty() -> None:
    # gold "The" normalises to "" -> v2.0 replaces the gold list by [""], the question stays
    # answerable (HasAns), and the empty prediction gets EM 1, F1 1.
    result = squad_evaluate({"q": ["The"]}, {"q": ""})
    assert (result["exact"], result["f1"], result["HasAns_total"]) == (100.0, 100.0, 1)
    # v1.1 keeps the gold: EM "" == "" -> 1, but F1 of two empty token lists -> 0
    result = squad_evaluate({"q": ["The"]}, {"q": ""}, version="1.1")
    assert (result["exact"], result["f1"]) == (100.0, 0.0)
    # with another gold left after the filter, the empty prediction is simply wrong in v2.0
    # (golds ["Paris"]: EM 0, F1 0) but matches "The" in v1.1 (EM 1; F1 of empty vs empty 0)
    result = squad_evaluate({"q": ["The", "Paris"]}, {"q": ""})
    assert (result["exact"], result["f1"]) == (0.0, 0.0)
    result = squad_evaluate({"q": ["The", "Paris"]}, {"q": ""}, version="1.1")
    assert (result["exact"], result["f1"]) == (100.0, 0.0)
    with pytest.raises(UsageError, match="'q' has no gold answer"):
        squad_evaluate({"q": []}, {"q": ""}, version="1.1")


def test_squad_missing_prediction_scores_zero() -> None:
    predictions = {k: v for k, v in PREDICTIONS.items() if k != "q1"}
    predictions["unknown"] = "ignored"
    # q1 now 0: exact = (0+0+1+0)/4 = 25, f1 = (0+0.8+1+0)/4 = 45
    result = squad_evaluate(squad_json(), predictions)
    assert (result["exact"], result["f1"], result["total"], result["missing"]) == approx(
        (25.0, 45.0, 4, 1)
    )


def test_squad_no_answer_threshold() -> None:
    probs = {"q1": 0.1, "q2": 0.6, "q3": 0.9, "q4": 0.4}
    # threshold 0.5: abstain on q2 (0.6) and q3 (0.9).
    #   q1 kept 1/1; q2 answerable but abstained -> 0/0; q3 unanswerable, abstained -> 1/1;
    #   q4 kept 0/0  -> exact = f1 = 100 * 2/4 = 50
    result = squad_evaluate(squad_json(), PREDICTIONS, no_answer_probs=probs, threshold=0.5)
    assert (result["exact"], result["f1"]) == approx((50.0, 50.0))
    assert (result["HasAns_f1"], result["NoAns_f1"]) == approx((50.0, 50.0))
    # abstention is strictly "> threshold": at 0.6 q2 (prob 0.6) keeps its answer (F1 0.8),
    # only q3 abstains -> f1 = 100 * (1 + 0.8 + 1 + 0)/4 = 70
    at_q2 = squad_evaluate(squad_json(), PREDICTIONS, no_answer_probs=probs, threshold=0.6)
    assert at_q2["f1"] == approx(70.0)
    # find_best_thresh sweep (raw scores), questions by increasing prob q1, q4, q2, q3;
    # start = 2 (both unanswerable right when abstaining on everything), threshold 0.0
    #   F1:    q1 +1 -> 3 (best, t=0.1); q4 -1 -> 2; q2 +0.8 -> 2.8; q3 +0 -> 2.8
    #   exact: q1 +1 -> 3 (best, t=0.1); q4 -1 -> 2; q2 +0   -> 2;   q3 +0 -> 2
    # best = 100 * 3/4 = 75 at 0.1 for both
    assert result["best_f1"] == approx(75.0)
    assert result["best_f1_thresh"] == 0.1
    assert result["best_exact"] == approx(75.0)
    assert result["best_exact_thresh"] == 0.1


def test_best_threshold_differs_for_exact_and_f1() -> None:
    probs = {"q1": 0.2, "q2": 0.3, "q3": 0.8, "q4": 0.9}
    # order q1, q2, q3, q4; start 2
    #   F1:    q1 +1 -> 3 (t .2); q2 +0.8 -> 3.8 (t .3); q3 0 -> 3.8; q4 -1 -> 2.8
    #          -> (100 * 3.8/4, 0.3) = (95, 0.3)
    #   exact: q1 +1 -> 3 (t .2); q2 +0 -> 3 (not strictly better); q3 0; q4 -1
    #          -> (100 * 3/4, 0.2) = (75, 0.2)
    assert best_threshold(squad_json(), PREDICTIONS, probs, metric="f1") == approx((95.0, 0.3))
    assert best_threshold(squad_json(), PREDICTIONS, probs, metric="exact") == approx((75.0, 0.2))


def test_best_threshold_keeps_official_raw_string_quirk() -> None:
    # q "a" unanswerable, predicted " " (normalises to "" -> raw EM 1), but the official
    # sweep tests the RAW string: " " is truthy -> counted as a wrong answer (-1).
    # start 1 (a abstains); a: -1 -> 0; b: +1 -> 1 (not > 1) -> best stays (100*1/2, 0.0)
    answers = {"a": [], "b": ["x"]}
    predictions = {"a": " ", "b": "x"}
    assert best_threshold(answers, predictions, {"a": 0.1, "b": 0.2}) == approx((50.0, 0.0))


def test_squad_input_errors() -> None:
    with pytest.raises(UsageError, match="no_answer_probs has no entry for question 'q2'"):
        squad_evaluate(squad_json(), PREDICTIONS, no_answer_probs={"q1": 0.1})
    with pytest.raises(DataFormatError, match="not SQuAD JSON"):
        squad_evaluate({"data": [{"paragraphs": [{"qas": [{"id": "x"}]}]}]}, {})
    with pytest.raises(DataFormatError, match="occurs twice"):
        squad_evaluate([{"paragraphs": [{"qas": [{"id": "x", "answers": []}] * 2}]}], {})
    with pytest.raises(UsageError, match="no questions"):
        squad_evaluate({}, {})
    with pytest.raises(UsageError, match="version must be"):
        f1_score("a", "b", version="3.0")  # type: ignore[arg-type]


# ============================================================================================
# Cross-checks against reference libraries (skipped when they are not installed)
# ============================================================================================


def test_cross_check_seqeval_default_mode() -> None:
    pytest.importorskip("seqeval")
    from seqeval.metrics.sequence_labeling import (
        get_entities,
        precision_recall_fscore_support,
    )

    rng = random.Random(0)
    # prefixed tags only: plain tags are where bertkit deliberately follows conlleval -r
    vocab = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-PER", "S-LOC", "I-geo-loc", "U-PER"]
    for _ in range(500):
        tags = [rng.choice(vocab) for _ in range(rng.randint(0, 8))]
        ours = [(t, s, e - 1) for t, s, e in extract_entities(tags)]  # seqeval ends inclusive
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # seqeval warns about the U- prefix
            assert ours == get_entities(tags)
    for _ in range(100):
        true = [[rng.choice(vocab[:7]) for _ in range(rng.randint(1, 6))] for _ in range(3)]
        pred = [[rng.choice(vocab[:7]) for _ in sentence] for sentence in true]
        scores = entity_scores(true, pred)
        for average, ours_prf in (("micro", scores.micro), ("weighted", scores.weighted)):
            p, r, f, s = precision_recall_fscore_support(true, pred, average=average)
            assert (ours_prf.precision, ours_prf.recall, ours_prf.f1) == approx((p, r, f))
            assert ours_prf.support == s
        if scores.per_type:  # seqeval's macro over no types is nan
            p, r, f, _ = precision_recall_fscore_support(true, pred, average="macro")
            assert (scores.macro.precision, scores.macro.recall, scores.macro.f1) == approx(
                (p, r, f)
            )


@pytest.mark.filterwarnings("ignore")
def test_cross_check_sklearn_classification() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(40):
        n, k = int(rng.integers(1, 30)), int(rng.integers(2, 5))
        t, p = rng.integers(0, k, n), rng.integers(0, k, n)
        for average in ("micro", "macro", "weighted"):
            ours = precision_recall_f1(t, p, average=average)  # type: ignore[arg-type]
            ref = sk.precision_recall_fscore_support(t, p, average=average, zero_division=0)
            assert isinstance(ours, PRF)
            assert (ours.precision, ours.recall, ours.f1) == approx(ref[:3])
        assert matthews_corrcoef(t, p) == approx(sk.matthews_corrcoef(t, p))
        np.testing.assert_array_equal(
            confusion_matrix(t, p, k), sk.confusion_matrix(t, p, labels=list(range(k)))
        )
        mt, mp = rng.integers(0, 2, (n, k)), rng.integers(0, 2, (n, k))
        ml = multilabel_metrics(mt, mp)
        assert ml["subset_accuracy"] == approx(sk.accuracy_score(mt, mp))
        assert ml["hamming_loss"] == approx(sk.hamming_loss(mt, mp))
        assert ml["micro_f1"] == approx(sk.f1_score(mt, mp, average="micro", zero_division=0))
        assert ml["macro_f1"] == approx(sk.f1_score(mt, mp, average="macro", zero_division=0))


def test_cross_check_sklearn_roc_auc() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    for _ in range(40):
        n = int(rng.integers(2, 60))
        labels = rng.integers(0, 2, n)
        if 0 < labels.sum() < n:
            scores = rng.integers(0, 4, n) + labels * rng.random()  # ties on purpose
            assert roc_auc(labels, scores) == approx(sk.roc_auc_score(labels, scores))


def test_cross_check_scipy_correlations() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(3, 40))
        x = rng.integers(0, 5, n).astype(float)  # many ties
        y = x + rng.normal(0, 2, n)
        if len(set(x)) > 1:
            assert pearson(x, y) == approx(stats.pearsonr(x, y)[0])
            assert spearman(x, y) == approx(stats.spearmanr(x, y)[0])
