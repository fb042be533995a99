"""Metric and gap computations against small hand-worked cases."""
import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate

from loanxai.fairness.metrics import (
    adverse_impact,
    balanced_sample,
    evaluate,
    fairness_gaps,
    group_metrics,
    large_groups,
    policy_cutoff,
    resampling_effect,
    standardized_mean_difference,
    wilson,
)

# group a: 4 rows, truth 1 1 0 0, predicted 1 1 1 0 -> approval rate 3/4, TPR 1, FPR 1/2
# group b: 4 rows, truth 1 1 0 0, predicted 1 0 0 0 -> approval rate 1/4, TPR 1/2, FPR 0
Y_TRUE = np.array([1, 1, 0, 0, 1, 1, 0, 0])
Y_PRED = np.array([1, 1, 1, 0, 1, 0, 0, 0])
GROUPS = pd.Series(["a"] * 4 + ["b"] * 4, name="group")


def test_group_metrics_by_hand():
    by_group = group_metrics(Y_TRUE, Y_PRED, GROUPS).by_group
    assert by_group.loc["a"].to_dict() == pytest.approx({
        "count": 4, "accuracy": 0.75, "precision": 2 / 3, "recall": 1.0,
        "false_positive_rate": 0.5, "false_negative_rate": 0.0, "selection_rate": 0.75})
    assert by_group.loc["b"].to_dict() == pytest.approx({
        "count": 4, "accuracy": 0.75, "precision": 1.0, "recall": 0.5,
        "false_positive_rate": 0.0, "false_negative_rate": 0.5, "selection_rate": 0.25})


def test_gaps_by_hand():
    assert fairness_gaps(Y_TRUE, Y_PRED, GROUPS) == pytest.approx({
        "demographic_parity_difference": 0.5,   # 3/4 - 1/4
        "adverse_impact_ratio": 1 / 3,          # (1/4) / (3/4)
        "equalized_odds_difference": 0.5,       # max(TPR gap 1/2, FPR gap 1/2)
        "equal_opportunity_difference": 0.5,    # TPR gap
    })


def test_gaps_are_fairlearns():
    rng = np.random.default_rng(0)
    for rows in (50, 3000):
        y_true, y_pred = rng.integers(0, 2, rows), rng.integers(0, 2, rows)
        groups = pd.Series(rng.choice(["a", "b", "c", "d"], rows, p=[0.5, 0.3, 0.15, 0.05]))
        y_true[groups.to_numpy() == "d"] = 1  # a group with no rejected applicant: its FPR is 0
        y_true[groups.to_numpy() == "c"] = 0  # and one with no approved applicant: its TPR is 0
        rates = MetricFrame(metrics={"selection_rate": selection_rate, "tpr": true_positive_rate,
                                     "fpr": false_positive_rate},
                            y_true=y_true, y_pred=y_pred, sensitive_features=groups)
        difference, ratio = rates.difference(), rates.ratio()
        assert fairness_gaps(y_true, y_pred, groups) == pytest.approx({
            "demographic_parity_difference": difference["selection_rate"],
            "adverse_impact_ratio": ratio["selection_rate"],
            "equalized_odds_difference": max(difference["tpr"], difference["fpr"]),
            "equal_opportunity_difference": difference["tpr"],
        }, abs=1e-12)


def test_equal_treatment_has_no_gaps():
    gaps = fairness_gaps(Y_TRUE, Y_TRUE, GROUPS)
    assert gaps["adverse_impact_ratio"] == 1.0 and gaps["demographic_parity_difference"] == 0.0


def test_undefined_recall_is_nan_not_zero():
    by_group = group_metrics(np.array([0, 0, 1]), np.array([0, 0, 1]), pd.Series(["a", "a", "b"])).by_group
    assert np.isnan(by_group.loc["a", "recall"]) and by_group.loc["b", "recall"] == 1.0


def test_the_policy_sets_the_cutoff():
    approval = np.linspace(0, 1, 101)
    assert policy_cutoff(approval, {"cutoff": 0.42}, base_rate=0.3) == 0.42
    assert np.mean(approval >= policy_cutoff(approval, {"approval_rate": "base"}, base_rate=0.3)) == pytest.approx(0.3, abs=0.01)
    assert np.mean(approval >= policy_cutoff(approval, {"approval_rate": 0.1}, base_rate=0.3)) == pytest.approx(0.1, abs=0.01)


def test_metrics_are_at_the_cutoff_and_accuracy_sits_beside_always_rejecting():
    approval = np.array([0.9, 0.4, 0.35, 0.2, 0.1])
    y = np.array([1, 1, 0, 0, 0])
    metrics = evaluate(approval, y, cutoff=0.38)
    assert (metrics["recall"], metrics["precision"], metrics["predicted_approval_rate"]) == (1.0, 1.0, 0.4)
    assert (metrics["accuracy"], metrics["always_reject_accuracy"], metrics["roc_auc"]) == (1.0, 0.6, 1.0)
    at_half = evaluate(approval, y, cutoff=0.5)
    assert at_half["recall"] == 0.5 and at_half["confusion_matrix"] == [[3, 0], [1, 1]]


def test_wilson_interval_by_hand():
    low, high = wilson(10, 100)  # the textbook case: 0.055 to 0.174
    assert (round(low, 3), round(high, 3)) == (0.055, 0.174)
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0


def test_adverse_impact_judges_only_large_groups_and_gives_an_interval():
    # a: 100 rows, 40 approved; b: 100 rows, 20 approved; c: 10 rows, none approved (too small)
    decisions = np.array([True] * 40 + [False] * 60 + [True] * 20 + [False] * 80 + [False] * 10)
    groups = ["a"] * 100 + ["b"] * 100 + ["c"] * 10
    impact = adverse_impact(decisions, groups, min_rows=50)
    assert (impact["ratio"], impact["lowest"], impact["highest"]) == (0.5, "b", "a")
    assert impact["not_judged"] == {"c": 10}
    # Katz's log interval: exp(log(0.5) -+ 1.96 sqrt(0.8/20 + 0.6/40))
    assert (round(impact["low"], 3), round(impact["high"], 3)) == (0.316, 0.792)
    assert impact["groups"]["a"] == pytest.approx({"rows": 100, "approved": 40, "rate": 0.4, "low": wilson(40, 100)[0],
                                                   "high": wilson(40, 100)[1]})
    assert adverse_impact(decisions, groups, min_rows=101)["ratio"] is None


def test_balanced_sample_has_equal_cells_and_skips_groups_missing_a_label():
    frame = pd.DataFrame({"g": list("aaaaabbbc"), "y": [1, 1, 0, 0, 0, 1, 0, 0, 0]})
    balanced = balanced_sample(frame, "g", "y")
    assert balanced.groupby(["g", "y"]).size().to_dict() == {("a", 0): 1, ("a", 1): 1, ("b", 0): 1, ("b", 1): 1}


def test_resampling_effect_counts():
    frame = pd.DataFrame({"g": list("aaaab"), "y": [True, False, False, False, True]})
    effect = resampling_effect(frame, "g", "y")
    assert effect["cells"] == {"a / rejected": 3, "a / approved": 1, "b / approved": 1}
    assert (effect["downsampled_rows"], effect["rows_dropped"]) == (3, 2)
    assert (effect["upsampled_rows"], effect["rows_duplicated"]) == (9, 4)


def test_large_groups():
    assert large_groups(pd.Series(list("aaabbc")), min_rows=2) == ["a", "b"]


def test_standardized_mean_difference_by_hand():
    # a: mean 0.2, b: mean 0.6, both with sample variance 0.04 (sd 0.2): d = (0.2 - 0.6) / 0.2 = -2
    scores = [0.0, 0.2, 0.4, 0.4, 0.6, 0.8, 0.9]
    groups = ["a", "a", "a", "b", "b", "b", "tiny"]
    smd = standardized_mean_difference(np.array(scores), groups, min_rows=3)
    assert smd["smd"] == pytest.approx(-2.0) and (smd["lowest"], smd["highest"]) == ("a", "b")
    half = 1.959964 * np.sqrt(6 / 9 + 4 / 12)  # Hedges and Olkin: (n1 + n2) / (n1 n2) + d^2 / (2 (n1 + n2))
    assert (smd["low"], smd["high"]) == (pytest.approx(-2.0 - half), pytest.approx(-2.0 + half))
    assert smd["groups"]["tiny"] == {"rows": 1, "mean": 0.9}  # shown, never judged
    # one judged group, or equal scores: nothing to compare, or no difference
    assert standardized_mean_difference(np.array(scores), groups, min_rows=4)["smd"] is None
    assert standardized_mean_difference(np.full(6, 0.5), groups[:6], min_rows=3)["smd"] == 0.0
    # a group not given (None) is left out
    assert standardized_mean_difference(np.array(scores), [*groups[:6], None], min_rows=3)["groups"].keys() == {"a", "b"}
