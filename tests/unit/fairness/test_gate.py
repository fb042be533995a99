"""The fairness gate's two steps, on constructed records and on trained models: the screen, the
search step, the status they give, and every path to production refusing what may not ship,
naming the failed step; a justification visible in the metadata, the log and the image labels."""
import json
import os
import shutil
import subprocess

import pytest

from loanxai.artifacts import REPO_ROOT
from loanxai.core.manifest import GateRecord
from loanxai.data.description import DATASETS_DIR, load_description
from loanxai.errors import GateError
from loanxai.fairness.gate import GateThresholds, gate_record, labels, require_shippable, screen_checks, search_check
from loanxai.training.train import train
from tests.conftest import CENSUS, service_metadata, start_classifier

ROOT = REPO_ROOT
LOANAPP = load_description(DATASETS_DIR / "loanapp.yaml")
#: a quick search for the tests: one candidate (and the reference the search always assesses)
ONE_CANDIDATE = ["all, forest"]


def air(ratio, low=None, high=None, not_judged=None):
    return {"ratio": ratio, "low": low, "high": high, "groups": {"a": {}, "b": {}, "c": {}},
            "not_judged": not_judged or {}}


def point(ratios, features=("education",)):
    return {"features": list(features), "air": {a: air(*r) for a, r in ratios.items()}}


FLAGGED = point({"gender": (0.6, 0.55, 0.66), "ethnicity": (0.9, 0.8, 1.0)})


def test_the_screen_flags_a_low_ratio_with_its_interval_and_the_held_out_figure_beside():
    checks = screen_checks(FLAGGED, FLAGGED, GateThresholds(), ("gender", "ethnicity"), CENSUS.protected)
    assert [(c["attribute"], c["passed"]) for c in checks] == [("gender", False), ("ethnicity", True)]
    assert (checks[0]["low"], checks[0]["high"], checks[0]["held_out"]["ratio"]) == (0.55, 0.66, 0.6)
    record = GateRecord.from_dict(gate_record(checks, GateThresholds()))
    assert record.failed_checks == ["gender adverse_impact_ratio = 0.600 [0.55, 0.66] (rule >= 0.8)"]


def test_a_ratio_below_the_screen_within_its_noise_passes_marked_unless_significance_is_not_required():
    noisy = point({"gender": (0.7, 0.45, 1.05)})  # below 0.8, but its 95% interval reaches parity
    [check] = screen_checks(noisy, noisy, GateThresholds(), ("gender",), CENSUS.protected)
    assert check["passed"] and check["below"] and not check["significant"]
    [strict] = screen_checks(noisy, noisy, GateThresholds(require_significance=False), ("gender",), CENSUS.protected)
    assert not strict["passed"]
    # the interval's upper end just below parity: significant, flagged either way
    [edge] = screen_checks(point({"gender": (0.7, 0.5, 0.99)}), noisy, GateThresholds(), ("gender",), CENSUS.protected)
    assert edge["significant"] and not edge["passed"]


def test_an_attribute_without_two_groups_to_judge_is_not_flagged():
    [check] = screen_checks(point({"gender": (None,)}), point({"gender": (None,)}), GateThresholds(), ("gender",),
                            CENSUS.protected)
    assert check["passed"] and check["value"] is None


def test_a_prohibited_basis_as_an_input_is_disparate_treatment_but_age_under_the_elderly_rule_is_not():
    checks = screen_checks(point({}, ("education", "age", "marital-status")), point({}), GateThresholds(), (),
                           CENSUS.protected)
    assert [(c["attribute"], c["metric"], c["passed"]) for c in checks] == [("marital-status", "model_input", False)]


def search(points, chosen, best=0.90, tolerance=0.01, means=None):
    return {"chosen": chosen, "best_roc_auc": best, "tolerance": tolerance, "choose_from": ["forest"],
            "repeated": None if means is None else {"contenders": [{"name": n, "mean_worst_air": m} for n, m in means.items()]},
            "candidates": [{"name": n, "eligible": e, "family": "forest", "metrics": {"roc_auc": auc}, "worst_air": w}
                           for n, auc, w, e in points]}


@pytest.mark.parametrize("points, chosen, passes", [
    ([("a", 0.90, 0.40, True), ("b", 0.895, 0.43, True)], "b", True),       # the chosen is the least discriminatory
    ([("a", 0.90, 0.40, True), ("b", 0.895, 0.43, True)], "a", False),      # b: materially better (0.03) within tolerance
    ([("a", 0.90, 0.40, True), ("b", 0.895, 0.41, True)], "a", True),       # b: not materially better (0.01)
    ([("a", 0.90, 0.40, True), ("b", 0.85, 0.70, True)], "a", True),        # b: far less accurate, outside tolerance
    ([("a", 0.90, 0.40, True), ("seed", 0.95, 0.30, False)], "seed", False),  # the reference never ships
])
def test_the_search_step(points, chosen, passes):
    check = search_check(search(points, chosen), GateThresholds())
    assert (check["passed"] and check["eligible"]) is passes


def test_the_search_step_judges_the_rules_contenders_by_their_mean_over_the_splits():
    points = [("a", 0.90, 0.40, True), ("b", 0.895, 0.43, True)]
    # b beat a by 0.03 on the search's folds, by 0.01 over the three splits
    assert search_check(search(points, "a", means={"a": 0.41, "b": 0.42}), GateThresholds())["passed"]
    assert not search_check(search(points, "a", means={"a": 0.38, "b": 0.42}), GateThresholds())["passed"]


def test_the_status_of_each_outcome():
    screen = screen_checks(FLAGGED, FLAGGED, GateThresholds(), ("gender",), CENSUS.protected)
    least = search_check(search([("a", 0.90, 0.60, True)], "a"), GateThresholds())
    passed_over = search_check(search([("a", 0.90, 0.40, True), ("b", 0.90, 0.60, True)], "a"), GateThresholds())
    assert gate_record([least], GateThresholds())["status"] == "passed"
    assert gate_record(screen + [least], GateThresholds())["status"] == "flagged"
    justified = gate_record(screen + [least], GateThresholds(), "no alternative serves the need", "auditor")
    assert justified["status"] == "justified" and justified["override"]["accepted_by"] == "auditor"
    assert justified["override"]["failed_checks"] == ["gender adverse_impact_ratio = 0.600 [0.55, 0.66] (rule >= 0.8)"]
    # no justification ships a model when a less discriminatory alternative was passed over
    failed = GateRecord.from_dict(gate_record(screen + [passed_over], GateThresholds(), "a reason", "auditor"))
    assert failed.status == "failed" and not failed.shippable
    assert failed.failed_search == ["b has a worst adverse impact ratio 0.200 higher than a within the tolerance "
                                    "(rule <= 0.02)"]
    # a justification for a model that passed is not recorded: there is nothing to justify
    passing = gate_record([], GateThresholds(), "not needed")
    assert passing["override"] is None
    assert labels(GateRecord.from_dict(justified))["io.loanxai.fairness-gate.override-accepted-by"] == "auditor"
    assert labels(GateRecord.from_dict(passing)) == {"io.loanxai.fairness-gate": "passed"}


def build_contexts(tmp_path, classifier_dir, explainer_dir):
    """A copy of the build contexts, the services' holding the given artifacts (the console's: the
    build script copies the classifier's)."""
    models = tmp_path / "models"
    for service in ("loanclassifier", "explainer", "console"):
        shutil.copytree(ROOT / "models" / service, models / service,
                        ignore=shutil.ignore_patterns("artifacts", "wheels", "build-ca.crt"))
    for service, artifacts in (("loanclassifier", classifier_dir), ("explainer", explainer_dir)):
        shutil.copytree(artifacts, models / service / "artifacts")
    return models


def dry_run(models):
    return subprocess.run([str(ROOT / "scripts" / "build-images.sh"), "--dry-run"], capture_output=True, text=True,
                          env={**os.environ, "LOANXAI_MODELS_DIR": str(models)}, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def seed_model(tmp_path_factory):
    """Boston mortgages with the seed's model (race, sex and marital status as inputs), a
    justification given: the gate fails it all the same."""
    root = tmp_path_factory.mktemp("seed-model")
    manifest, _ = train(root / "loanclassifier", root / "explainer", LOANAPP, candidate="none", only=ONE_CANDIDATE,
                        accept_unfair="no justification ships disparate treatment", accepted_by="test suite")
    return root, manifest


@pytest.fixture(scope="module")
def flagged(tmp_path_factory):
    """Boston mortgages, the search's choice: the screen flags race (no justification yet)."""
    root = tmp_path_factory.mktemp("flagged")
    manifest, _ = train(root / "loanclassifier", root / "explainer", LOANAPP, only=ONE_CANDIDATE)
    return root, manifest


@pytest.fixture(scope="module")
def justified(tmp_path_factory):
    """The flagged model again, with a recorded business justification."""
    root = tmp_path_factory.mktemp("justified")
    manifest, _ = train(root / "loanclassifier", root / "explainer", LOANAPP, only=ONE_CANDIDATE,
                        accept_unfair="the search found no less discriminatory alternative", accepted_by="test suite")
    return root, manifest


def test_the_image_build_refuses_a_seed_model_naming_both_steps(seed_model, tmp_path):
    root, manifest = seed_model
    assert manifest.gate.status == "failed" and manifest.candidate == "seed"
    assert {"black is a model input (disparate treatment)", "male is a model input (disparate treatment)"} <= set(
        manifest.gate.failed_checks)
    result = dry_run(build_contexts(tmp_path, root / "loanclassifier", root / "explainer"))
    assert result.returncode == 1
    assert "step 1, the screen, flagged it" in result.stderr and "step 2, the search, failed" in result.stderr
    assert "seed is a reference, not a candidate" in result.stderr
    assert " build " not in result.stderr and not result.stdout  # nothing built


def test_the_image_build_refuses_a_flagged_model_saying_how_to_record_the_justification(flagged, tmp_path):
    root, manifest = flagged
    assert manifest.gate.status == "flagged", manifest.gate.checks
    result = dry_run(build_contexts(tmp_path, root / "loanclassifier", root / "explainer"))
    assert result.returncode == 1
    assert "step 1, the screen, flagged it (black adverse_impact_ratio = " in result.stderr
    assert 'make train ACCEPT_UNFAIR="<reason>"' in result.stderr
    with pytest.raises(GateError, match="no business justification is recorded"):
        require_shippable(root / "loanclassifier")


def test_a_justified_model_is_built_with_labels(justified, tmp_path):
    root, manifest = justified
    assert manifest.gate.status == "justified" and manifest.gate.shippable
    result = dry_run(build_contexts(tmp_path, root / "loanclassifier", root / "explainer"))
    assert result.returncode == 0, result.stderr
    assert "WARNING: the screen flagged the model" in result.stderr
    assert "io.loanxai.fairness-gate=justified" in result.stderr
    assert "io.loanxai.fairness-gate.override-reason=the\\ search\\ found" in result.stderr
    assert "io.loanxai.fairness-gate.override-accepted-by=test\\ suite" in result.stderr
    assert result.stdout.count("docker.io/loanxai/") == 3 and "console docker.io/loanxai/console:" in result.stdout


def test_a_justification_shows_in_the_metadata_and_the_start_up_log(justified, tmp_path):
    root, manifest = justified
    service = start_classifier(root / "loanclassifier", tmp_path)
    try:
        service.wait_ready()
        custom = service_metadata(service)
    finally:
        service.stop()
    assert custom["fairness_gate"] == "justified" and custom["candidate"] == manifest.candidate
    assert json.loads(custom["fairness_gate_override"])["accepted_by"] == "test suite"
    assert "black adverse_impact_ratio" in custom["fairness_gate_failed_checks"]
    assert float(custom["cutoff"]) == manifest.cutoff
    log = service.log_tail(200)
    assert "THE FAIRNESS SCREEN FLAGGED THIS MODEL" in log and "accepted by test suite" in log
