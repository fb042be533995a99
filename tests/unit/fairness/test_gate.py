"""The fairness gate on every path to production: recorded at training, refused by the image
build unless overridden, the override visible in the metadata, the log and the image labels."""
import json
import os
import shutil
import subprocess

import pytest
import requests

from loanxai.artifacts import REPO_ROOT
from loanxai.core.manifest import GateRecord
from loanxai.data.description import DATASETS_DIR
from loanxai.fairness.gate import GateError, GateSettings, evaluate_gate, gate_record, labels, require_shippable
from loanxai.training.train import train
from tests.conftest import start_classifier

ROOT = REPO_ROOT
FAILING = evaluate_gate({"gender": {"disparate_impact": 0.5}, "ethnicity": {"disparate_impact": 0.9}}, GateSettings())


def test_gate_record_and_override():
    failed = gate_record(FAILING, GateSettings())
    assert (failed["passed"], failed["status"], failed["override"]) == (False, "failed", None)
    overridden = gate_record(FAILING, GateSettings(), "pilot with manual review of every rejection", "auditor")
    assert overridden["status"] == "overridden"
    assert overridden["override"]["reason"] == "pilot with manual review of every rejection"
    assert overridden["override"]["accepted_by"] == "auditor"
    assert overridden["override"]["failed_checks"] == ["gender disparate_impact = 0.500 (rule >= 0.8)"]
    passing = gate_record(FAILING[1:], GateSettings(), "not needed")
    assert passing["status"] == "passed" and passing["override"] is None  # nothing to override
    assert labels(GateRecord.from_dict(overridden))["io.loanxai.fairness-gate.override-accepted-by"] == "auditor"
    assert labels(GateRecord.from_dict(passing)) == {"io.loanxai.fairness-gate": "passed"}


def test_protected_model_inputs_fail_the_gate():
    checks = evaluate_gate({}, GateSettings(), ("gender",))
    assert checks == [{"attribute": "gender", "metric": "model_input", "value": 1.0,
                       "rule": "protected attributes are not model inputs", "passed": False}]


def build_contexts(tmp_path, classifier_dir, explainer_dir):
    """A copy of the two build contexts holding the given artifacts."""
    models = tmp_path / "models"
    for service, artifacts in (("loanclassifier", classifier_dir), ("explainer", explainer_dir)):
        shutil.copytree(ROOT / "models" / service, models / service,
                        ignore=shutil.ignore_patterns("artifacts", "wheels", "build-ca.crt"))
        shutil.copytree(artifacts, models / service / "artifacts")
    return models


def dry_run(models):
    return subprocess.run([str(ROOT / "scripts" / "build-images.sh"), "--dry-run"], capture_output=True, text=True,
                          env={**os.environ, "LOANXAI_MODELS_DIR": str(models)}, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def seed_model(tmp_path_factory):
    """Boston mortgages with the seed's model: race, sex and marital status as inputs, so the gate fails."""
    root = tmp_path_factory.mktemp("seed-model")
    manifest, _ = train(root / "loanclassifier", root / "explainer", DATASETS_DIR / "loanapp.yaml", mitigation="none")
    return root, manifest


def test_the_image_build_refuses_a_model_that_failed_the_gate(seed_model, tmp_path):
    root, manifest = seed_model
    assert manifest.gate.status == "failed"
    result = dry_run(build_contexts(tmp_path, root / "loanclassifier", root / "explainer"))
    assert result.returncode == 1
    assert "FAILED the fairness gate: black is a model input" in result.stderr
    assert 'make train ACCEPT_UNFAIR="<reason>"' in result.stderr
    assert " build " not in result.stderr and not result.stdout  # nothing built
    with pytest.raises(GateError, match="FAILED the fairness gate"):
        require_shippable(root / "loanclassifier")


@pytest.fixture(scope="module")
def overridden(tmp_path_factory):
    """Boston mortgages with the seed's model (race, sex and marital status as inputs), shipped
    under a recorded override."""
    root = tmp_path_factory.mktemp("overridden")
    manifest, _ = train(root / "loanclassifier", root / "explainer", DATASETS_DIR / "loanapp.yaml", mitigation="none",
                        accept_unfair="comparison with the seed's model, never for decisions", accepted_by="test suite")
    return root, manifest


def test_an_override_is_recorded_and_the_build_accepts_it_with_labels(overridden, tmp_path):
    root, manifest = overridden
    gate = manifest.gate
    assert gate.status == "overridden" and manifest.candidate == "seed"
    assert {"black is a model input", "male is a model input"} <= set(gate.override["failed_checks"])
    result = dry_run(build_contexts(tmp_path, root / "loanclassifier", root / "explainer"))
    assert result.returncode == 0, result.stderr
    assert "WARNING: the model FAILED the fairness gate" in result.stderr
    assert "io.loanxai.fairness-gate=overridden" in result.stderr
    assert "io.loanxai.fairness-gate.override-reason=comparison\\ with\\ the\\ seed" in result.stderr
    assert "io.loanxai.fairness-gate.override-accepted-by=test\\ suite" in result.stderr
    assert result.stdout.count("docker.io/loanxai/") == 2


def test_an_override_shows_in_the_metadata_and_the_start_up_log(overridden, tmp_path):
    root, _ = overridden
    service = start_classifier(root / "loanclassifier", tmp_path)
    try:
        service.wait_ready()
        custom = requests.get(f"{service.url}/api/v1.0/metadata", timeout=10).json()["custom"]
    finally:
        service.stop()
    assert custom["fairness_gate"] == "overridden" and custom["candidate"] == "seed"
    assert json.loads(custom["fairness_gate_override"])["accepted_by"] == "test suite"
    assert "black is a model input" in custom["fairness_gate_failed_checks"]
    assert "THIS MODEL FAILED THE FAIRNESS GATE" in service.log_tail(200) and "accepted by test suite" in service.log_tail(200)
