"""The reviewer console's HTTP API, run for real: the classifier decides and records (LOAN_AUTH=on),
the console (its own process, the same tokens) takes contests on the same record. Roles, the
second reviewer, what is refused and that the console keeps serving."""
import uuid

import pytest
import requests

from loanxai.ops.services import console_service, free_port
from tests.conftest import REJECTED_APPLICATION, running, start_classifier, start_explainer
from tests.integration.test_auth import auth_env, call, token
from tests.integration.test_records_service import LETTERHEAD, records_command

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def classifier_and_console(artifacts, keys, logs, explainer=False, **env):
    """The classifier and the console over its record (LOAN_AUTH=on, a second reviewer required), and with
    ``explainer`` the explainer the console asks (called with a decide token), all ready."""
    classifier = start_classifier(artifacts.classifier_dir, logs, **auth_env(keys))
    more = []
    if explainer:
        token_file = logs / "classifier-token"
        token_file.write_text(token(keys, "decide", subject="loan-explainer", minutes=60))
        more.append(start_explainer(artifacts.explainer_dir, classifier.predictions_url, logs, **auth_env(keys),
                                    LOAN_RECORDS_URL=classifier.env["LOAN_RECORDS_URL"],
                                    LOAN_CLASSIFIER_TOKEN_FILE=str(token_file)))
        env = {"LOAN_REVIEW_EXPLAINER_URL": more[0].url, **env}
    console = console_service(free_port(), {**auth_env(keys), "LOAN_RECORDS_URL": classifier.env["LOAN_RECORDS_URL"],
                                            "LOAN_REVIEW_ARTIFACTS": str(artifacts.classifier_dir),
                                            "LOAN_REVIEW_SECOND_REVIEWER": "on", **env})
    classifier.wait_ready()
    console.start(logs / "console.log")
    return running(classifier, console, *more)


@pytest.fixture(scope="module")
def services(artifacts, keys, tmp_path_factory):
    with classifier_and_console(artifacts, keys, tmp_path_factory.mktemp("console-logs"),
                                LOAN_REVIEW_DAYS="14") as started:
        yield started


def reviews_url(console, *path):
    return "/".join([console.url + "/api/v1/reviews", *map(str, path)])


def rejected(classifier, keys):
    application_id = f"app-{uuid.uuid4().hex[:8]}"
    answer = call("POST", classifier.predictions_url, token(keys, "decide", subject="lender-system"),
                  json={"jsonData": [REJECTED_APPLICATION], "meta": {"tags": {"application_ids": [application_id]}}})
    assert answer.status_code == 200 and answer.json()["meta"]["tags"]["decisions"] == ["rejected"], answer.text
    return application_id


def test_a_contest_from_the_lenders_system_to_a_reversal_by_two_reviewers(services, keys, artifacts, tmp_path):
    classifier, console = services
    application_id = rejected(classifier, keys)
    lender = token(keys, "decide", subject="lender-system")
    opened = call("POST", reviews_url(console), lender,
                  json={"application_id": application_id, "grounds": "My hours are 60 a week.",
                        "corrections": {"hours-per-week": 60}})
    assert opened.status_code == 201, opened.text
    review = opened.json()
    assert review["status"] == "open" and review["opened_by"] == {"subject": "lender-system", "role": "decide"}
    assert [d["request_id"] for d in review["decisions"]][1] == f"review-{review['id']}-1"
    assert review["decisions"][1]["inputs"]["hours-per-week"] == 60
    # the lender's system reads its status, cannot act; an auditor reads, cannot act
    assert call("GET", reviews_url(console, review["id"]), lender).json()["status"] == "open"
    action = {"action": "reverse", "reason": "Verified with the employer."}
    assert call("POST", reviews_url(console, review["id"], "actions"), lender, json=action).status_code == 403
    auditor = token(keys, "audit", subject="examiner")
    assert call("GET", reviews_url(console), auditor).json()["reviews"][0]["id"] == review["id"]
    assert call("POST", reviews_url(console, review["id"], "actions"), auditor, json=action).status_code == 403
    # two reviewers reverse it
    alice, bob = token(keys, "review", subject="alice"), token(keys, "review", subject="bob")
    assert call("POST", reviews_url(console, review["id"], "actions"), alice, json=action).json()["status"] == "proposed"
    again = call("POST", reviews_url(console, review["id"], "actions"), alice, json=action)
    assert again.status_code == 409 and "another reviewer" in again.json()["status"]["info"]
    done = call("POST", reviews_url(console, review["id"], "actions"), bob, json=action).json()
    assert done["status"] == "reversed"
    assert [e["kind"] for e in done["events"]] == ["opened", "corrected", "proposed", "reversed"]
    assert done["decisions"][-1]["decision"] == "approved"
    assert [r["subject"] for r in done["decisions"][-1]["decided_by"]] == ["alice", "bob"]
    shown = records_command(classifier, "show", application_id)
    assert shown.returncode == 0 and f"made in review {review['id']} by alice, bob" in shown.stdout
    assert f"made in review {review['id']} by the model, on the corrected inputs" in shown.stdout
    # the notice, regenerated from the record, is the approval: a reversal is a new action
    out = tmp_path / "notice.html"
    written = records_command(classifier, "notice", application_id, "--out", str(out), "--artifacts",
                              str(artifacts.classifier_dir), **LETTERHEAD)
    assert written.returncode == 0, written.stderr
    page = out.read_text()
    assert "Notice of approval after review" in page and "was approved on" in page and "denied" not in page


def test_an_upheld_rejection_gets_a_new_notice_saying_it_was_reviewed(services, keys, artifacts, tmp_path):
    classifier, console = services
    application_id = rejected(classifier, keys)
    reviewer = token(keys, "review", subject="dana")
    opened = call("POST", reviews_url(console), reviewer, json={"application_id": application_id,
                                                                "grounds": "A person should look at this."}).json()
    upheld = call("POST", reviews_url(console, opened["id"], "actions"), reviewer,
                  json={"action": "uphold", "reason": "The inputs are as given."}).json()
    assert upheld["status"] == "upheld" and upheld["decisions"][-1]["decision"] == "rejected"
    out = tmp_path / "notice.html"
    written = records_command(classifier, "notice", application_id, "--out", str(out), "--artifacts",
                              str(artifacts.classifier_dir), **LETTERHEAD)
    assert written.returncode == 0, written.stderr
    page = out.read_text()
    assert "The review upheld the denial" in page and "Statement of credit denial" in page
    for reason in upheld["decisions"][-1]["reasons"]["reasons"][:4]:
        assert f"reason code {reason['code']}" in page


def test_callers_without_a_token_or_role_are_refused(services, keys):
    _, console = services
    assert call("GET", reviews_url(console)).status_code == 401
    assert call("GET", reviews_url(console), token(keys, "explain")).status_code == 403
    assert call("GET", reviews_url(console), token(keys, "decide")).status_code == 403  # the queue is the reviewers'
    assert call("GET", console.url + "/health/status").status_code == 200


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"grounds": "x"}, 400, "no 'application_id'"),
    ({"application_id": "nobody", "grounds": "x"}, 404, "no decision on the record"),
    ({"application_id": "A", "grounds": "x", "extra": 1}, 400, "key 'extra' is not one of"),
    ({"application_id": 7, "grounds": "x"}, 400, "application_id must be a string"),
    ([1, 2], 400, "must be a JSON object"),
])
def test_bad_contests_get_a_4xx_naming_the_problem(services, keys, body, status, words):
    _, console = services
    answer = call("POST", reviews_url(console), token(keys, "decide"), json=body)
    assert answer.status_code == status and words in answer.json()["status"]["info"], answer.text


def test_bad_requests_on_a_review_are_refused_and_the_console_keeps_serving(services, keys):
    classifier, console = services
    reviewer = token(keys, "review", subject="carol")
    opened = call("POST", reviews_url(console), reviewer, json={"application_id": rejected(classifier, keys),
                                                                "grounds": "<script>alert(1)</script>"}).json()
    assert opened["grounds"] == "<script>alert(1)</script>"  # kept as written; JSON carries it inert
    url = reviews_url(console, opened["id"])
    cases = [
        ("POST", url + "/corrections", {"corrections": {"ethnicity": "Other"}}, 400, "not an input"),
        ("POST", url + "/corrections", {"corrections": {}}, 400, "one or more input names"),
        ("POST", url + "/actions", {"action": "approve", "reason": "x"}, 400, "action must be one of"),
        ("POST", url + "/actions", {"action": "refer"}, 400, "no 'reason'"),
        ("GET", reviews_url(console, 10**12), None, 404, "no review"),
        ("DELETE", url, None, 405, "does not take DELETE"),
        ("GET", console.url + "/api/v1/nothing", None, 404, "no such path"),
        ("GET", reviews_url(console) + "?limit=0", None, 400, "limit must be"),
    ]
    for method, where, body, status, words in cases:
        answer = call(method, where, reviewer, json=body)
        assert answer.status_code == status and words in answer.json()["status"]["info"], (where, answer.text)
    broken = requests.post(url + "/actions", data='{"action": "refer", "action": "uphold"}', timeout=10,
                           headers={"Authorization": f"Bearer {reviewer}", "Content-Type": "application/json"})
    assert broken.status_code == 400 and "appears twice" in broken.json()["status"]["info"]
    referred = call("POST", url + "/actions", reviewer, json={"action": "refer", "reason": "To underwriting."})
    assert referred.json()["status"] == "referred"
    assert [e["kind"] for e in referred.json()["events"]] == ["opened", "referred"]
