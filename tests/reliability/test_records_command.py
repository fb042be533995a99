"""The records command is safe with whatever the record holds (the probes of 2026-12-06, against
the real classifier, its SQLite record and the command as an examiner runs it).

Before: ``notices`` wrote ``<application id>.html`` (ids ``/x/abs`` and ``../../../../x/rel``
wrote outside the folder) and a record it could not render stopped the batch with a traceback;
``show`` and ``list`` printed control characters raw; CSV exports kept cells starting ``=``;
``purge --months -1`` deleted everything and ``--months 0`` meant 25; a request id equal to
another application's id made ``notice`` render the other application's notice.
"""
import csv
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import select

from loanxai.records.store import DecisionStore, RequestDecisions
from loanxai.records.tables import purges
from tests.conftest import REJECTED_APPLICATION, running, start_classifier

pytestmark = pytest.mark.reliability
LETTERHEAD = {"LOAN_CREDITOR": "Test Savings Bank|1 Main Street|Springfield", "LOAN_CREDITOR_PHONE": "555-0199",
              "LOAN_AGENCY": "Consumer Financial Protection Bureau|1700 G Street NW|Washington, DC 20552"}


@pytest.fixture(scope="module")
def service(artifacts, tmp_path_factory):
    """A classifier with a record of its own: these tests list, notice and purge all of it."""
    with running(start_classifier(artifacts.classifier_dir, tmp_path_factory.mktemp("records-command"))) as (classifier,):
        yield classifier


def records(service, *arguments, **env):
    return subprocess.run([sys.executable, "-m", "loanxai", "records", *arguments], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "LOAN_RECORDS_URL": service.env["LOAN_RECORDS_URL"], **env})


def decide(service, application_ids, puid=None, application=REJECTED_APPLICATION):
    meta = {"tags": {"application_ids": application_ids}} | ({"puid": puid} if puid else {})
    answer = requests.post(service.predictions_url, json={"jsonData": [application] * len(application_ids), "meta": meta},
                           timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def recorded_directly(service, application_id, model_version=None):
    """A decision written to the record without the classifier (as an older version, or another tool, may have):
    what the command must survive whatever it holds."""
    store = DecisionStore(service.env["LOAN_RECORDS_URL"])
    [like] = store.decisions_of_application(decide(service, [f"model-of-{uuid.uuid4().hex[:6]}"])["meta"]["tags"][
        "application_ids"][0])
    store.record(RequestDecisions(
        request_id=uuid.uuid4().hex, application_ids=[application_id], decided_at=datetime.now(UTC),
        model_version=model_version or like["model_version"],
        manifest_sha256="e" * 64 if model_version else like["manifest_sha256"],
        dataset=like["dataset"], inputs=[like["inputs"]], protected=[like["protected"]],
        probabilities=[like["probability"]], cutoff=like["cutoff"], decisions=["rejected"], reasons=like["reasons"]))


def test_notice_files_never_leave_their_folder_and_a_bad_record_is_skipped(service, artifacts, tmp_path):
    since = datetime.now(UTC).isoformat()
    hostile = ["/x/abs", "../../../../x/rel", "..", ".hidden", "a" * 128]
    decide(service, hostile)
    recorded_directly(service, "nul\x00id")  # SQLite keeps a NUL; the classifier refuses one now
    recorded_directly(service, "other-model", model_version="ffffffffffff")
    out = tmp_path / "deep" / "notices"
    done = records(service, "notices", "--since", since, "--out-dir", str(out), "--artifacts",
                   str(artifacts.classifier_dir), **LETTERHEAD)
    assert done.returncode == 1, done.stderr  # one skipped: said, and the exit says so
    assert "Traceback" not in done.stderr
    assert "application other-model" in done.stderr and "was decided by model" in done.stderr
    assert "1 skipped" in done.stderr
    written = sorted(p.name for p in out.iterdir())
    assert all(p.parent == out for p in out.iterdir())
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob("deep/x*")) and not os.path.exists("/x/abs.html")
    assert "%2Fx%2Fabs.html" in written and "%2E.%2F..%2F..%2F..%2Fx%2Frel.html" in written
    assert "%2E..html" in written and "%2Ehidden.html" in written and "nul%00id.html" in written
    assert len(written) == len(hostile) + 1 + 2  # the hostile ids, the NUL id, the two model-of-... decisions
    assert "/x/abs" in (out / "%2Fx%2Fabs.html").read_text()  # the notice names the application as it is


def test_what_the_record_prints_has_its_control_characters_escaped(service):
    since = datetime.now(UTC).isoformat()
    recorded_directly(service, "forged\x1b[2J\rapplication 1: approved")
    for arguments in (["show", "forged\x1b[2J\rapplication 1: approved"], ["list", "--since", since]):
        shown = records(service, *arguments)
        assert shown.returncode == 0, shown.stderr
        assert "\x1b" not in shown.stdout and "\r" not in shown.stdout
        assert "forged\\x1b[2J\\rapplication 1: approved" in shown.stdout


def test_csv_exports_never_hold_a_formula(service, tmp_path):
    since = datetime.now(UTC).isoformat()
    decide(service, ['=HYPERLINK("http://example.invalid","click")', "@SUM(A1)", "+1", "-2+3"])
    out = tmp_path / "export.csv"
    assert records(service, "export", "--since", since, "--out", str(out)).returncode == 0
    with out.open() as file:
        ids = [row["application_id"] for row in csv.DictReader(file)]
    assert sorted(ids) == sorted(["'=HYPERLINK(\"http://example.invalid\",\"click\")", "'@SUM(A1)", "'+1", "'-2+3"])


def test_a_request_id_is_never_taken_for_an_application_id(service, artifacts, tmp_path):
    first = decide(service, [f"loan-{uuid.uuid4().hex[:6]}"])
    application_id = first["meta"]["tags"]["application_ids"][0]
    # another request whose puid is that application id, deciding another application
    other = decide(service, ["someone-else"], puid=application_id,
                   application=REJECTED_APPLICATION | {"hours-per-week": 30})
    assert other["meta"]["puid"] == application_id
    page = tmp_path / "notice.html"
    done = records(service, "notice", application_id, "--out", str(page), "--artifacts", str(artifacts.classifier_dir),
                   **LETTERHEAD)
    assert done.returncode == 0, done.stderr
    # the notice is the first application's (its id), not the other request's (a notice names no request)
    assert f"<td>{application_id}</td>" in page.read_text() and "someone-else" not in page.read_text()
    shown = records(service, "show", application_id)
    assert shown.stdout.count("application ") == 1 and "someone-else" not in shown.stdout
    by_request = records(service, "show", "--request", application_id)
    assert "application someone-else" in by_request.stdout and f"application {application_id}:" not in by_request.stdout


@pytest.mark.parametrize("months, words", [
    ("-1", "not a retention period: a whole number of months, at least 1"),
    ("0", "not a retention period"),
    ("abc", "not a retention period"),
    ("24", "shorter than the 25 the law asks for (12 CFR 1002.12(b)): nothing is purged without a recorded override"),
])
def test_retention_is_never_less_than_the_law_without_a_recorded_override(service, months, words):
    store = DecisionStore(service.env["LOAN_RECORDS_URL"])
    decide(service, [f"kept-{uuid.uuid4().hex[:6]}"])
    before = purges_recorded(store)
    refused = records(service, "purge", "--months", months)
    assert refused.returncode != 0 and words in refused.stderr, refused.stderr
    assert purges_recorded(store) == before  # nothing purged, nothing recorded


def purges_recorded(store):
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(select(purges).order_by(purges.c.id))]


def test_an_override_is_recorded_with_the_purge(service):
    store = DecisionStore(service.env["LOAN_RECORDS_URL"])
    done = records(service, "purge", "--months", "24", "--override", "state law allows 24 months for this product",
                   "--accepted-by", "compliance-officer-3")
    assert done.returncode == 0, done.stderr
    last = purges_recorded(store)[-1]
    assert last["retention_months"] == 24 and last["decisions"] == 0  # nothing is that old
    assert last["override"] == {"reason": "state law allows 24 months for this product",
                                "accepted_by": "compliance-officer-3"}
    plain = records(service, "purge")
    assert plain.returncode == 0 and "(25 months ago)" in plain.stdout
