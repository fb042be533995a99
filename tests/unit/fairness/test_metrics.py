"""Metric and gap computations against small hand-worked cases."""
import numpy as np
import pandas as pd
import pytest

from loanxai.fairness.gate import GateSettings, evaluate_gate
from loanxai.fairness.metrics import balanced_sample, fairness_gaps, group_metrics, large_groups, resampling_effect

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
        "disparate_impact": 1 / 3,              # (1/4) / (3/4)
        "equalized_odds_difference": 0.5,       # max(TPR gap 1/2, FPR gap 1/2)
        "equal_opportunity_difference": 0.5,    # TPR gap
    })


def test_equal_treatment_has_no_gaps():
    gaps = fairness_gaps(Y_TRUE, Y_TRUE, GROUPS)
    assert gaps["disparate_impact"] == 1.0 and gaps["demographic_parity_difference"] == 0.0


def test_undefined_recall_is_nan_not_zero():
    by_group = group_metrics(np.array([0, 0, 1]), np.array([0, 0, 1]), pd.Series(["a", "a", "b"])).by_group
    assert np.isnan(by_group.loc["a", "recall"]) and by_group.loc["b", "recall"] == 1.0


def test_gate_checks_each_attribute_against_each_limit():
    gaps = {"gender": {"disparate_impact": 0.79, "equalized_odds_difference": 0.05},
            "ethnicity": {"disparate_impact": 0.8, "equalized_odds_difference": 0.2}}
    checks = evaluate_gate(gaps, GateSettings(min_disparate_impact=0.8, max_equalized_odds_difference=0.1))
    assert [(c["attribute"], c["metric"], c["passed"]) for c in checks] == [
        ("gender", "disparate_impact", False), ("gender", "equalized_odds_difference", True),
        ("ethnicity", "disparate_impact", True), ("ethnicity", "equalized_odds_difference", False)]
    assert evaluate_gate(gaps, GateSettings(min_disparate_impact=None)) == []


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
