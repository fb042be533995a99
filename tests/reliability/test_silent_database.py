"""A database that goes silent, or whose answer to a commit is lost: the real classifier and the
real PostgreSQL, with a proxy between them that fails the network path (:mod:`tests.reliability.netproxy`).

Before: silenced connections made every request wait 10 s for a 503 for as long as the silence
lasted, readiness stayed 200, and a commit whose answer was lost was answered 503 "not recorded"
though it was recorded.
"""
import time
import uuid

import pytest
import requests

from tests.conftest import EXAMPLE_APPLICATION, start_classifier
from tests.reliability.netproxy import NetProxy
from tests.reliability.test_record_faults import (
    ROWS,
    Load,
    assert_every_200_has_its_records,
    records_per_request,
    wait_until,
)
from tests.reliability.test_reliability import FIGURES, PROBE_TIMEOUT_S, counted

pytestmark = pytest.mark.reliability
#: the record's deadline in these tests (LOAN_RECORD_TIMEOUT): short, to keep them short
RECORD_TIMEOUT_S = 2


@pytest.fixture
def proxied(artifacts, postgres, tmp_path):
    """A classifier whose record is a real PostgreSQL reached through a :class:`NetProxy`; the
    proxy, and the database's own URL (not through the proxy)."""
    url = postgres.create_database(f"silent_{uuid.uuid4().hex[:8]}")
    proxy = NetProxy(postgres.port)
    service = start_classifier(artifacts.classifier_dir, tmp_path, LOAN_RECORDS_URL=proxy.url(url),
                               LOAN_RECORD_TIMEOUT=str(RECORD_TIMEOUT_S))
    try:
        service.wait_ready()
        yield service, proxy, url
    finally:
        service.stop()
        proxy.close()


def ready(service) -> int:
    return requests.get(f"{service.url}/health/status", timeout=3 * RECORD_TIMEOUT_S).status_code


def decide(service, puid):
    return requests.post(service.predictions_url, json={"jsonData": [EXAMPLE_APPLICATION] * ROWS, "meta": {"puid": puid}},
                         timeout=30)


def test_connections_that_go_silent_are_cut_and_replaced_without_a_restart(proxied):
    service, proxy, url = proxied
    with Load(service, threads=4) as load:
        time.sleep(1.0)
        proxy.silence()  # and it never ends: only new connections carry anything
        silenced, at = len(load.answers), time.monotonic()
        assert wait_until(lambda: any(s == 200 for _, s, _ in load.answers[silenced + 8:]), 30), load.statuses()
        recovered_s = time.monotonic() - at
        time.sleep(1.0)
    assert_every_200_has_its_records(load, url)
    assert set(load.statuses()) <= {200, 503}, load.statuses()
    refused = [text for _, status, text in load.answers if status == 503]
    # nothing answered 503 names the database's host or port
    assert all(str(proxy.port) not in text and "127.0.0.1" not in text for text in refused)
    FIGURES["record_silent_connections"] = {"record_timeout_s": RECORD_TIMEOUT_S, "first_200_after_s": round(recovered_s, 2),
                                           "answered_503": len(refused), "answered_200": load.statuses()[200]}


def test_readiness_fails_while_the_record_cannot_be_written_and_recovers(proxied):
    service, proxy, _ = proxied
    assert ready(service) == 200
    proxy.blackhole()
    at = time.monotonic()
    assert wait_until(lambda: ready(service) == 503, 20)
    unready_s = time.monotonic() - at
    refused = decide(service, uuid.uuid4().hex)
    assert refused.status_code == 503 and refused.json()["status"]["reason"] == "RECORD_UNAVAILABLE"
    status = requests.get(f"{service.url}/health/status", timeout=10).json()["status"]
    assert status["reason"] == "RECORD_UNAVAILABLE" and "127.0.0.1" not in status["info"]
    assert requests.get(f"{service.url}/health/ping", timeout=PROBE_TIMEOUT_S).ok  # alive, only not ready
    proxy.restore()
    at = time.monotonic()
    assert wait_until(lambda: ready(service) == 200, 20)
    ready_again_s = time.monotonic() - at
    assert decide(service, uuid.uuid4().hex).status_code == 200
    FIGURES["record_unreachable_readiness"] = {"unready_after_s": round(unready_s, 2),
                                               "ready_again_after_s": round(ready_again_s, 2)}


def test_a_commit_whose_answer_was_lost_is_looked_up_before_it_is_answered(proxied):
    service, proxy, url = proxied
    puid = uuid.uuid4().hex
    proxy.lose_next_commit_answer()
    answer = decide(service, puid)
    assert proxy.commits_lost == 1
    # committed, its answer lost: found on the record, answered 200, recorded once
    assert answer.status_code == 200, answer.text
    assert records_per_request(url)[puid] == ROWS
    assert counted(service, "loan_unrecorded_applications_total") == 0


def test_a_commit_that_cannot_be_looked_up_is_in_doubt_and_a_retry_settles_it(proxied):
    service, proxy, url = proxied
    puid = uuid.uuid4().hex
    # and the lookup cannot reach the database either: nobody can tell whether it is recorded
    proxy.lose_next_commit_answer(then_blackhole=True)
    answer = decide(service, puid)
    assert answer.status_code == 503, answer.text
    info = answer.json()["status"]
    assert info["reason"] == "RECORD_IN_DOUBT" and "may be recorded" in info["info"]
    assert "retry with the same meta.puid" in info["info"]
    assert wait_until(lambda: counted(service, "loan_record_in_doubt_applications_total") == ROWS, 10)
    assert counted(service, "loan_unrecorded_applications_total") == 0
    proxy.restore()
    retried = None

    def settled():
        nonlocal retried
        retried = decide(service, puid)
        return retried.status_code == 200

    assert wait_until(settled, 30), retried.text
    assert retried.json()["meta"]["tags"]["application_ids"] == [f"{puid}-{i}" for i in range(ROWS)]
    assert records_per_request(url)[puid] == ROWS
