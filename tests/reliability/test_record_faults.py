"""Nothing lost, nothing unrecorded: the real classifier under load while a worker is killed, the
real PostgreSQL is stopped and started again, and SQLite's disk fills up. Afterwards every
answer 200 has exactly one record; what could not be recorded was answered 503 and counted."""
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from loanxai.records.store import DecisionStore
from loanxai.records.tables import decisions
from tests.conftest import EXAMPLE_APPLICATION, REJECTED_APPLICATION, start_classifier
from tests.reliability.test_reliability import FIGURES, PROBE_TIMEOUT_S, rest_workers

pytestmark = pytest.mark.reliability
#: applications per request in the load
ROWS = 2


class Load:
    """Threads deciding requests of ROWS applications, each with its own request id, noting each answer."""

    def __init__(self, service, threads=8):
        self.service, self.stop = service, threading.Event()
        self.answers: list[tuple[str, int | None, str]] = []
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self):
        session = requests.Session()
        while not self.stop.is_set():
            puid = uuid.uuid4().hex
            message = {"jsonData": [EXAMPLE_APPLICATION, REJECTED_APPLICATION], "meta": {"puid": puid}}
            try:
                answer = session.post(self.service.predictions_url, json=message, timeout=10)
                self.answers.append((puid, answer.status_code, answer.text[:1000]))
            except requests.RequestException as error:
                self.answers.append((puid, None, type(error).__name__))
                session = requests.Session()

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def statuses(self) -> Counter:
        return Counter(status for _, status, _ in self.answers)


def records_per_request(url) -> Counter:
    store = DecisionStore(url)
    with store.engine.connect() as connection:
        rows = connection.execute(select(decisions.c.request_id, func.count()).group_by(decisions.c.request_id))
        return Counter(dict(rows.all()))


def assert_every_200_has_its_records(load, url):
    recorded = records_per_request(url)
    answered = [puid for puid, status, _ in load.answers if status == 200]
    assert answered, load.statuses()
    assert all(recorded.get(puid) == ROWS for puid in answered), "an answer 200 without its records"
    assert max(recorded.values()) == ROWS  # no request recorded twice or in part
    return recorded


def unrecorded_count(service) -> float:
    """Applications answered 503 for the record: not recorded, or in doubt (a commit under way
    when the database stopped, its answer lost, the lookup refused too)."""
    metrics = requests.get(service.metrics_url, timeout=PROBE_TIMEOUT_S).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith(("loan_unrecorded_applications_total{", "loan_record_in_doubt_applications_total{")))


def wait_until(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_killing_a_worker_under_load_loses_no_record(artifacts, postgres, tmp_path):
    url = postgres.create_database(f"kill_{uuid.uuid4().hex[:8]}")
    service = start_classifier(artifacts.classifier_dir, tmp_path, GUNICORN_WORKERS="2", LOAN_RECORDS_URL=url)
    try:
        service.wait_ready()
        with Load(service) as load:
            for _ in range(5):
                time.sleep(0.5)
                victim = rest_workers(service)[0]
                os.kill(victim, signal.SIGKILL)
                assert wait_until(lambda: len(rest_workers(service)) == 2 and victim not in rest_workers(service))
            time.sleep(0.5)
    finally:
        service.stop()
    recorded = assert_every_200_has_its_records(load, url)
    statuses = load.statuses()
    FIGURES["record_worker_kills"] = {"kills": 5, "answered_200": statuses[200], "cut": statuses[None],
                                      "recorded_requests": len(recorded)}


def test_the_database_stopped_and_started_under_load_loses_no_record(artifacts, postgres, tmp_path):
    url = postgres.create_database(f"restart_{uuid.uuid4().hex[:8]}")
    service = start_classifier(artifacts.classifier_dir, tmp_path, LOAN_RECORDS_URL=url)
    try:
        service.wait_ready()
        with Load(service) as load:
            time.sleep(1.0)
            postgres.stop()
            stopped = time.monotonic()
            try:
                assert wait_until(lambda: any(s == 503 for _, s, _ in load.answers[-20:]), 10)
                time.sleep(1.0)
            finally:
                postgres.start()
            down_s = time.monotonic() - stopped
            restarted = len(load.answers)
            assert wait_until(lambda: any(s == 200 for _, s, _ in load.answers[restarted:]), 15)
            back_s = time.monotonic() - stopped - down_s
            time.sleep(1.0)
        unrecorded = unrecorded_count(service)
    finally:
        service.stop()
    assert_every_200_has_its_records(load, url)
    refused = [text for _, status, text in load.answers if status == 503]
    reasons = {json.loads(text)["status"]["reason"] for text in refused}
    assert refused and reasons <= {"RECORD_UNAVAILABLE", "RECORD_IN_DOUBT"}, reasons
    assert all("retry with the same meta.puid" in text for text in refused)
    assert set(load.statuses()) <= {200, 503}, load.statuses()  # never a 500, never a cut connection
    assert unrecorded == ROWS * len(refused)
    FIGURES["record_database_restart"] = {"down_s": round(down_s, 2), "first_200_after_restart_s": round(back_s, 2),
                                          "answered_200": load.statuses()[200], "answered_503": len(refused),
                                          "in_doubt_503": sum("RECORD_IN_DOUBT" in text for text in refused)}


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB filesystem of its own (tmpfs), to fill up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(descriptor, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(descriptor)
    return filler


def test_a_full_disk_is_503_and_recording_resumes_once_there_is_room(artifacts, small_disk, tmp_path):
    url = f"sqlite:///{small_disk}/decisions.sqlite"
    service = start_classifier(artifacts.classifier_dir, tmp_path, LOAN_RECORDS_URL=url)
    try:
        service.wait_ready()
        with Load(service, threads=4) as load:
            time.sleep(0.5)
            filler = fill(small_disk)
            full = len(load.answers)
            assert wait_until(lambda: any(s == 503 for _, s, _ in load.answers[full:]), 15)
            time.sleep(0.5)
            assert requests.get(f"{service.url}/health/ping", timeout=PROBE_TIMEOUT_S).ok  # still serving
            filler.unlink()
            freed = len(load.answers)
            assert wait_until(lambda: any(s == 200 for _, s, _ in load.answers[freed:]), 15)
            time.sleep(0.5)
    finally:
        service.stop()
    assert_every_200_has_its_records(load, url)
    refused = [text for _, status, text in load.answers if status == 503]
    assert refused and all("RECORD_UNAVAILABLE" in text for text in refused)
    assert set(load.statuses()) <= {200, 503}, load.statuses()
    FIGURES["record_full_disk"] = {"answered_200": load.statuses()[200], "answered_503": len(refused)}
