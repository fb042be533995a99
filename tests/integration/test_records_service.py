"""Every decision the real classifier serves is on the record before it is answered; the
records command reads it back, decides it again and renders its notice."""
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest
import requests

from loanxai.config import ServiceSettings
from loanxai.records.queries import Selection, select_decisions
from loanxai.records.store import DecisionStore, RequestDecisions
from loanxai.serving.auth import SAMPLING_HEADER
from tests.conftest import EXAMPLE_APPLICATION, REJECTED_APPLICATION

LETTERHEAD = {"LOAN_CREDITOR": "Test Savings Bank|1 Main Street|Springfield", "LOAN_CREDITOR_PHONE": "555-0199",
              "LOAN_AGENCY": "Consumer Financial Protection Bureau|1700 G Street NW|Washington, DC 20552"}
#: the census's protected attributes that are not model inputs: kept apart from the inputs
APART = ("gender", "ethnicity", "marital-status", "relationship")


def without_protected(application):
    return {k: v for k, v in application.items() if k not in APART}


def records(service) -> DecisionStore:
    return DecisionStore(service.env["LOAN_RECORDS_URL"])


def predict(service, message):
    return requests.post(service.predictions_url, json=message, timeout=30)


def records_command(service, *arguments, **env):
    return subprocess.run([sys.executable, "-m", "loanxai", "records", *arguments], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "LOAN_RECORDS_URL": service.env["LOAN_RECORDS_URL"], **env})


def test_each_form_is_recorded_as_entered_with_the_protected_attributes_apart(classifier):
    puid = uuid.uuid4().hex
    application = REJECTED_APPLICATION | {"gender": "Female", "ethnicity": "Black"}
    answer = predict(classifier, {"jsonData": [application], "meta": {"puid": puid, "tags": {
        "application_ids": ["8812"], "reasons": True}}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["meta"]["tags"]["application_ids"] == ["8812"]
    [record] = records(classifier).decisions_of_request(puid)
    assert record["application_id"] == "8812"
    assert record["inputs"] == without_protected(REJECTED_APPLICATION)  # as entered, protected attributes apart
    assert record["protected"]["gender"] == "Female" and record["protected"]["ethnicity"] == "Black"
    assert record["probability"] == pytest.approx(answer.json()["data"]["ndarray"][0][1], abs=0)
    assert record["decision"] == "rejected" == answer.json()["meta"]["tags"]["decisions"][0]
    assert record["reasons"] == answer.json()["meta"]["tags"]["reasons"][0]
    assert record["cutoff"] == answer.json()["meta"]["tags"]["cutoff"]
    # named rows and positional rows: the values as sent, no id given (one made up and returned)
    named = {"data": {"names": list(EXAMPLE_APPLICATION), "ndarray": [list(EXAMPLE_APPLICATION.values())]}}
    served = requests.get(f"{classifier.url}/api/v1.0/metadata", timeout=30).json()["inputs"][0]["schema"]["names"]
    positional = {"data": {"ndarray": [[EXAMPLE_APPLICATION[n] for n in served]]}}
    for message, entered in ((named, without_protected(EXAMPLE_APPLICATION)),
                             (positional, [EXAMPLE_APPLICATION[n] for n in served])):
        answer = predict(classifier, message)
        assert answer.status_code == 200, answer.text
        meta = answer.json()["meta"]
        assert meta["tags"]["application_ids"] == [f"{meta['puid']}-0"]
        [record] = records(classifier).decisions_of_request(meta["puid"])
        assert record["inputs"] == entered and record["reasons"] is None


def test_a_retry_is_answered_without_a_second_record_and_a_reused_id_gets_409(classifier):
    message = {"jsonData": [EXAMPLE_APPLICATION, REJECTED_APPLICATION], "meta": {"puid": uuid.uuid4().hex}}
    first, again = predict(classifier, message), predict(classifier, message)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert len(records(classifier).decisions_of_request(message["meta"]["puid"])) == 2
    reused = predict(classifier, {"jsonData": [REJECTED_APPLICATION], "meta": message["meta"]})
    assert reused.status_code == 409 and reused.json()["status"]["reason"] == "DECISION_CONFLICT"
    assert "already on the record" in reused.json()["status"]["info"]


def test_an_explainers_samples_are_not_decisions_and_are_not_recorded(classifier):
    puid = uuid.uuid4().hex
    message = {"jsonData": [EXAMPLE_APPLICATION], "meta": {"puid": puid, "tags": {"purpose": "explanation"}}}
    key = ServiceSettings.from_env().sampling_key_file.read_text().strip()
    answer = requests.post(classifier.predictions_url, json=message, headers={SAMPLING_HEADER: key}, timeout=30)
    assert answer.status_code == 200 and "application_ids" not in answer.json()["meta"]["tags"]
    assert records(classifier).decisions_of_request(puid) == []
    # without the explainer's key: sampling is not for callers (tests/reliability/test_no_way_around.py)
    assert predict(classifier, message).status_code == 403


@pytest.mark.parametrize("ids, problem", [
    ("8812", "must be a list of one string"), (["a", "b"], "must be a list of one string"),
    ([7], "item 0 must be a string of 1 to 128"), (["a\x00"], "item 0 holds the character U+0000"),
    (["x" * 129], "1 to 128 characters"), ([""], "1 to 128 characters"),
])
def test_bad_application_ids_are_refused_naming_the_field(classifier, ids, problem):
    answer = predict(classifier, {"jsonData": [EXAMPLE_APPLICATION], "meta": {"tags": {"application_ids": ids}}})
    assert answer.status_code == 400 and problem in answer.json()["status"]["info"]
    assert "meta.tags.application_ids" in answer.json()["status"]["info"]
    twice = predict(classifier, {"jsonData": [EXAMPLE_APPLICATION] * 2, "meta": {"tags": {"application_ids": ["a", "a"]}}})
    assert twice.status_code == 400 and "the same id twice" in twice.json()["status"]["info"]


def test_outcomes_from_feedback_attach_to_the_decision(classifier):
    answer = predict(classifier, {"jsonData": [REJECTED_APPLICATION], "meta": {"tags": {"application_ids": ["fb-1"]}}})
    feedback = {"response": answer.json(), "truth": {"data": {"ndarray": [["approved"]]}}}
    attached = requests.post(f"{classifier.url}/api/v1.0/feedback", json=feedback, timeout=30)
    assert attached.status_code == 200 and attached.json()["jsonData"]["recorded"] == 1
    [record] = records(classifier).decisions_of_application("fb-1")
    assert [e["content"] for e in records(classifier).events_of(record["request_id"], 0)] == [{"truth": "approved"}]
    shown = records_command(classifier, "show", "fb-1")
    assert shown.returncode == 0 and 'outcome {"truth": "approved"}' in shown.stdout


def test_an_explanation_of_a_recorded_decision_goes_on_its_record(classifier, explainer):
    puid, application_id = uuid.uuid4().hex, f"explained-{uuid.uuid4().hex[:6]}"
    decided = predict(classifier, {"jsonData": [REJECTED_APPLICATION | {"gender": "Female"}], "meta": {
        "puid": puid, "tags": {"application_ids": [application_id]}}})
    assert decided.status_code == 200, decided.text
    asked = {"jsonData": REJECTED_APPLICATION, "meta": {"tags": {"application_ids": [application_id], "seed": 3}}}
    answer = predict(explainer, asked)
    assert answer.status_code == 200, answer.text
    explained = answer.json()["jsonData"]
    assert explained["recorded_for"] == {"application_id": application_id, "request_id": puid, "row": 0}
    [event] = records(classifier).events_of(puid, 0)
    assert event["kind"] == "anchor"
    assert event["content"]["parameters"] == {"kind": "anchor", "seed": 3, "threshold": 0.95}
    assert event["content"]["answer"]["anchor"] == explained["anchor"]
    assert event["content"]["explainer_version"] == explainer_version(explainer)
    shown = records_command(classifier, "show", application_id)
    assert shown.returncode == 0 and f"anchor {explained['anchor_text']!r}" in shown.stdout, shown.stdout
    # an id with no decision, another application under a recorded id: refused before any work, nothing attached
    unknown = predict(explainer, {**asked, "meta": {"tags": {"application_ids": ["no-such-application"]}}})
    assert unknown.status_code == 404 and unknown.json()["status"]["reason"] == "DECISION_NOT_FOUND"
    assert "'no-such-application'" in unknown.json()["status"]["info"]
    other = predict(explainer, {**asked, "jsonData": EXAMPLE_APPLICATION})
    assert other.status_code == 409 and other.json()["status"]["reason"] == "APPLICATION_MISMATCH"
    assert f"request {puid}, row 0" in other.json()["status"]["info"]
    # a decision another model made (as if an older one): not explained by this explainer
    older = f"older-{uuid.uuid4().hex[:6]}"
    records(classifier).record(RequestDecisions(
        request_id=uuid.uuid4().hex, application_ids=[older], decided_at=datetime.now(UTC), model_version="0123456789ab",
        manifest_sha256="0" * 64, dataset="adult", inputs=[without_protected(REJECTED_APPLICATION)], protected=[{}],
        probabilities=[0.1], cutoff=0.5, decisions=["rejected"], reasons=None))
    by_another = predict(explainer, {**asked, "meta": {"tags": {"application_ids": [older]}}})
    assert by_another.status_code == 409 and "was decided by model 0123456789ab" in by_another.json()["status"]["info"]
    # without an id the explanation is answered and goes on no record
    free = predict(explainer, {"jsonData": REJECTED_APPLICATION})
    assert free.status_code == 200 and free.json()["jsonData"]["recorded_for"] is None
    assert len(records(classifier).events_of(puid, 0)) == 1


def test_the_figures_command_recomputes_the_monitoring_from_the_record(classifier, artifacts, tmp_path):
    answer = predict(classifier, {"jsonData": [EXAMPLE_APPLICATION | {"gender": "Male"}, REJECTED_APPLICATION]})
    feedback = {"response": answer.json(), "truth": {"data": {"ndarray": [["approved"], ["approved"]]}}}
    assert requests.post(f"{classifier.url}/api/v1.0/feedback", json=feedback, timeout=30).status_code == 200
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, "-m", "loanxai", "figures", "--artifacts", str(artifacts.classifier_dir),
                           "--json", str(out)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LOAN_RECORDS_URL": classifier.env["LOAN_RECORDS_URL"]})
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    recorded = records_of_model(classifier, figures["model_version"])
    assert figures["applications"] == len(recorded) >= 2
    assert figures["approved"] == sum(r["decision"] == "approved" for r in recorded)
    assert figures["adverse_impact"]["gender"]["groups"]["Male"]["rows"] >= 1
    assert figures["outcomes"]["all"]["all"]["outcomes"] >= 2
    assert set(figures["features"]) == set(artifacts.classifier_manifest.schema.feature_names)
    assert done.stdout.startswith(f"model {figures['model_version']}, the first decision to now: ")
    off = subprocess.run([sys.executable, "-m", "loanxai", "figures", "--record-url", "off"], capture_output=True,
                         text=True, timeout=120)
    assert off.returncode == 1 and "LOAN_RECORDS_URL=off: there is no record to read" in off.stderr


def records_of_model(service, version):
    return list(select_decisions(records(service), Selection(model_version=version)))


def explainer_version(explainer):
    return requests.get(f"{explainer.url}/api/v1.0/metadata", timeout=30).json()["versions"][0]


def test_the_records_command_shows_redecides_and_renders_the_notice(classifier, artifacts, tmp_path):
    application_id = f"notice-{uuid.uuid4().hex[:6]}"
    answer = predict(classifier, {"jsonData": [REJECTED_APPLICATION], "meta": {"tags": {
        "application_ids": [application_id]}}})  # no reasons asked: the notice gives them again
    assert answer.json()["meta"]["tags"]["decisions"] == ["rejected"]
    shown = records_command(classifier, "show", application_id)
    assert shown.returncode == 0 and f"application {application_id}: rejected" in shown.stdout
    again = records_command(classifier, "redecide", application_id, "--artifacts", str(artifacts.classifier_dir))
    assert again.returncode == 0, again.stderr
    assert "difference 0.0e+00" in again.stdout and "decided again rejected" in again.stdout
    html, pdf = tmp_path / "n.html", tmp_path / "n.pdf"
    args = ("--artifacts", str(artifacts.classifier_dir))
    for out in (html, pdf):
        done = records_command(classifier, "notice", application_id, "--out", str(out), *args, **LETTERHEAD)
        assert done.returncode == 0, done.stderr
    page = html.read_text()
    assert "Test Savings Bank" in page and "555-0199" in page and "Consumer Financial Protection Bureau" in page
    assert "Equal Credit Opportunity Act prohibits" in page and application_id in page
    assert "We used a credit scoring system" in page
    [record] = records(classifier).decisions_of_application(application_id)
    # the record's internal references stay in the record
    assert not any(internal in page for internal in (record["request_id"], record["manifest_sha256"],
                                                     record["model_version"], "sha256"))
    reasons = page.split('<ol class="reasons">')[1].split("</ol>")[0]
    assert 1 <= reasons.count("<li>") <= 4 and "reason code capital-gain-low" in reasons
    # a specific reason, with its direction against approved applicants
    assert "Capital gains: 0, lower than the average of approved applicants (" in reasons, reasons
    assert not any(basis in reasons.lower() for basis in ("gender", "ethnicity", "marital", "relationship", "sex"))
    assert pdf.read_bytes().startswith(b"%PDF")
    # the same record gives the same document, every time
    html2, pdf2 = tmp_path / "n2.html", tmp_path / "n2.pdf"
    for out in (html2, pdf2):
        assert records_command(classifier, "notice", application_id, "--out", str(out), *args, **LETTERHEAD).returncode == 0
    assert html2.read_text() == page and pdf2.read_bytes() == pdf.read_bytes()


def test_a_notice_names_the_applicant_the_credit_and_the_score_from_the_lenders_file(classifier, artifacts,
                                                                                     tmp_path):
    ids = [f"applicant-{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]
    predict(classifier, {"jsonData": [REJECTED_APPLICATION] * 3, "meta": {"tags": {"application_ids": ids}}})
    applicants = tmp_path / "applicants.csv"
    applicants.write_text(
        "application_id,name,address,credit,score,score_low,score_high,score_date,score_source,score_factors\n"
        f'{ids[0]},<b>Jane</b> Public,12 Elm Street|Springfield IL 62701,"Personal loan, $5,000",612,300,850,'
        "2026-11-30,Example Credit Bureau|PO Box 1|Atlanta GA 30301|(800) 555-0199,"
        "Too many accounts with balances|Length of credit history\n"
        f"{ids[1]},John Roe,,,,,,,,\n")
    args = ("--artifacts", str(artifacts.classifier_dir), "--applicants", str(applicants))
    html, pdf = tmp_path / "n.html", tmp_path / "n.pdf"
    for out in (html, pdf):
        done = records_command(classifier, "notice", ids[0], "--out", str(out), *args, **LETTERHEAD)
        assert done.returncode == 0, done.stderr
    page = html.read_text()
    # the applicant block, as the lender's file gives it (markup in a name is text)
    assert '<div class="applicant lines">&lt;b&gt;Jane&lt;/b&gt; Public\n12 Elm Street\nSpringfield IL 62701</div>' in page
    assert "<td>Personal loan, $5,000</td>" in page and "the loan you applied for" not in page
    # the score disclosure of FCRA 615(a): the score, its range, its date, its key factors, the agency
    assert "<td>Your credit score</td><td>612</td>" in page and "from a low of 300 to a high of 850" in page
    assert "<td>November 30, 2026</td>" in page
    factors = page.split('<ol class="factors">')[1].split("</ol>")[0]
    assert factors.count("<li>") == 2 and factors.index("Too many accounts") < factors.index("Length of credit")
    assert "Example Credit Bureau\nPO Box 1\nAtlanta GA 30301\n(800) 555-0199" in page
    assert "The reporting agency\nplayed no part in our decision" in page
    assert pdf.read_bytes().startswith(b"%PDF")
    # a row without a score: the applicant's name, no score section, the notice's own words for the credit
    done = records_command(classifier, "notice", ids[1], "--out", str(html), *args, **LETTERHEAD)
    assert done.returncode == 0, done.stderr
    page = html.read_text()
    assert '<div class="applicant lines">John Roe</div>' in page and "the loan you applied for" in page
    assert "credit score" not in page.lower()
    # given a file, an application missing from it gets no notice: reported, the others written
    missing = records_command(classifier, "notice", ids[2], "--out", str(tmp_path / "m.html"), *args, **LETTERHEAD)
    assert missing.returncode == 1 and f"application {ids[2]} is not in the applicants' file" in missing.stderr
    assert not (tmp_path / "m.html").exists()
    since = records(classifier).decisions_of_application(ids[0])[0]["decided_at"].isoformat()
    many = records_command(classifier, "notices", "--since", since, "--out-dir", str(tmp_path / "many"), *args,
                           **LETTERHEAD)
    assert many.returncode == 1 and f"application {ids[2]}" in many.stderr
    assert {ids[0], ids[1]} <= {p.stem for p in (tmp_path / "many").glob("*.html")}
    assert not (tmp_path / "many" / f"{ids[2]}.html").exists()
    # a file that does not fit stops the command before any notice, naming the file and the line
    applicants.write_text(f"application_id,name\n{ids[0]},Jane\n{ids[0]},John\n")
    refused = records_command(classifier, "notice", ids[0], "--out", str(tmp_path / "r.html"), *args, **LETTERHEAD)
    assert refused.returncode == 1 and f"{applicants}, line 3: application {ids[0]} is given twice" in refused.stderr
    assert not (tmp_path / "r.html").exists()


def test_no_notice_for_an_approval_without_a_letterhead_or_by_another_model(classifier, artifacts, loanapp_artifacts,
                                                                             tmp_path):
    approved = predict(classifier, {"jsonData": [EXAMPLE_APPLICATION], "meta": {"tags": {"application_ids": ["ok-1"]}}})
    assert approved.json()["meta"]["tags"]["decisions"] == ["approved"]
    args = ("--artifacts", str(artifacts.classifier_dir))
    refused = records_command(classifier, "notice", "ok-1", "--out", str(tmp_path / "n.html"), *args, **LETTERHEAD)
    assert refused.returncode == 1 and "no rejected application" in refused.stderr
    predict(classifier, {"jsonData": [REJECTED_APPLICATION], "meta": {"tags": {"application_ids": ["no-1"]}}})
    unsigned = records_command(classifier, "notice", "no-1", "--out", str(tmp_path / "n.html"), *args,
                               LOAN_CREDITOR="", LOAN_AGENCY="")
    assert unsigned.returncode == 1 and "set LOAN_CREDITOR, LOAN_CREDITOR_PHONE and LOAN_AGENCY" in unsigned.stderr
    no_phone = records_command(classifier, "notice", "no-1", "--out", str(tmp_path / "n.html"), *args,
                               **{**LETTERHEAD, "LOAN_CREDITOR_PHONE": " "})
    assert no_phone.returncode == 1 and "set LOAN_CREDITOR_PHONE (" in no_phone.stderr
    other = records_command(classifier, "notice", "no-1", "--out", str(tmp_path / "n.html"), "--artifacts",
                            str(loanapp_artifacts.classifier_dir), **LETTERHEAD)
    assert other.returncode == 1 and "was decided by model" in other.stderr
    assert not (tmp_path / "n.html").exists()
    missing = records_command(classifier, "show", "no-such-application")
    assert missing.returncode == 1 and "no decision on the record" in missing.stderr


def test_notices_for_every_rejection_in_a_window(classifier, artifacts, tmp_path):
    marker = uuid.uuid4().hex[:6]
    ids = [f"batch-{marker}-{i}" for i in range(5)]
    predict(classifier, {"jsonData": [REJECTED_APPLICATION] * 5, "meta": {"tags": {"application_ids": ids,
                                                                                   "reasons": True}}})
    [record] = records(classifier).decisions_of_application(ids[0])
    since = record["decided_at"].isoformat()
    done = records_command(classifier, "notices", "--since", since, "--out-dir", str(tmp_path / "notices"),
                           "--artifacts", str(artifacts.classifier_dir), **LETTERHEAD)
    assert done.returncode == 0, done.stderr
    written = {p.stem for p in (tmp_path / "notices").glob("*.html")}
    assert set(ids) <= written
    # as PDFs, in two processes: each the same bytes as the one notice's command renders alone
    pdfs = tmp_path / "pdfs"
    done = records_command(classifier, "notices", "--since", since, "--out-dir", str(pdfs), "--format", "pdf",
                           "--processes", "2", "--artifacts", str(artifacts.classifier_dir), **LETTERHEAD)
    assert done.returncode == 0, done.stderr
    assert set(ids) <= {p.stem for p in pdfs.glob("*.pdf")}
    alone = records_command(classifier, "notice", ids[3], "--out", str(tmp_path / "alone.pdf"), "--artifacts",
                            str(artifacts.classifier_dir), **LETTERHEAD)
    assert alone.returncode == 0, alone.stderr
    assert (pdfs / f"{ids[3]}.pdf").read_bytes() == (tmp_path / "alone.pdf").read_bytes()
    refused = records_command(classifier, "notices", "--since", since, "--out-dir", str(pdfs), "--processes", "0")
    assert refused.returncode == 2 and "not a number of processes" in refused.stderr
    listing = records_command(classifier, "list", "--since", since, "--decision", "rejected")
    assert all(i in listing.stdout for i in ids)
    assert json.dumps(ids[0]) not in listing.stderr


def test_a_notice_never_states_a_prohibited_basis(artifacts):
    from loanxai.errors import RecordError
    from loanxai.records.notices import approved_averages, notice_reasons

    manifest = artifacts.classifier_manifest
    schema, titles = manifest.schema, manifest.dataset.titles
    averages = approved_averages(schema, manifest.reasons["reference"])
    record = {"application_id": "basis-1", "decision": "rejected"}

    def reason(feature, value):
        return {"feature": feature, "value": value, "code": f"{feature}-low", "contribution": -0.1, "text": ""}

    [stated] = notice_reasons(record, {"reasons": [reason("capital-gain", 0)]}, schema, titles, averages)
    assert stated == {"code": "capital-gain-low", "sentence": "Capital gains: 0, lower than the average of approved "
                      f"applicants ({averages['capital-gain']:,.0f})"}
    [stated] = notice_reasons(record, {"reasons": [reason("occupation", "Handlers-cleaners")]}, schema, titles,
                              averages)
    assert stated["sentence"] == "Occupation: Handlers-cleaners, which counted against approval compared with " \
                                 "approved applicants"
    [stated] = notice_reasons(record, {"reasons": [reason("hours-per-week", None)]}, schema, titles, averages)
    assert stated["sentence"].endswith(": not given")
    assert len(notice_reasons(record, {"reasons": [reason("age", 21)]}, schema, titles, averages)) == 1  # under the elderly age
    for feature, value in (("age", 70), ("gender", "Female"), ("ethnicity", "Black"), ("marital-status", "Divorced")):
        with pytest.raises(RecordError, match="prohibited basis"):
            notice_reasons(record, {"reasons": [reason("capital-gain", 0), reason(feature, value)]}, schema, titles, averages)
    with pytest.raises(RecordError, match="no principal reason"):
        notice_reasons(record, {"reasons": []}, schema, titles, averages)
    with pytest.raises(RecordError, match="was approved"):
        notice_reasons({**record, "decision": "approved"}, {"reasons": [reason("capital-gain", 0)]}, schema, titles, averages)
    five = [reason(f, 0) for f in ("capital-gain", "capital-loss", "hours-per-week", "education", "occupation")]
    assert len(notice_reasons(record, {"reasons": five}, schema, titles, averages)) == 4
