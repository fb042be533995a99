"""No way around the record, and no caller can hurt another: the probes of the third round
(2026-12-06), against the real classifier and explainer with SQLite and PostgreSQL records.

Before: any caller got unrecorded decisions by tagging them ``purpose: explanation``; a lone
surrogate or a NUL in an id was a 500 or a 503 for a third of the requests committed beside it;
a retry sending 52.0 for 52 was a conflict; the explainer's open health named the classifier's
URL; a header past gunicorn's limit got its HTML page.
"""
import threading
import uuid
from collections import Counter

import pytest
import requests

from loanxai.config import ServiceSettings
from loanxai.records.store import DecisionStore
from loanxai.serving.auth import SAMPLING_HEADER
from tests.conftest import EXAMPLE_APPLICATION, REJECTED_APPLICATION, running, start_classifier
from tests.reliability.test_reliability import FIGURES, counted

pytestmark = pytest.mark.reliability


def sampling_key() -> str:
    return ServiceSettings.from_env().sampling_key_file.read_text().strip()


def post(service, message, **headers):
    return requests.post(service.predictions_url, json=message, headers=headers, timeout=30)


def test_sampled_rows_only_for_the_explainers_key_and_never_a_decision(classifier):
    store = DecisionStore(classifier.env["LOAN_RECORDS_URL"])
    decided_before = counted(classifier, "loan_applications_total")
    sampled_before = counted(classifier, "loan_sampled_rows_total")
    puid = uuid.uuid4().hex
    asked = {"jsonData": [REJECTED_APPLICATION] * 3, "meta": {"puid": puid, "tags": {"purpose": "explanation"}}}
    for headers in ({}, {SAMPLING_HEADER: "guessed"}, {SAMPLING_HEADER: ""}):
        refused = post(classifier, asked, **headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["status"]["reason"] == "FORBIDDEN" and "only the explainer" in refused.json()["status"]["info"]
        assert "data" not in refused.json()
    # the explainer's key: probabilities and decisions, no reasons, nothing recorded, counted as sampled
    sampled = post(classifier, asked, **{SAMPLING_HEADER: sampling_key()})
    assert sampled.status_code == 200, sampled.text
    tags = sampled.json()["meta"]["tags"]
    assert tags["decisions"] == ["rejected"] * 3 and "reasons" not in tags and "application_ids" not in tags
    with_reasons = {**asked, "meta": {"tags": {"purpose": "explanation", "reasons": True}}}
    refused = post(classifier, with_reasons, **{SAMPLING_HEADER: sampling_key()})
    assert refused.status_code == 400 and "no principal reasons" in refused.json()["status"]["info"]
    assert store.decisions_of_request(puid) == []
    assert counted(classifier, "loan_applications_total") == decided_before
    assert wait_for(lambda: counted(classifier, "loan_sampled_rows_total") == sampled_before + 3)


def wait_for(check, seconds=10.0):
    from tests.conftest import eventually

    return eventually(check, seconds)


#: what one caller sends beside the others: each is refused 400 naming its field, and hurts nobody
HOSTILE = {
    "a lone surrogate as an application id": ({"application_ids": ["\ud800"]}, None, "application_ids' item 0"),
    "a NUL in an application id": ({"application_ids": ["a\x00b"]}, None, "application_ids' item 0"),
    "a lone surrogate as the puid": ({}, "\ud800", "'meta.puid'"),
    "a NUL in the puid": ({}, "p\x00", "'meta.puid'"),
    "an escape sequence in the puid": ({}, "p\x1b[2J", "'meta.puid'"),
}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_bad_id_is_a_400_and_fails_no_other_request(artifacts, tmp_path, request, database):
    url = (f"sqlite:///{tmp_path}/decisions.sqlite" if database == "sqlite"
           else request.getfixturevalue("postgres").create_database(f"bad_ids_{uuid.uuid4().hex[:8]}"))
    service = start_classifier(artifacts.classifier_dir, tmp_path, LOAN_RECORDS_URL=url, GUNICORN_THREADS="8")
    innocent: list[tuple[str, int]] = []
    refused: list[tuple[str, int, str]] = []
    stop = threading.Event()

    def innocents():
        session = requests.Session()
        while not stop.is_set():
            puid = uuid.uuid4().hex
            answer = session.post(service.predictions_url, json={"jsonData": [EXAMPLE_APPLICATION, REJECTED_APPLICATION],
                                                                 "meta": {"puid": puid}}, timeout=30)
            innocent.append((puid, answer.status_code))

    def hostile():
        session = requests.Session()
        for _ in range(15):
            for name, (tags, puid, field) in HOSTILE.items():
                meta = {"tags": tags} | ({"puid": puid} if puid is not None else {})
                answer = session.post(service.predictions_url, json={"jsonData": [EXAMPLE_APPLICATION], "meta": meta},
                                      timeout=30)
                refused.append((name, answer.status_code, answer.text))
                assert field in answer.json()["status"]["info"], (name, answer.text)

    with running(service):
        threads = [threading.Thread(target=innocents) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            hostile()
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert Counter(status for _, status, _ in refused) == Counter({400: 15 * len(HOSTILE)})
    assert Counter(status for _, status in innocent) == Counter({200: len(innocent)}), Counter(s for _, s in innocent)
    store = DecisionStore(url)
    with store.engine.connect() as connection:
        from sqlalchemy import func, select

        from loanxai.records.tables import decisions

        recorded = dict(connection.execute(select(decisions.c.request_id, func.count())
                                           .group_by(decisions.c.request_id)).all())
    assert all(recorded.get(puid) == 2 for puid, _ in innocent)
    assert sum(recorded.values()) == 2 * len(innocent)  # nothing of the refused
    FIGURES[f"bad_ids_beside_load_{database}"] = {"innocent_200": len(innocent), "refused_400": len(refused)}


def test_a_retry_is_compared_on_the_values_as_the_classifier_reads_them(classifier):
    puid = uuid.uuid4().hex
    first = post(classifier, {"jsonData": [REJECTED_APPLICATION], "meta": {"puid": puid}})
    as_floats = {k: float(v) if isinstance(v, int) else v for k, v in REJECTED_APPLICATION.items()}
    again = post(classifier, {"jsonData": [as_floats], "meta": {"puid": puid}})
    assert first.status_code == again.status_code == 200, again.text
    assert again.json()["meta"]["tags"]["application_ids"] == first.json()["meta"]["tags"]["application_ids"]
    # another application, or the same with another group, is still a conflict
    other = post(classifier, {"jsonData": [REJECTED_APPLICATION | {"hours-per-week": 41}], "meta": {"puid": puid}})
    assert other.status_code == 409
    regrouped = post(classifier, {"jsonData": [REJECTED_APPLICATION | {"gender": "Male"}], "meta": {"puid": puid}})
    assert regrouped.status_code == 409


def test_stored_inputs_are_bounded(classifier):
    # a number the classifier reads (40) in a string the record would keep, as entered, whole
    big = post(classifier, {"jsonData": [REJECTED_APPLICATION | {"hours-per-week": "0" * 500_000 + "40"}]})
    assert big.status_code == 400, big.text
    assert "row 0, column 'hours-per-week' must be a string of 1 to 1000 characters" in big.json()["status"]["info"]


def test_open_answers_name_no_internal_address(explainer, classifier):
    status = requests.get(f"{explainer.url}/health/status", timeout=10)
    assert status.status_code == 200 and "http" not in status.text and "classifier_url" not in status.text


@pytest.mark.parametrize("size", [9_000, 70_000])
def test_oversized_headers_get_431_in_json(classifier, size):
    answer = requests.post(classifier.predictions_url, json={"jsonData": [EXAMPLE_APPLICATION]},
                           headers={"Authorization": "Bearer " + "a" * size}, timeout=10)
    assert answer.status_code == 431 and answer.headers["Content-Type"] == "application/json"
    assert answer.json()["status"]["reason"] == "REQUEST_HEADERS_TOO_LARGE"
    assert post(classifier, {"jsonData": [EXAMPLE_APPLICATION]}).status_code == 200  # and the service keeps serving
