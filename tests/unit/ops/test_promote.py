"""The promotion gate's checks on a comparison's figures, at and across their tolerances."""
import pytest

from loanxai.config import CHALLENGER, CHAMPION, ToolSettings
from loanxai.errors import SettingError
from loanxai.ops.promote import promotion_checks

SETTINGS = ToolSettings(promote_air_tolerance=0.02, promote_recall_tolerance=0.02, promote_min_outcomes=50)


def comparison(ratios, recalls, approved_outcomes=100):
    """A comparison's figures: ``ratios`` attribute -> (champion's, challenger's); ``recalls`` (champion's, challenger's)."""
    def decided(i):
        true_positive = round(recalls[i] * approved_outcomes) if recalls[i] is not None else 0
        return {"adverse_impact": {a: {"ratio": r[i]} for a, r in ratios.items()},
                "outcomes": {"all": {"all": {"recall": recalls[i], "true_positive": true_positive,
                                             "false_negative": approved_outcomes - true_positive}}}}
    return {"decisions": {CHAMPION: decided(0), CHALLENGER: decided(1)}}


def passed(checks):
    return {(c["step"], c["attribute"]): c["passed"] for c in checks}


def test_a_challenger_within_every_tolerance_passes():
    checks = promotion_checks(comparison({"gender": (0.70, 0.685), "ethnicity": (None, None)}, (0.60, 0.585)), SETTINGS)
    assert passed(checks) == {("adverse impact", "gender"): True, ("adverse impact", "ethnicity"): True,
                              ("recall", "all"): True}
    assert [c["rule"] for c in checks] == [">= champion's - 0.02", "not judged",
                                           ">= champion's - 0.02, on at least 50 approved outcomes"]


@pytest.mark.parametrize("ratios, recalls, failed", [
    ({"gender": (0.70, 0.67)}, (0.6, 0.6), ("adverse impact", "gender")),
    # the worst ratio may stay where it was while another attribute's group is failed
    ({"gender": (0.30, 0.30), "relationship": (0.90, 0.60)}, (0.6, 0.6), ("adverse impact", "relationship")),
    # a challenger judged where it approves no one in the judged groups
    ({"gender": (0.70, None)}, (0.6, 0.6), ("adverse impact", "gender")),
    ({"gender": (0.70, 0.70)}, (0.60, 0.57), ("recall", "all")),
])
def test_a_challenger_past_a_tolerance_fails_that_check(ratios, recalls, failed):
    checks = passed(promotion_checks(comparison(ratios, recalls), SETTINGS))
    assert [key for key, ok in checks.items() if not ok] == [failed]


def test_recall_is_not_judged_on_too_few_outcomes():
    [*_, recall] = promotion_checks(comparison({"gender": (0.7, 0.7)}, (0.6, 0.7), approved_outcomes=49), SETTINGS)
    assert recall["passed"] is False and recall["approved_outcomes"] == 49
    [*_, recall] = promotion_checks(comparison({"gender": (0.7, 0.7)}, (None, None), approved_outcomes=0), SETTINGS)
    assert recall["passed"] is False


def test_the_tolerances_are_settings():
    settings = ToolSettings.from_env({"LOAN_PROMOTE_AIR_TOLERANCE": "0.05", "LOAN_PROMOTE_MIN_OUTCOMES": "10"})
    assert (settings.promote_air_tolerance, settings.promote_recall_tolerance, settings.promote_min_outcomes) == (
        0.05, 0.02, 10)
    checks = passed(promotion_checks(comparison({"gender": (0.70, 0.67)}, (0.6, 0.6), approved_outcomes=10), settings))
    assert all(checks.values())
    with pytest.raises(SettingError, match="LOAN_PROMOTE_RECALL_TOLERANCE"):
        ToolSettings.from_env({"LOAN_PROMOTE_RECALL_TOLERANCE": "-0.1"})
