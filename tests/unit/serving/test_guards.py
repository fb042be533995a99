"""The request guards around the seldon-core wrapper's own Flask app, in process (Flask's test client)."""
import pytest
from seldon_core import wrapper

from loanxai.config import ServiceSettings
from loanxai.serving.classifier import LoanClassifier
from loanxai.serving.server.guards import harden
from loanxai.serving.server.metrics import ProcessMetrics

LIMIT = 10_000


@pytest.fixture(scope="module")
def state():
    return {"draining": False}


@pytest.fixture(scope="module")
def client(loanapp_artifacts, tmp_path_factory, state):
    classifier = LoanClassifier(ServiceSettings(artifacts_dir=loanapp_artifacts.classifier_dir, metrics=False, records_url="off"))
    classifier.load()  # as our server does, before the wrapper builds its app
    metrics = ProcessMetrics(str(tmp_path_factory.mktemp("metrics")))
    app = harden(wrapper.get_rest_microservice(classifier, metrics), LIMIT, (), lambda: state["draining"], metrics=False)
    return app.test_client()


@pytest.fixture(scope="module")
def example(loanapp_artifacts):
    return loanapp_artifacts.classifier_manifest.dataset.example


def info(response):
    return response.get_json()["status"]


def test_a_good_request_is_the_wrappers_answer(client, example):
    response = client.post("/api/v1.0/predictions", json={"jsonData": [example]})
    assert response.status_code == 200 and response.get_json()["data"]["names"] == ["rejected", "approved"]


@pytest.mark.parametrize("method, path, status, reason, words", [
    ("get", "/api/v1.0/predictions", 405, "METHOD_NOT_ALLOWED", "takes POST only, not GET"),
    ("post", "/health/ping", 405, "METHOD_NOT_ALLOWED", "takes GET only, not POST"),
    ("get", "/no/such/path", 404, "NOT_FOUND", "no such path: /no/such/path"),
])
def test_paths_and_methods(client, method, path, status, reason, words):
    response = getattr(client, method)(path)
    assert response.status_code == status and info(response)["reason"] == reason and words in info(response)["info"]
    if status == 405:
        assert response.headers["Allow"] in ("GET", "POST")


@pytest.mark.parametrize("body, words", [
    ('{"jsonData": {}, "jsonData": []}', "key 'jsonData' appears twice"),
    ("[" * 5000, "nested too deeply"),
    ('{"jsonData": ', "invalid JSON"),
])
def test_json_is_read_strictly(client, body, words):
    response = client.post("/api/v1.0/predictions", data=body, content_type="application/json")
    assert response.status_code == 400 and words in info(response)["info"]
    assert info(response)["reason"] == "MICROSERVICE_BAD_DATA"


def test_a_body_over_the_limit_is_refused_before_it_is_read(client):
    response = client.post("/api/v1.0/predictions", data="x" * (LIMIT + 1), content_type="application/json")
    assert response.status_code == 413 and "LOAN_MAX_BODY_BYTES" in info(response)["info"]


def test_no_cors_unless_configured(client, example):
    response = client.post("/api/v1.0/predictions", json={"jsonData": [example]}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_readiness_fails_while_draining_with_retry_after(client, state):
    assert client.get("/health/status").status_code == 200
    state["draining"] = True
    try:
        response = client.get("/health/status")
        assert response.status_code == 503 and info(response)["reason"] == "SHUTTING_DOWN"
        assert response.headers["Retry-After"] == "1"
        assert client.get("/health/ping").status_code == 200  # liveness is not readiness
    finally:
        state["draining"] = False
