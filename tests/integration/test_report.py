"""The report: the trap, the gate on constructed models, and a real run on a small sample."""
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from loanxai.fairness.gate import GateSettings, evaluate_gate
from loanxai.report import build, sections
from loanxai.report.artifacts import ReportSettings, load_model

SMALL = dict(sample=300, explanations_per_group=1, permutation_repeats=1)


@pytest.fixture(scope="module")
def small_report(artifacts, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    config = ReportSettings(out, artifacts.classifier_dir, artifacts.explainer_dir, **SMALL)
    return out, build.build_report(config)


@pytest.fixture(scope="module")
def split(census):
    return census.train, census.test


def test_trap_scores_high_on_its_own_validation_and_fails_in_production(split, census, tmp_path):
    train, test = split
    trap = sections.skewed_sample_trap(train, test, census.schema, seed=0, out=tmp_path)
    assert trap["skewed_sample"] == {"rows": 8000, "approved": 100, "rejected": 7900}
    assert trap["production_sample"] == {"rows": 110, "approved": 50, "rejected": 60}
    assert trap["validation"]["accuracy"] > 0.95
    assert trap["production"]["recall"] < 0.5
    assert trap["production"]["accuracy"] < trap["validation"]["accuracy"] - 0.2
    assert (tmp_path / "skewed_sample_trap.png").exists()


class Constructed:
    """A stand-in model for the gate: approves whom ``rule`` says, ignoring everything else."""

    def __init__(self, rule):
        self.rule = rule

    def predict_proba(self, X):
        approved = self.rule(X).astype(float)
        return np.column_stack([1 - approved, approved])


def coin(X, rows):
    """Approves 30% of applications at random (seeded), whatever their gender."""
    return np.random.default_rng(0).random(len(X)) < 0.3


@pytest.mark.parametrize("rule, passes", [
    (lambda X, rows: (rows["gender"] == "Male").to_numpy(), False),  # approves men only: disparate impact 0
    (lambda X, rows: np.ones(len(X), bool), True),                    # approves everyone: disparate impact 1
    (coin, True),                                                     # same approval rate for both genders
])
def test_gate_fails_an_unfair_model_and_passes_a_fair_one(split, artifacts, tmp_path, rule, passes):
    _, test = split
    model = load_model(artifacts.classifier_dir, artifacts.explainer_dir)
    model.pipeline = Constructed(lambda X: rule(X, test))  # gender is no model input: the rule reads it aside
    section = sections.group_section(model, test, ("gender",), min_group_rows=30, out=tmp_path)
    [check] = evaluate_gate({"gender": section["gender"]["gaps"]}, GateSettings(min_disparate_impact=0.8))
    assert check["passed"] is passes
    assert check["value"] == section["gender"]["gaps"]["disparate_impact"]


def test_report_files(small_report):
    out, content = small_report
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} >= {"feature_distributions.png", "class_balance.png", "correlation_dendrogram.png",
                                       "skewed_sample_trap.png", "roc_by_gender.png", "confusion_by_ethnicity.png",
                                       "permutation_importance.png"}
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = plt.imread(png).shape
        assert height > 100 and width > 100
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert html.count('src="data:image/png;base64,') == len(pngs)  # self-contained
    assert ".png\"" not in html
    assert "<table>" in html and "Fairness gate" in html
    markdown = (out / "report.md").read_text()
    assert all(f"]({png.name})" in markdown for png in pngs)


def test_report_json_has_every_section(small_report, artifacts):
    out, _ = small_report
    content = json.loads((out / "report.json").read_text())
    assert set(content) >= {"artifacts", "config", "metrics", "data", "skewed_sample_trap", "balanced_evaluation",
                            "groups", "explanations", "gate"}
    assert content["held_out_rows"] == 300
    assert content["artifacts"]["classifier_files"] == artifacts.classifier_manifest.files
    assert content["artifacts"]["explainer_files"] == artifacts.explainer_manifest.files
    for attribute in ("gender", "ethnicity"):
        section = content["groups"][attribute]
        assert set(section["gaps"]) == {"demographic_parity_difference", "disparate_impact",
                                        "equalized_odds_difference", "equal_opportunity_difference"}
        assert set(next(iter(section["by_group"].values()))) == {
            "count", "accuracy", "precision", "recall", "false_positive_rate", "false_negative_rate", "selection_rate"}
        assert content["data"]["class_balance"][attribute]
        assert content["balanced_evaluation"][attribute]["rows_per_cell"] >= 1
    assert len(content["explanations"]["permutation_importance"]["features"]) == 10
    assert {a["group"] for a in content["explanations"]["anchors"]} >= {"Female", "Male"}
    assert [c["metric"] for c in content["gate"]["checks"]] == ["disparate_impact"] * 2


def test_fail_on_gate_exit_code(artifacts, tmp_path):
    arguments = ["--classifier-dir", str(artifacts.classifier_dir), "--explainer-dir", str(artifacts.explainer_dir),
                 "--protected", "gender", "--sample", "300", "--explanations-per-group", "1",
                 "--permutation-repeats", "1"]
    # the trained model approves women far less often than men: the four-fifths rule fails
    assert build.main([*arguments, "--output-dir", str(tmp_path / "a"), "--fail-on-gate"]) == 1
    assert build.main([*arguments, "--output-dir", str(tmp_path / "b")]) == 0
    assert build.main([*arguments, "--output-dir", str(tmp_path / "c"), "--fail-on-gate",
                        "--min-disparate-impact", "0.05"]) == 0
