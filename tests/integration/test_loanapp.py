"""The second dataset end to end: Boston mortgage applications (loanapp), trained, served by
both real services, called with named fields and encoded rows, explained, and reported on."""
import json

import numpy as np
import pytest
import requests

from loanxai.core.cli import main as loanxai
from loanxai.data.dataset import load_trained_dataset
from loanxai.report import build
from loanxai.report.artifacts import ReportOptions
from tests.conftest import running, start_classifier, start_explainer


@pytest.fixture(scope="module")
def trained(loanapp_artifacts):
    return loanapp_artifacts.classifier_dir.parent, loanapp_artifacts.classifier_manifest


@pytest.fixture(scope="module")
def services(trained, tmp_path_factory):
    root, _ = trained
    logs = tmp_path_factory.mktemp("loanapp-logs")
    classifier = start_classifier(root / "loanclassifier", logs)
    # the two share the record, as make run has them: the clients explain a decision by its id
    explainer = start_explainer(root / "explainer", classifier.predictions_url, logs,
                                LOAN_RECORDS_URL=classifier.env["LOAN_RECORDS_URL"])
    with running(classifier, explainer) as services:
        yield services


def post(url, message):
    return requests.post(url, json=message, timeout=120)


def test_manifest_records_the_dataset(trained):
    _, manifest = trained
    dataset = manifest.dataset
    assert dataset.name == "loanapp" and dataset.label["column"] == "action"
    assert dataset.protected == ("black", "hispan", "male", "married") and dataset.protected_inputs == ()
    assert len(next(iter(dataset.sources.values()))) == 64  # the sha256 of the bz2 file
    assert set(manifest.schema.feature_names) <= {c["name"] for c in dataset.description["features"]}
    assert {"dep", "unit", "gdlin"} & set(manifest.schema.feature_names) <= manifest.schema.nullable
    assert manifest.metrics["n_rows"] == dataset.rows["test"] == 398
    # the lenders approved 88%: the model decides at the cutoff that approves as many
    assert manifest.metrics["predicted_approval_rate"] == pytest.approx(0.88, abs=0.04)
    assert manifest.metrics["roc_auc"] > 0.75


def test_metadata_serves_the_schema_and_the_example(services, trained):
    classifier, _ = services
    metadata = requests.get(f"{classifier.url}/api/v1.0/metadata", timeout=10).json()
    assert metadata["custom"]["dataset"] == "loanapp"
    example = json.loads(metadata["custom"]["example_application"])
    assert example == trained[1].dataset.example
    names = next(i for i in metadata["inputs"] if i["messagetype"] == "ndarray")["schema"]["names"]
    assert names == list(trained[1].schema.feature_names)


def test_named_fields_and_encoded_rows_give_the_reference_answers(services, trained):
    classifier, _ = services
    manifest = trained[1]
    schema = manifest.schema
    rows = np.asarray(manifest.reference["rows"][:5], dtype=float)  # null: a missing value
    expected = np.asarray(manifest.reference["probabilities"][:5])
    records = schema.decode(rows)
    names = list(schema.feature_names)
    for message in ({"jsonData": records},
                    {"data": {"names": names, "ndarray": [[r[n] for n in names] for r in records]}},
                    {"data": {"ndarray": manifest.reference["rows"][:5]}}):
        response = post(classifier.predictions_url, message)
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(response.json()["data"]["ndarray"], expected, rtol=0, atol=1e-12)


def test_protected_attributes_are_accepted_and_checked(services, trained):
    classifier, _ = services
    example = trained[1].dataset.example
    assert {"black", "male"} <= set(example)
    with_groups = post(classifier.predictions_url, {"jsonData": [example]})
    inputs = {k: v for k, v in example.items() if k in trained[1].schema.feature_names}
    without = post(classifier.predictions_url, {"jsonData": [inputs]})
    assert with_groups.json()["data"] == without.json()["data"]
    response = post(classifier.predictions_url, {"jsonData": [example | {"black": "maybe"}]})
    assert response.status_code == 400 and "unknown category 'maybe' for 'black'" in response.json()["status"]["info"]


def test_missing_values_at_serving(services, trained):
    classifier, _ = services
    example = trained[1].dataset.example
    # dependants had missing values in training: null is the training median
    assert post(classifier.predictions_url, {"jsonData": [example | {"dep": None}]}).status_code == 200
    response = post(classifier.predictions_url, {"jsonData": [example | {"gdlin": None}]})
    assert response.status_code == 200
    # the loan amount never did: null is refused
    response = post(classifier.predictions_url, {"jsonData": [example | {"loanamt": None}]})
    assert response.status_code == 400 and "missing value for 'loanamt' in row 0" in response.json()["status"]["info"]


def test_explanations_of_named_and_encoded_applications(services, trained):
    classifier, explainer = services
    example = trained[1].dataset.example
    for message in ({"jsonData": example | {"dep": None}},
                    {"data": {"ndarray": [trained[1].reference["rows"][0]]}, "meta": {"tags": {"threshold": 0.9}}}):
        response = post(explainer.predictions_url, message)
        assert response.status_code == 200, response.text
        answer = response.json()["jsonData"]
        assert answer["prediction"] in ("approved", "rejected") and answer["model_calls"] >= 1
        assert all(part.split()[0] in list(trained[1].schema.feature_names) for part in answer["anchor"])


def test_the_clients_use_the_datasets_example(services, capsys):
    classifier, explainer = services
    assert loanxai(["client", "--classifier-url", classifier.url, "--explainer-url", explainer.url]) == 0
    out = capsys.readouterr().out
    assert "Application: " in out and "loanamt" in out
    assert out.count("model calls") == 2


def test_report_on_the_second_dataset(trained, tmp_path):
    root, manifest = trained
    config = ReportOptions(tmp_path, root / "loanclassifier", root / "explainer", sample=200,
                                 explanations_per_group=1, permutation_repeats=1)
    content = build.build_report(config)
    assert set(content["groups"]) == {"black", "hispan", "male", "married"}
    assert content["skewed_sample_trap"]["rare_decision"] == "rejected"
    assert len(content["explanations"]["permutation_importance"]["features"]) == manifest.schema.n_features
    assert (tmp_path / "report.html").read_text().count("data:image/png;base64,") >= 5
    assert load_trained_dataset(manifest).description.name == "loanapp"
