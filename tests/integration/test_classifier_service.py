"""The classifier as a real microservice process (the seldon-core wrapper's app, loanxai-microservice),
called over HTTP on loopback."""

import json
import os
import subprocess

import numpy as np
import pytest
import requests

from loanxai.ops.services import classifier_service, free_port
from loanxai.records import migrations
from loanxai.records.store import DecisionStore
from tests.conftest import EXAMPLE_APPLICATION, REJECTED_APPLICATION, eventually, settle, start_classifier


@pytest.fixture(scope="module")
def schema(artifacts):
    return artifacts.classifier_manifest.schema


@pytest.fixture(scope="module")
def names(schema):
    """The served model's inputs: the search's choice among the description's features."""
    return list(schema.feature_names)


def post(service, message):
    return requests.post(service.predictions_url, json=message, timeout=30)


def probabilities(response):
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"]["names"] == ["rejected", "approved"]
    return np.asarray(body["data"]["ndarray"])


def test_every_input_form_gives_the_same_probabilities(classifier, schema, names, artifacts):
    reference = artifacts.classifier_manifest.reference
    # applicants under 62: the reference probabilities are the pipeline's, before the elderly rule
    young = [i for i, row in enumerate(reference["rows"]) if row[names.index("age")] < 62][:3]
    encoded = [reference["rows"][i] for i in young]
    records = schema.decode(np.asarray(encoded))
    expected = np.asarray([reference["probabilities"][i] for i in young])
    forms = [
        {"data": {"ndarray": encoded}},
        {"data": {"tensor": {"shape": [3, len(names)], "values": np.ravel(encoded).tolist()}}},
        {"data": {"names": names, "ndarray": [[r[n] for n in names] for r in records]}},
        {"jsonData": records},
    ]
    for message in forms:
        np.testing.assert_allclose(probabilities(post(classifier, message)), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0)


def test_form_encoded_json_as_seldon_microservice_client_sends(classifier):
    response = requests.post(
        f"{classifier.url}/predict", data={"json": json.dumps({"jsonData": EXAMPLE_APPLICATION})}, timeout=30
    )
    assert probabilities(response).shape == (1, 2)


def test_the_description_s_other_features_are_accepted_and_ignored(classifier, schema, names):
    ignored = list(schema.ignored)
    assert ignored == [n for n in EXAMPLE_APPLICATION if n not in names and n not in schema.groups]
    plain = {k: v for k, v in EXAMPLE_APPLICATION.items() if k not in ignored}
    assert probabilities(post(classifier, {"jsonData": [plain]})).tolist() == probabilities(
        post(classifier, {"jsonData": [EXAMPLE_APPLICATION]})).tolist()


def test_metadata_lists_inputs_and_outputs(classifier, artifacts, names):
    body = requests.get(f"{classifier.url}/api/v1.0/metadata", timeout=10).json()
    assert body["name"] == "loanclassifier"
    assert body["versions"] == [artifacts.classifier_manifest.files["model.dill"][:12]]
    assert body["outputs"][0]["schema"]["names"] == ["rejected", "approved"]
    ndarray_input = next(i for i in body["inputs"] if i["messagetype"] == "ndarray")
    assert ndarray_input["schema"]["names"] == names
    json_input = next(i for i in body["inputs"] if i["messagetype"] == "jsonData")
    assert "gender" not in json_input["schema"]["feature_names"]  # a protected attribute, never a model input
    assert json_input["schema"]["protected"]["gender"] == ["Female", "Male"]
    assert float(body["custom"]["cutoff"]) == artifacts.classifier_manifest.cutoff


def test_health_endpoints(classifier):
    assert requests.get(f"{classifier.url}/health/ping", timeout=10).text.strip() == "pong"
    status = requests.get(f"{classifier.url}/health/status", timeout=10)
    assert status.status_code == 200
    assert status.json()["jsonData"]["status"] == "ok"


def metric(service, name):
    text = requests.get(service.metrics_url, timeout=10).text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")]
    return sum(values)


def test_custom_metrics_count_requests_and_approvals(classifier, schema):
    approved = EXAMPLE_APPLICATION | {
        "marital-status": "Married-civ-spouse",
        "relationship": "Husband",
        "gender": "Male",
        "education": "Doctorate",
        "education-num": 16,
        "capital-gain": 99999,
    }
    settle()
    before = {
        name: metric(classifier, name) for name in ("loan_requests_total", "loan_applications_total", "loan_approvals_total")
    }
    answer = post(classifier, {"jsonData": [approved, REJECTED_APPLICATION, approved]}).json()
    assert answer["meta"]["tags"]["decisions"] == ["approved", "rejected", "approved"]
    assert eventually(lambda: metric(classifier, "loan_requests_total") == before["loan_requests_total"] + 1)
    assert metric(classifier, "loan_applications_total") == before["loan_applications_total"] + 3
    assert metric(classifier, "loan_approvals_total") == before["loan_approvals_total"] + 2


@pytest.mark.parametrize(
    "message, problem",
    [
        (lambda names, row: {"data": {"ndarray": [row[:5]]}}, "wrong number of features in row 0: got 5, expected "),
        (lambda names, row: {"data": {"ndarray": [row, row[:3]]}}, "wrong number of features in row 1: got 3, expected "),
        (lambda names, row: {"data": {"names": ["salary", *names[1:]], "ndarray": [row]}}, "unknown feature 'salary'"),
        (lambda names, row: {"jsonData": [EXAMPLE_APPLICATION | {"gender": "Martian"}]},
         "unknown category 'Martian' for 'gender' in row 0"),
        (lambda names, row: {"data": {"names": [*names, "gender"], "ndarray": [row + [7]]}},
         "unknown category 7 for 'gender' in row 0; expected one of: Female, Male"),  # named: a value, not an index
        (lambda names, row: {"jsonData": [EXAMPLE_APPLICATION | {"age": "fifty"}]},
         "non-numeric value 'fifty' for numeric feature 'age'"),
        (lambda names, row: {"jsonData": [EXAMPLE_APPLICATION | {"age": None}]}, "missing value for 'age' in row 0"),
        (lambda names, row: {"jsonData": [{k: v for k, v in EXAMPLE_APPLICATION.items() if k != "age"}]},
         "missing feature 'age' in row 0"),
        (lambda names, row: {"data": {"ndarray": []}}, "empty batch"),
        (lambda names, row: {"jsonData": [EXAMPLE_APPLICATION] * 101}, "batch of 101 rows is larger than the limit of 100"),
        (lambda names, row: {"data": {"tensor": {"shape": [2, len(names)], "values": row}}},
         "must hold rows x columns = "),
        (lambda names, row: {"strData": "hello"}, "needs 'data'"),
    ],
)
def test_bad_input_gets_400_naming_the_problem(classifier, names, message, problem):
    response = post(classifier, message(names, [EXAMPLE_APPLICATION[name] for name in names]))
    assert response.status_code == 400, response.text
    status = response.json()["status"]
    assert problem in status["info"]
    assert status["reason"] == "MICROSERVICE_BAD_DATA"
    assert "Traceback" not in response.text
    # and the service keeps serving
    assert post(classifier, {"jsonData": [EXAMPLE_APPLICATION]}).status_code == 200


def test_non_json_body_gets_400(classifier):
    response = requests.post(
        classifier.predictions_url, data="not json", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.status_code == 400


def test_refuses_to_start_on_a_tampered_artifact(artifacts_copy, tmp_path):
    with open(artifacts_copy.classifier_dir / "model.dill", "ab") as handle:
        handle.write(b"\0")
    service = start_classifier(artifacts_copy.classifier_dir, tmp_path)
    try:
        assert service.process.wait(timeout=60) != 0
    finally:
        service.stop()
    assert "checksum mismatch for" in service.log_tail(50) and "model.dill" in service.log_tail(50)


def test_refuses_to_start_on_a_scikit_learn_version_mismatch(artifacts_copy, tmp_path):
    path = artifacts_copy.classifier_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["versions"]["scikit-learn"] = "0.24.2"
    path.write_text(json.dumps(manifest))
    service = start_classifier(artifacts_copy.classifier_dir, tmp_path)
    try:
        assert service.process.wait(timeout=60) != 0
    finally:
        service.stop()
    assert "scikit-learn 0.24.2 when trained" in service.log_tail(50)


def test_refuses_to_start_on_a_record_not_at_its_migrations_and_leaves_it(artifacts, tmp_path):
    # the service checks the record; migrating it is `loanxai records upgrade`'s (the init container's)
    url = f"sqlite:///{tmp_path}/decisions.sqlite"
    engine = DecisionStore(url).engine
    migrations.upgrade(engine, "0005")
    service = classifier_service(free_port(), free_port(), {"LOAN_ARTIFACTS_DIR": str(artifacts.classifier_dir),
                                                            "LOAN_RECORDS_URL": url})
    # started as the harness would, without the migration it runs first
    result = subprocess.run(service.command(), cwd=service.folder, env={**os.environ, **service.env},
                            capture_output=True, text=True, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out[-3000:]
    assert (f"the decision record at {url} is at migration 0005, the code needs {migrations.head()}: run "
            f"`loanxai records upgrade --record-url sqlite:///{tmp_path.resolve()}/decisions.sqlite`") in out
    assert "Traceback" not in out
    assert migrations.revision(engine) == "0005"
