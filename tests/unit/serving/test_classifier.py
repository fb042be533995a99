"""The classifier's serving class built in process, with settings passed in (and, as Seldon's
wrapper builds it, with none)."""
import importlib.util
import json
import re

import numpy as np
import pytest
from google.protobuf import json_format
from seldon_core.flask_utils import SeldonMicroserviceException
from seldon_core.proto import prediction_pb2

from loanxai.artifacts import MODELS_DIR
from loanxai.config import ServiceSettings
from loanxai.errors import ArtifactError, RecordError
from loanxai.records.store import open_store
from loanxai.serving.classifier import LoanClassifier


def loaded(settings=None):
    service = LoanClassifier(settings)
    service.load()
    return service


@pytest.fixture(scope="module")
def classifier(loanapp_artifacts):
    return loaded(ServiceSettings(artifacts_dir=loanapp_artifacts.classifier_dir, metrics=False, records_url="off",
                                  max_batch_rows=10))


@pytest.fixture(scope="module")
def example(loanapp_artifacts):
    return loanapp_artifacts.classifier_manifest.dataset.example


def test_every_form_answers_the_reference_probabilities(classifier, loanapp_artifacts):
    manifest = loanapp_artifacts.classifier_manifest
    rows, expected = manifest.reference["rows"][:5], np.asarray(manifest.reference["probabilities"][:5])
    records = manifest.schema.decode(np.asarray(rows, dtype=float))
    names = list(manifest.schema.feature_names)
    for message in ({"data": {"ndarray": rows}}, {"jsonData": records},
                    {"data": {"names": names, "ndarray": [[r[n] for n in names] for r in records]}}):
        answer = classifier.predict_raw(message)
        assert answer["data"]["names"] == ["rejected", "approved"]
        np.testing.assert_allclose(answer["data"]["ndarray"], expected, rtol=0, atol=1e-12)
        assert len(answer["meta"]["puid"]) == 32


def test_a_grpc_message_gets_a_grpc_answer(classifier, example):
    request = json_format.ParseDict({"jsonData": [example]}, prediction_pb2.SeldonMessage())
    answer = classifier.predict_raw(request)
    assert isinstance(answer, prediction_pb2.SeldonMessage)
    assert json_format.MessageToDict(answer)["data"]["names"] == ["rejected", "approved"]


def test_reasons_add_up_and_tags_come_back(classifier, example):
    answer = classifier.predict_raw({"jsonData": [example], "meta": {"puid": "p-1", "tags": {"reasons": 2, "batch": 7}}})
    [decision] = answer["meta"]["tags"]["reasons"]
    assert answer["meta"]["puid"] == "p-1" and answer["meta"]["tags"]["batch"] == 7
    assert decision["base_value"] + sum(decision["contributions"].values()) == pytest.approx(answer["data"]["ndarray"][0][1])
    assert len(decision["reasons"]) <= 2


def test_decisions_are_at_the_manifests_cutoff(classifier, loanapp_artifacts):
    manifest = loanapp_artifacts.classifier_manifest
    answers = [classifier.predict_raw({"data": {"ndarray": manifest.reference["rows"][i:i + 10]}}) for i in range(0, 256, 10)]
    approval = np.concatenate([np.asarray(a["data"]["ndarray"])[:, 1] for a in answers])
    assert {a["meta"]["tags"]["cutoff"] for a in answers} == {manifest.cutoff} and classifier.cutoff == manifest.cutoff
    decisions = [d for a in answers for d in a["meta"]["tags"]["decisions"]]
    assert decisions == ["approved" if p >= manifest.cutoff else "rejected" for p in approval]
    # the cutoff is the policy's, not 0.5: some applications between the two exist and are decided by it
    assert manifest.cutoff != 0.5 and any(min(0.5, manifest.cutoff) <= p < max(0.5, manifest.cutoff) for p in approval)


@pytest.mark.parametrize("message, words", [
    (lambda e: {"jsonData": []}, "empty batch"),
    (lambda e: {"jsonData": [e] * 11}, "larger than the limit of 10 (LOAN_MAX_BATCH_ROWS)"),
    (lambda e: {"jsonData": {"loanamt": 1}}, "missing feature"),
    (lambda e: {"data": {"ndarray": [[1]]}}, "wrong number of features"),
    (lambda e: {"jsonData": [e], "meta": {"tags": {"purpose": "audit"}}}, "'purpose' must be one of"),
])
def test_bad_input_is_a_400_naming_the_problem(classifier, example, message, words):
    with pytest.raises(SeldonMicroserviceException) as raised:
        classifier.predict_raw(message(example))
    assert raised.value.status_code == 400 and words in raised.value.message
    assert raised.value.to_dict()["status"]["reason"] == "MICROSERVICE_BAD_DATA"


def test_health_and_metadata(classifier, loanapp_artifacts):
    assert classifier.health_status()["status"] == "ok" and classifier.prediction_path == "treelite"
    metadata = classifier.init_metadata()
    assert metadata["versions"] == [loanapp_artifacts.classifier_manifest.version]
    assert json.loads(metadata["custom"]["example_application"]) == loanapp_artifacts.classifier_manifest.dataset.example
    custom = metadata["custom"]
    assert custom["max_batch_rows"] == "10" and custom["fairness_gate"] == loanapp_artifacts.classifier_manifest.gate.status
    assert float(custom["cutoff"]) == loanapp_artifacts.classifier_manifest.cutoff
    assert json.loads(custom["decision_policy"]) == {"approval_rate": "base"}


def test_readiness_fails_when_the_model_no_longer_gives_its_reference_answers(loanapp_artifacts):
    drifted = loaded(ServiceSettings(artifacts_dir=loanapp_artifacts.classifier_dir, metrics=False, records_url="off"))
    drifted.predict_proba = lambda X: np.tile([0.5, 0.5], (len(X), 1))  # what a corrupted model would answer
    with pytest.raises(SeldonMicroserviceException) as raised:
        drifted.health_status()
    assert raised.value.status_code == 500 and raised.value.reason == "MODEL_PARITY_FAILED"


def test_the_scikit_learn_path_can_be_asked_for(loanapp_artifacts):
    settings = ServiceSettings(artifacts_dir=loanapp_artifacts.classifier_dir, metrics=False, records_url="off",
                               prediction_path="scikit-learn")
    assert loaded(settings).prediction_path == "scikit-learn"


def test_with_no_arguments_it_reads_the_environment(loanapp_artifacts, monkeypatch):
    monkeypatch.setenv("LOAN_ARTIFACTS_DIR", str(loanapp_artifacts.classifier_dir))
    monkeypatch.setenv("LOAN_METRICS", "off")
    monkeypatch.setenv("LOAN_MAX_BATCH_ROWS", "3")
    monkeypatch.setenv("LOAN_RECORDS_URL", "off")
    service = loaded()
    assert service.settings.max_batch_rows == 3 and service.manifest.directory == loanapp_artifacts.classifier_dir


def test_constructing_loads_nothing_and_loading_names_what_is_missing(tmp_path):
    service = LoanClassifier(ServiceSettings(artifacts_dir=tmp_path / "nowhere", records_url="off"))
    assert not service.loaded
    with pytest.raises(ArtifactError, match="nowhere"):
        service.load()


def test_loading_twice_loads_once(classifier):
    model = classifier.model
    classifier.load()
    assert classifier.model is model


def test_the_metadata_asked_before_loading_is_the_loaded_models(loanapp_artifacts):
    # Seldon's wrapper builds its metadata when it builds its app, before its workers load
    service = LoanClassifier(ServiceSettings(artifacts_dir=loanapp_artifacts.classifier_dir, metrics=False,
                                             records_url="off"))
    assert service.init_metadata()["versions"] == [loanapp_artifacts.classifier_manifest.version]


def test_a_record_not_migrated_stops_the_load_naming_the_command(loanapp_artifacts, tmp_path):
    url = f"sqlite:///{tmp_path}/decisions.sqlite"
    settings = ServiceSettings(artifacts_dir=loanapp_artifacts.classifier_dir, metrics=False, records_url=url)
    command = f"run `loanxai records upgrade --record-url sqlite:///{tmp_path.resolve()}/decisions.sqlite`"
    with pytest.raises(RecordError, match=r"is at migration none, the code needs \w+: " + re.escape(command)):
        LoanClassifier(settings).load()
    open_store(url)  # what `loanxai records upgrade` does
    assert loaded(settings).store.shown_url == url


def test_the_thin_module_reads_the_folder_beside_it():
    spec = importlib.util.spec_from_file_location("LoanClassifier", MODELS_DIR / "loanclassifier" / "LoanClassifier.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert issubclass(module.LoanClassifier, LoanClassifier)
    assert module.LoanClassifier.default_artifacts == MODELS_DIR / "loanclassifier" / "artifacts"
