"""The report: the trap, the gate on constructed models, and a real run on a small sample."""
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from loanxai.core.cli import main as loanxai
from loanxai.data.description import DEFAULT_DESCRIPTION, load_description
from loanxai.fairness.gate import GateThresholds, screen_checks
from loanxai.report import build, sections
from loanxai.report.artifacts import ReportOptions, load_model

SMALL = dict(sample=300, explanations_per_group=1, permutation_repeats=1)


@pytest.fixture(scope="module")
def small_report(artifacts, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    config = ReportOptions(out, artifacts.classifier_dir, artifacts.explainer_dir, **SMALL)
    return out, build.build_report(config)


@pytest.fixture(scope="module")
def split(census):
    return census.train, census.test


def test_trap_scores_high_on_its_own_validation_and_fails_in_production(split, census, tmp_path):
    train, test = split
    trap = sections.skewed_sample_trap(train, test, census.schema, seed=0, out=tmp_path)  # at the seed's 0.5
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
    (lambda X, rows: (rows["gender"] == "Male").to_numpy(), False),  # approves men only: ratio 0
    (lambda X, rows: np.ones(len(X), bool), True),                    # approves everyone: ratio 1
    (coin, True),                                                     # same approval rate for both genders
])
def test_the_screen_flags_an_unfair_model_and_passes_a_fair_one(split, artifacts, tmp_path, rule, passes):
    _, test = split
    model = load_model(artifacts.classifier_dir, artifacts.explainer_dir)
    constructed = Constructed(lambda X: rule(X, test))  # gender is no model input: the rule reads it aside
    model.approval = lambda X: constructed.predict_proba(X)[:, 1]
    section = sections.group_section(model, test, ("gender",), min_group_rows=30, out=tmp_path)
    impact = section["gender"]["adverse_impact"]
    point = {"features": [], "air": {"gender": impact}}
    [check] = screen_checks(point, point, GateThresholds(), ("gender",), load_description(DEFAULT_DESCRIPTION).protected)
    assert check["passed"] is passes
    assert check["value"] == impact["ratio"] == section["gender"]["gaps"]["adverse_impact_ratio"]
    assert impact["groups"]["Female"]["rows"] + impact["groups"]["Male"]["rows"] == len(test)


def test_report_files(small_report):
    out, content = small_report
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} >= {"feature_distributions.png", "class_balance.png", "correlation_dendrogram.png",
                                       "skewed_sample_trap.png", "roc_by_gender.png", "confusion_by_ethnicity.png",
                                       "roc_by_age.png", "permutation_importance.png", "frontier.png", "proxies.png"}
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = plt.imread(png).shape
        assert height > 100 and width > 100
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    # self-contained: every picture inside, the frontier twice (the search's section and the model card's)
    assert html.count('src="data:image/png;base64,') == len(pngs) + 1
    assert ".png\"" not in html
    assert "<table>" in html and "Fairness gate: FLAGGED" in html
    markdown = (out / "report.md").read_text()
    assert all(f"]({png.name})" in markdown for png in pngs)


def test_report_json_has_every_section(small_report, artifacts):
    out, _ = small_report
    content = json.loads((out / "report.json").read_text())
    manifest = artifacts.classifier_manifest
    assert set(content) >= {"artifacts", "config", "decision", "metrics", "data", "skewed_sample_trap",
                            "balanced_evaluation", "groups", "proxies", "search", "explanations", "reasons", "gate"}
    assert content["held_out_rows"] == 300
    assert content["decision"]["cutoff"] == content["metrics"]["cutoff"] == manifest.cutoff
    assert content["artifacts"]["classifier_files"] == manifest.files
    assert content["artifacts"]["explainer_files"] == artifacts.explainer_manifest.files
    assert set(content["groups"]) == {"gender", "ethnicity", "marital-status", "relationship", "age"}
    assert set(content["groups"]["age"]["adverse_impact"]["groups"]) == {"under 25", "25 to under 62", "62 and over"}
    for attribute in ("gender", "ethnicity"):
        section = content["groups"][attribute]
        impact = section["adverse_impact"]
        for group, rates in impact["groups"].items():
            assert rates["low"] <= rates["rate"] <= rates["high"] and rates["rows"] >= 1
            assert (group in impact["not_judged"]) is (rates["rows"] < manifest.gate.thresholds["min_group_rows"])
        assert set(next(iter(section["by_group"].values()))) == {
            "count", "accuracy", "precision", "recall", "false_positive_rate", "false_negative_rate", "selection_rate"}
        assert content["data"]["class_balance"][attribute]
        assert content["balanced_evaluation"][attribute]["rows_per_cell"] >= 1
    # a 300-row sample: ethnicity's small groups are listed as not judged
    assert content["groups"]["ethnicity"]["groups_too_small"]
    assert len(content["explanations"]["permutation_importance"]["features"]) == manifest.schema.n_features
    assert {a["group"] for a in content["explanations"]["anchors"]} >= {"Female", "Male", "62 and over"}
    assert not any(c.split(" ")[0] in manifest.dataset.protected for a in content["explanations"]["anchors"]
                   for c in a["anchor"])
    # the search as training recorded it: every point, the choice marked
    search = content["search"]
    assert search["chosen"] == manifest.candidate and len(search["candidates"]) == len(manifest.search["candidates"])
    # beside each candidate's worst ratio, its worst standardized mean difference of scores: the groups that
    # score lower sit below 0, inside their interval
    chosen = next(c for c in search["candidates"] if c["name"] == manifest.candidate)
    smd = chosen["worst_smd"]
    assert smd["attribute"] in search["screened"] and smd["low"] < smd["smd"] < smd["high"] and smd["smd"] < 0
    by_attribute = chosen["smd"][smd["attribute"]]
    assert by_attribute["smd"] == smd["smd"] and by_attribute["lowest"] != by_attribute["highest"]
    assert "worst SMD [95%]" in (out / "report.md").read_text()
    reasons = content["reasons"]
    assert reasons["base_value"] >= reasons["cutoff"] and reasons["additivity_max_error"] < 1e-6
    assert 0.5 < reasons["gap_share"]["median"] <= 1.5 and reasons["rejections"] == 500
    gate = content["gate"]
    assert gate["recorded"]["status"] == manifest.gate.status
    assert [c["metric"] for c in gate["checks"]] == ["adverse_impact_ratio"] * 2
    card = (out / "model_card.md").read_text()
    for words in ("`marital-status` | marital status | no", "yes, under the elderly rule", "**The elderly rule.**",
                  "worst standardized mean difference",
                  f"{manifest.cutoff:.4f}", "Rule: among the forest candidates", "stable code",
                  # what the search covered, each family's best with its interval, the small groups, the splits
                  "- forest: ", "- boosting: ", "the best worst adverse impact ratio is ",
                  "Too small to judge reliably", "Amer-Indian-Eskimo (", "contenders on 3 fold splits",
                  "Randomized reference, never chosen", "bound 0.01: ROC AUC",
                  "![The search: every candidate, each family's frontier, the choice](frontier.png)"):
        assert words in card, words


def test_fail_on_gate_exit_code(artifacts, tmp_path):
    arguments = ["--artifacts", str(artifacts.classifier_dir), "--explainer-artifacts", str(artifacts.explainer_dir),
                 "--protected", "gender", "--sample", "1000", "--explanations-per-group", "1",
                 "--permutation-repeats", "1"]
    # the trained model approves women far less often than men: the four-fifths screen flags it
    assert loanxai(["report", *arguments, "--output-dir", str(tmp_path / "a"), "--fail-on-gate"]) == 1
    assert loanxai(["report", *arguments, "--output-dir", str(tmp_path / "b")]) == 0
    assert loanxai(["report", *arguments, "--output-dir", str(tmp_path / "c"), "--fail-on-gate",
                        "--min-adverse-impact-ratio", "0.05"]) == 0
