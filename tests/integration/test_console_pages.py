"""The reviewer console's pages in a real browser: Playwright driving Debian's chromium against the
real console, classifier and record (LOAN_AUTH=on, a second reviewer required). A contest taken
from a rejection to a reversal by two reviewers; an auditor who sees and cannot act; markup in ids,
grounds and reasons shown as text; a form without its CSRF token refused; who looked, recorded."""
import shutil
import time
import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest
from playwright.sync_api import expect, sync_playwright

from loanxai.records.store import DecisionStore
from loanxai.report.production import record_figures
from tests.conftest import EXAMPLE_APPLICATION, REJECTED_APPLICATION
from tests.integration.test_auth import call, token
from tests.integration.test_console_api import classifier_and_console
from tests.integration.test_records_service import LETTERHEAD, records_command

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: what would run if markup were not escaped: it sets a flag the test reads
MARKUP = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>'


@pytest.fixture(scope="module")
def services(artifacts, keys, tmp_path_factory):
    with classifier_and_console(artifacts, keys, tmp_path_factory.mktemp("pages-logs"), explainer=True,
                                **LETTERHEAD) as (classifier, console, _):
        yield classifier, console


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def rejected(classifier, keys, application_id=None):
    application_id = application_id or f"page-{uuid.uuid4().hex[:8]}"
    answer = call("POST", classifier.predictions_url, token(keys, "decide", subject="lender-system"),
                  json={"jsonData": [REJECTED_APPLICATION], "meta": {"tags": {"application_ids": [application_id]}}})
    assert answer.json()["meta"]["tags"]["decisions"] == ["rejected"], answer.text
    return application_id


def logged_in(browser, console, keys, subject, role):
    """A browser session of its own (its own cookies), logged in on the login page with a pasted token."""
    page = browser.new_context().new_page()
    page.goto(console.url + "/")
    expect(page).to_have_url(console.url + "/login")
    page.fill("#token", token(keys, role, subject=subject, minutes=30))
    page.click("#login")
    expect(page.locator("#who")).to_have_text(f"{subject} ({role})")
    return page


def test_a_rejection_contested_corrected_and_reversed_by_two_reviewers_in_the_browser(services, browser, keys,
                                                                                     artifacts, tmp_path):
    classifier, console = services
    application_id = rejected(classifier, keys)
    alice = logged_in(browser, console, keys, "alice", "review")
    alice.goto(f"{console.url}/decisions")
    alice.fill("#application_id", application_id)
    alice.click("#find")
    expect(alice.locator("#decisions .decision")).to_have_text(["rejected"])
    alice.fill("#grounds", "I work 60 hours a week, not 40.")
    alice.click("#open")
    expect(alice.locator("#status")).to_have_text("open")
    review_url = alice.url
    # correct one input: the model that decided decides again, on the page at once
    alice.fill("#input-hours-per-week", "60")
    alice.click("#correct")
    expect(alice.locator("#decisions .decision")).to_have_count(2)
    expect(alice.locator("#inputs tr.changed")).to_have_count(1)
    # alice proposes the reversal; she cannot confirm it herself
    alice.check("#action-reverse")
    alice.fill("#reason", "Hours verified with the employer.")
    alice.click("#act")
    expect(alice.locator("#status")).to_have_text("proposed")
    alice.check("#action-reverse")
    alice.fill("#reason", "Confirming my own.")
    alice.click("#act")
    expect(alice.locator("#error")).to_contain_text("another reviewer must confirm it")
    # bob confirms it
    bob = logged_in(browser, console, keys, "bob", "review")
    bob.goto(review_url)
    bob.check("#action-reverse")
    bob.fill("#reason", "Payslips checked.")
    bob.click("#act")
    expect(bob.locator("#status")).to_have_text("reversed")
    expect(bob.locator("#decisions .decision")).to_have_text(["rejected", "rejected", "approved"])
    expect(bob.locator("#timeline .kind")).to_contain_text(["opened", "corrected", "proposed", "reversed"])
    expect(bob.locator("#timeline")).to_contain_text("looked")
    # the record holds it all: the new decision, every event, who looked, and the notice regenerated
    store = DecisionStore(classifier.env["LOAN_RECORDS_URL"])
    newest = store.latest(application_id)
    assert newest["decision"] == "approved" and [r["subject"] for r in newest["decided_by"]] == ["alice", "bob"]
    contested = store.decisions_of_application(application_id)[0]
    looks = [e["content"] for e in store.events_of(contested["request_id"], contested["row"]) if e["kind"] == "looked"]
    assert {look["by"]["subject"] for look in looks} == {"alice", "bob"}
    assert any(look["page"].startswith("/reviews/") for look in looks)
    listed = records_command(classifier, "looked", application_id)
    assert listed.returncode == 0 and "alice (review)  looked  console page /reviews/" in listed.stdout, listed.stdout
    out = tmp_path / "notice.html"
    written = records_command(classifier, "notice", application_id, "--out", str(out), "--artifacts",
                              str(artifacts.classifier_dir), **LETTERHEAD)
    assert written.returncode == 0 and "Notice of approval after review" in out.read_text(), written.stderr
    # the application's page: its whole timeline, and the new notice, the same document the records command wrote
    bob.goto(f"{console.url}/decisions?application_id={application_id}")
    for step in (f"review {review_url.rsplit('/', 1)[1]} opened", "reversed", "shown in the console, page /reviews/"):
        expect(bob.locator("#timeline")).to_contain_text(step)
    bob.click("#notice-html")
    expect(bob.locator("body")).to_contain_text("Notice of approval after review")
    served = bob.request.get(f"{console.url}/notice?application_id={application_id}&format=html")
    assert served.status == 200 and served.text() == out.read_text()
    pdf = bob.request.get(f"{console.url}/notice?application_id={application_id}&format=pdf")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF-")


def test_an_auditor_sees_everything_and_can_act_on_nothing(services, browser, keys):
    classifier, console = services
    application_id = rejected(classifier, keys)
    opened = call("POST", console.url + "/api/v1/reviews", token(keys, "decide", subject="lender-system"),
                  json={"application_id": application_id, "grounds": "Please look again."}).json()
    auditor = logged_in(browser, console, keys, "examiner", "audit")
    expect(auditor.locator("#queue")).to_contain_text(application_id)
    auditor.goto(f"{console.url}/reviews/{opened['id']}")
    expect(auditor.locator("#grounds")).to_have_text("Please look again.")
    expect(auditor.locator("#act")).to_have_count(0)
    expect(auditor.locator("#correct")).to_have_count(0)
    # a forged form in its session, CSRF token and all, is still refused: the role may not act
    csrf = auditor.locator("input[name=csrf]").first.get_attribute("value")
    forged = auditor.request.post(f"{console.url}/reviews/{opened['id']}/actions",
                                  form={"csrf": csrf, "action": "reverse", "reason": "x"})
    assert forged.status == 403 and "review" in forged.text()
    assert call("GET", f"{console.url}/api/v1/reviews/{opened['id']}",
                token(keys, "audit")).json()["status"] == "open"


def test_markup_in_ids_grounds_and_reasons_is_shown_as_text(services, browser, keys):
    classifier, console = services
    application_id = rejected(classifier, keys, application_id=f"{MARKUP}-{uuid.uuid4().hex[:6]}")
    reviewer = logged_in(browser, console, keys, "carol", "review")
    reviewer.goto(f"{console.url}/decisions")
    reviewer.fill("#application_id", application_id)
    reviewer.click("#find")
    reviewer.fill("#grounds", MARKUP)
    reviewer.click("#open")
    reviewer.check("#action-refer")
    reviewer.fill("#reason", MARKUP)
    reviewer.click("#act")
    expect(reviewer.locator("#status")).to_have_text("referred")
    expect(reviewer.locator("#grounds")).to_have_text(MARKUP)
    expect(reviewer.locator("h1")).to_contain_text(application_id)
    expect(reviewer.locator("#timeline")).to_contain_text(MARKUP)
    assert reviewer.evaluate("window.pwned") is None
    assert reviewer.locator("main img, main script").count() == 0
    # the application's page: its id, the grounds and the reason in its timeline, as text
    reviewer.goto(f"{console.url}/decisions?application_id={quote(application_id, safe='')}")
    expect(reviewer.locator("#timeline")).to_contain_text(f"grounds: {MARKUP}")
    assert reviewer.evaluate("window.pwned") is None
    assert reviewer.locator("main img, main script, main svg").count() == 0


def test_a_form_without_its_csrf_token_is_refused(services, browser, keys):
    classifier, console = services
    application_id = rejected(classifier, keys)
    reviewer = logged_in(browser, console, keys, "dave", "review")
    for form in ({"application_id": application_id, "grounds": "x"},
                 {"application_id": application_id, "grounds": "x", "csrf": "0" * 64}):
        answer = reviewer.request.post(console.url + "/reviews", form=form)
        assert answer.status == 403 and "CSRF token" in answer.text()
    assert DecisionStore(classifier.env["LOAN_RECORDS_URL"]).latest(application_id)["review_id"] is None
    # the session cookie is out of the page's scripts' reach and sent to this site only
    [cookie] = reviewer.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # and it ends with its token (30 minutes here), not after the session's 8 hours
    assert time.time() + 25 * 60 < cookie["expires"] <= time.time() + 30 * 60 + 5
    # logging in with a token that is not valid is a 401 page
    page = browser.new_context().new_page()
    page.goto(console.url + "/login")
    page.fill("#token", "not-a-token")
    page.click("#login")
    expect(page.locator("#error")).to_contain_text("not a JWT")


def test_a_search_by_date_decision_model_and_group_finds_the_decisions_and_records_the_look(services, browser, keys):
    classifier, console = services
    application_id = rejected(classifier, keys)
    store = DecisionStore(classifier.env["LOAN_RECORDS_URL"])
    decided = store.latest(application_id)
    auditor = logged_in(browser, console, keys, "examiner-2", "audit")
    auditor.goto(f"{console.url}/search")
    auditor.fill("#since", decided["decided_at"].date().isoformat())
    auditor.select_option("#decision", "rejected")
    auditor.fill("#model", decided["model_version"])
    auditor.fill("#group", f"gender={REJECTED_APPLICATION['gender']}")
    auditor.click("#go")
    expect(auditor.locator("#found")).to_contain_text(application_id)
    expect(auditor.locator("#found .decision").first).to_have_text("rejected")
    auditor.select_option("#decision", "approved")
    auditor.click("#go")
    expect(auditor.locator("#count")).to_be_visible()
    expect(auditor.locator("#found")).not_to_contain_text(application_id)
    looks = [e["content"] for e in store.events_of(decided["request_id"], decided["row"]) if e["kind"] == "looked"]
    assert [look["by"]["subject"] for look in looks] == ["examiner-2"] and looks[0]["page"].startswith("/search?")
    auditor.goto(f"{console.url}/search?since=yesterday")
    expect(auditor.locator("#error")).to_contain_text("since must be a date or time")


def test_behind_an_authenticating_proxy_the_bearer_header_is_the_session(services, browser, keys):
    _, console = services
    proxied = browser.new_context(extra_http_headers={"Authorization": f"Bearer {token(keys, 'review', subject='erin')}"})
    page = proxied.new_page()
    page.goto(console.url + "/")
    expect(page).to_have_url(console.url + "/")  # no login page
    expect(page.locator("#who")).to_have_text("erin (review)")
    assert proxied.cookies() == []  # nothing kept: each request carries the proxy's header
    refused = browser.new_context(extra_http_headers={"Authorization": f"Bearer {token(keys, 'explain')}"}).new_page()
    answer = refused.goto(console.url + "/")
    assert answer.status == 403
    expect(refused.locator("#error")).to_contain_text("takes the role")


def test_the_monitoring_page_shows_the_records_figures_for_a_window(services, browser, keys, artifacts):
    classifier, console = services
    application_id = rejected(classifier, keys)
    store = DecisionStore(classifier.env["LOAN_RECORDS_URL"])
    decided = store.latest(application_id)
    since, until = decided["decided_at"] - timedelta(hours=1), decided["decided_at"] + timedelta(hours=1)
    expected = record_figures(store, artifacts.classifier_manifest, since, until)
    auditor = logged_in(browser, console, keys, "examiner-3", "audit")
    auditor.goto(f"{console.url}/monitoring")
    auditor.fill("#since", f"{since:%Y-%m-%dT%H:%M:%S}")
    auditor.fill("#until", f"{until:%Y-%m-%dT%H:%M:%S}")
    auditor.click("#go")
    expect(auditor.locator("#applications")).to_have_text(str(expected["applications"]))
    for attribute, impact in expected["adverse_impact"].items():
        expect(auditor.locator(f"#chart-{attribute} rect")).to_have_count(len(impact["groups"]))
        if impact["ratio"] is not None:
            expect(auditor.locator(f"#air-{attribute}")).to_contain_text(f"{impact['ratio']:.3f}")
    expect(auditor.locator("#drift")).to_contain_text(f"{expected['score']['psi']:.3f}")
    auditor.goto(f"{console.url}/monitoring?since=2026-02-01&until=2026-01-01")
    expect(auditor.locator("#error")).to_contain_text("must be before until")
    auditor.goto(f"{console.url}/monitoring?model=no-such-model")
    expect(auditor.locator("#error")).to_contain_text("is not among LOAN_REVIEW_ARTIFACTS")


def test_the_models_page_shows_each_models_gate_record_and_held_out_rates(services, browser, keys, artifacts):
    _, console = services
    manifest = artifacts.classifier_manifest
    auditor = logged_in(browser, console, keys, "examiner-4", "audit")
    auditor.goto(f"{console.url}/models")
    model = auditor.locator(f"#model-{manifest.version}")
    expect(model.locator(".gate-status")).to_have_text(manifest.gate.status)
    expect(model.locator(".gate tr")).to_have_count(1 + len(manifest.gate.checks))
    for attribute, impact in manifest.held_out["air"].items():
        expect(model.locator(f"#held-out-{manifest.version}-{attribute} rect")).to_have_count(len(impact["groups"]))
    expect(model).to_contain_text(manifest.sha256)


def test_a_notice_is_refused_by_name_where_there_is_none(services, browser, keys):
    classifier, console = services
    approved = f"approved-{uuid.uuid4().hex[:8]}"
    answer = call("POST", classifier.predictions_url, token(keys, "decide", subject="lender-system"),
                  json={"jsonData": [EXAMPLE_APPLICATION], "meta": {"tags": {"application_ids": [approved]}}})
    assert answer.json()["meta"]["tags"]["decisions"] == ["approved"], answer.text
    reviewer = logged_in(browser, console, keys, "frank", "review")
    for query, status, words in ((f"application_id={approved}", 404, "no adverse action notice"),
                                 ("application_id=nobody-at-all", 404, "has no decision on the record"),
                                 (f"application_id={approved}&format=docx", 400, "format must be html or pdf")):
        answer = reviewer.request.get(f"{console.url}/notice?{query}")
        assert answer.status == status and words in answer.text(), (query, answer.status, answer.text()[:300])


def test_a_reviewer_asks_for_the_anchor_and_recourse_and_the_explainer_records_who_asked(services, browser, keys):
    classifier, console = services
    application_id = rejected(classifier, keys)
    reviewer = logged_in(browser, console, keys, "gina", "review")
    reviewer.goto(f"{console.url}/decisions?application_id={application_id}")
    expect(reviewer.locator("#explanations + p")).to_have_text("None asked yet.")
    reviewer.click("#ask-anchor")
    expect(reviewer.locator(".explanation.anchor .anchor")).to_contain_text("THEN rejected")
    reviewer.click("#ask-recourse")
    expect(reviewer.locator(".explanation.recourse")).to_contain_text("asked by gina")
    expect(reviewer.locator("#timeline")).to_contain_text("asked by gina (review)")
    decided = DecisionStore(classifier.env["LOAN_RECORDS_URL"]).latest(application_id)
    asked = [(e["kind"], e["content"]["asked_by"]) for e in
             DecisionStore(classifier.env["LOAN_RECORDS_URL"]).events_of(decided["request_id"], decided["row"])
             if e["kind"] in ("anchor", "recourse")]
    assert asked == [("anchor", {"subject": "gina", "role": "review"}), ("recourse", {"subject": "gina", "role": "review"})]
    # a kind the explainer does not give is refused by name, and nothing is asked
    csrf = reviewer.locator("input[name=csrf]").first.get_attribute("value")
    refused = reviewer.request.post(f"{console.url}/decisions/explanations",
                                    form={"csrf": csrf, "application_id": application_id, "kind": "shap"})
    assert refused.status == 400 and "kind must be anchor or recourse" in refused.text()
