"""The explainer's serving class built in process: what it answers before and without a classifier."""
import dataclasses
import socket

import pytest
from seldon_core.flask_utils import SeldonMicroserviceException

from loanxai.config import ServiceSettings
from loanxai.serving.explainer import LoanExplainer


def closed_port():
    """A loopback port nobody listens on (bound, then released: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def explainer(loanapp_artifacts):
    settings = ServiceSettings(artifacts_dir=loanapp_artifacts.explainer_dir, metrics=False, classifier_retries=0,
                               records_url="off",
                               classifier_url=f"http://127.0.0.1:{closed_port()}/api/v1.0/predictions",
                               sampling_key_file=ServiceSettings.from_env().sampling_key_file)
    service = LoanExplainer(settings)
    service.load()
    return service


@pytest.fixture(scope="module")
def example(loanapp_artifacts):
    return loanapp_artifacts.classifier_manifest.dataset.example


def explain(explainer, message):
    with pytest.raises(SeldonMicroserviceException) as raised:
        explainer.predict_raw(message)
    return raised.value


def test_an_unreachable_classifier_is_a_503_naming_its_setting_not_its_address(explainer, example, caplog):
    error = explain(explainer, {"jsonData": example})
    assert error.status_code == 503 and error.reason == "CLASSIFIER_UNAVAILABLE"
    assert "LOAN_CLASSIFIER_URL" in error.message and "unreachable" in error.message
    assert "127.0.0.1" not in error.message and explainer.settings.classifier_url in caplog.text  # the log names it


def test_an_explainer_without_the_sampling_key_refuses_to_start(loanapp_artifacts):
    from loanxai.errors import SettingError

    with pytest.raises(SettingError, match="LOAN_SAMPLING_KEY_FILE is needed"):
        LoanExplainer(ServiceSettings(artifacts_dir=loanapp_artifacts.explainer_dir, metrics=False)).load()


def test_constructing_loads_nothing_and_a_record_not_migrated_stops_the_load(loanapp_artifacts, explainer, tmp_path):
    from loanxai.errors import RecordError

    settings = dataclasses.replace(explainer.settings, records_url=f"sqlite:///{tmp_path}/decisions.sqlite")
    service = LoanExplainer(settings)
    assert not service.loaded
    with pytest.raises(RecordError, match="run `loanxai records upgrade --record-url sqlite:///"):
        service.load()


@pytest.mark.parametrize("tags, words", [
    ({"kind": "story"}, "'kind' must be one of anchor, recourse"),
    ({"threshold": 2}, "'threshold' must be a number in (0.0, 1.0]"),
    ({"k": 2}, "'k' applies to kind 'recourse', not 'anchor'"),
    ({"colour": "red"}, "unknown explain parameter 'colour'"),
])
def test_bad_parameters_are_a_400_before_any_classifier_call(explainer, example, tags, words):
    error = explain(explainer, {"jsonData": example, "meta": {"tags": tags}})
    assert error.status_code == 400 and words in error.message


def test_one_application_per_request(explainer, example):
    error = explain(explainer, {"jsonData": [example, example]})
    assert error.status_code == 400 and "larger than the limit of 1" in error.message


def test_health_and_metadata_need_no_classifier(explainer, loanapp_artifacts):
    assert explainer.health_status()["explainer_version"] == loanapp_artifacts.explainer_manifest.version
    custom = explainer.init_metadata()["custom"]
    assert custom["explain_kinds"] == "anchor, recourse" and custom["default_threshold"] == "0.95"


def test_a_token_replaces_the_netrc_login_in_the_classifiers_calls(tmp_path, monkeypatch):
    from loanxai.serving.remote import RemoteClassifier

    netrc, key, token = tmp_path / "netrc", tmp_path / "key", tmp_path / "token"
    netrc.write_text("machine 127.0.0.1 login explainer password s3cret\n")
    netrc.chmod(0o600)
    key.write_text("a-sampling-key-of-enough-characters-0123456789\n")
    token.write_text("a.b.c\n")
    monkeypatch.setenv("NETRC", str(netrc))
    url = f"http://127.0.0.1:{closed_port()}/api/v1.0/predictions"
    assert "Basic" in RemoteClassifier(url, 1, 1, 0, key)._headers()["authorization"]  # the login alone
    headers = RemoteClassifier(url, 1, 1, 0, key, token)._headers()
    assert [v for k, v in headers.items() if k.lower() == "authorization"] == ["Bearer a.b.c"]
