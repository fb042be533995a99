"""The explainer as a real microservice, calling the real classifier over REST."""
import pytest
import requests

from loanxai.ops.services import free_port
from tests.conftest import EXAMPLE_APPLICATION, start_classifier, start_explainer


def explain(service, message):
    return requests.post(service.predictions_url, json=message, timeout=120)


def check_explanation(answer, classifier, application, names):
    assert answer["anchor"], "the anchor is empty"
    assert answer["anchor_text"] == " AND ".join(answer["anchor"])
    assert all(" = " in p or "<" in p or ">" in p for p in answer["anchor"])
    assert 0 <= answer["precision"] <= 1 and 0 <= answer["coverage"] <= 1
    assert answer["threshold_met"] == (answer["precision"] >= answer["threshold"])
    assert answer["model_calls"] >= 1 and answer["model_rows"] >= answer["model_calls"]
    assert answer["application"] == {n: application[n] for n in names}  # the model's inputs only
    # the explained class is the classifier's own decision for this application, at its cutoff
    verdict = requests.post(classifier.predictions_url, json={"jsonData": [application]}, timeout=30).json()
    assert [answer["prediction"]] == verdict["meta"]["tags"]["decisions"]
    # an anchor never names a declared basis (age, an input, is held at the applicant's value)
    assert not any(condition.split(" ")[0] in ("age", "gender", "ethnicity", "marital-status", "relationship")
                   for condition in answer["anchor"])


@pytest.fixture(scope="module")
def names(artifacts):
    return list(artifacts.classifier_manifest.schema.feature_names)


def test_explanation_of_a_human_readable_application(explainer, classifier, names):
    response = explain(explainer, {"jsonData": EXAMPLE_APPLICATION})
    assert response.status_code == 200, response.text
    answer = response.json()["jsonData"]
    check_explanation(answer, classifier, EXAMPLE_APPLICATION, names)
    assert answer["threshold"] == 0.95


def test_explanation_of_an_encoded_row_with_a_threshold(explainer, classifier, artifacts, names):
    reference, cutoff = artifacts.classifier_manifest.reference, artifacts.classifier_manifest.cutoff
    # an approved application under 62: the model rejects most, so a rejection may hold with no condition at all
    row = next(r for r, p in zip(reference["rows"], reference["probabilities"])
               if p[1] >= cutoff and r[names.index("age")] < 62)
    response = explain(explainer, {"data": {"ndarray": [row]}, "meta": {"tags": {"threshold": 0.8}}})
    assert response.status_code == 200, response.text
    answer = response.json()["jsonData"]
    assert answer["threshold"] == 0.8
    assert [answer["application"][n] for n in names] != row  # decoded, human-readable
    check_explanation(answer, classifier, answer["application"], names)


@pytest.mark.parametrize(
    "message, problem",
    [
        ({"jsonData": [EXAMPLE_APPLICATION, EXAMPLE_APPLICATION]}, "larger than the limit of 1"),
        ({"jsonData": EXAMPLE_APPLICATION | {"gender": "Martian"}}, "unknown category 'Martian'"),
        ({"jsonData": EXAMPLE_APPLICATION, "meta": {"tags": {"threshold": 2}}}, "'threshold' must be a number in (0.0, 1.0]"),
        ({"jsonData": EXAMPLE_APPLICATION, "meta": {"tags": {"speed": 1}}}, "unknown explain parameter 'speed'"),
    ],
)
def test_bad_requests_get_400(explainer, message, problem):
    response = explain(explainer, message)
    assert response.status_code == 400
    assert problem in response.json()["status"]["info"]


def test_health_and_metadata(explainer, classifier):
    assert requests.get(f"{explainer.url}/health/ping", timeout=10).text.strip() == "pong"
    assert requests.get(f"{explainer.url}/health/status", timeout=10).json()["jsonData"]["status"] == "ok"
    metadata = requests.get(f"{explainer.url}/api/v1.0/metadata", timeout=10).json()
    assert metadata["custom"]["classifier_url"] == classifier.predictions_url


def test_explainer_starts_without_classifier_answers_503_and_recovers(artifacts, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1.0/predictions"
    explainer = start_explainer(artifacts.explainer_dir, url, tmp_path / "e")
    classifier = None
    try:
        explainer.wait_ready()  # ready although nothing listens at the classifier's URL
        response = explain(explainer, {"jsonData": EXAMPLE_APPLICATION})
        assert response.status_code == 503
        assert response.json()["status"]["reason"] == "CLASSIFIER_UNAVAILABLE"
        # named by its setting, not its address (answers reach callers); the log names the address
        assert "LOAN_CLASSIFIER_URL" in response.json()["status"]["info"] and url not in response.json()["status"]["info"]
        assert url in explainer.log_tail(200)

        classifier = start_classifier(artifacts.classifier_dir, tmp_path / "c", http_port=port)
        classifier.wait_ready()
        assert explain(explainer, {"jsonData": EXAMPLE_APPLICATION}).status_code == 200

        classifier.stop()  # the classifier goes away mid-life ...
        response = explain(explainer, {"jsonData": EXAMPLE_APPLICATION})
        assert response.status_code == 503 and "LOAN_CLASSIFIER_URL" in response.json()["status"]["info"]
        classifier = start_classifier(artifacts.classifier_dir, tmp_path / "c2", http_port=port)
        classifier.wait_ready()  # ... and comes back
        response = explain(explainer, {"jsonData": EXAMPLE_APPLICATION})
        assert response.status_code == 200
        assert response.json()["jsonData"]["anchor"]
    finally:
        explainer.stop()
        if classifier is not None:
            classifier.stop()


def test_the_explainers_predictor_asks_each_distinct_row_once(classifier, census, artifacts):
    import os
    from pathlib import Path

    import numpy as np

    from loanxai.serving.remote import RemoteClassifier

    rows = artifacts.classifier_manifest.schema.encode_frame(census.test)[:30]
    X = np.concatenate([rows, rows[::-1], rows[:5]])  # 65 rows, 30 distinct, as an anchor's samples repeat
    remote = RemoteClassifier(classifier.predictions_url, 5, 60, 0, Path(os.environ["LOAN_SAMPLING_KEY_FILE"]))
    with remote.budget(60):
        approval, approved = remote.classify(X)
        assert (remote.calls, remote.rows) == (1, 30)
        # within one explanation a row answered before is not asked again: no call for these,
        again = remote.classify(rows[:10])
        assert (remote.calls, remote.rows) == (1, 30)
        np.testing.assert_array_equal(again[0], approval[:10])
        # and only the new rows of these
        more = artifacts.classifier_manifest.schema.encode_frame(census.test)[25:40]
        remote.classify(more)
        assert (remote.calls, remote.rows) == (2, 40)
    remote.classify(rows[:5])  # after it, asked again: the next explanation may be of another model
    assert (remote.calls, remote.rows) == (3, 45)
    decided = requests.post(classifier.predictions_url, json={"data": {"ndarray": X.tolist()}}, timeout=30).json()
    np.testing.assert_array_equal(approval, np.asarray(decided["data"]["ndarray"])[:, 1])
    assert [("approved" if a else "rejected") for a in approved] == decided["meta"]["tags"]["decisions"]


def test_an_explanation_past_its_budget_stops_even_when_every_row_was_answered_before(classifier, census, artifacts):
    import os
    import time
    from pathlib import Path

    from loanxai.errors import BudgetExceeded
    from loanxai.serving.remote import RemoteClassifier

    rows = artifacts.classifier_manifest.schema.encode_frame(census.test)[:10]
    remote = RemoteClassifier(classifier.predictions_url, 5, 60, 0, Path(os.environ["LOAN_SAMPLING_KEY_FILE"]))
    remote.classify(rows)  # the metadata, read once
    with remote.budget(1.0):
        remote.classify(rows)
        time.sleep(1.1)
        with pytest.raises(BudgetExceeded):
            remote.classify(rows[:5])  # nothing left to ask: the budget is checked all the same
    assert remote.calls == 2
