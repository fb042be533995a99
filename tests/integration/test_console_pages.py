"""The reviewer console's pages in a real browser: Playwright driving Debian's chromium against the
real console, classifier and record (LOAN_AUTH=on, a second reviewer required). A contest taken
from a rejection to a reversal by two reviewers; an auditor who sees and cannot act; markup in ids,
grounds and reasons shown as text; a form without its CSRF token refused; who looked, recorded."""
import shutil
import uuid

import pytest
from playwright.sync_api import expect, sync_playwright

from loanxai.records.store import DecisionStore
from tests.conftest import REJECTED_APPLICATION
from tests.integration.test_auth import call, token
from tests.integration.test_console_api import classifier_and_console
from tests.integration.test_records_service import LETTERHEAD, records_command

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: what would run if markup were not escaped: it sets a flag the test reads
MARKUP = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>'


@pytest.fixture(scope="module")
def services(artifacts, keys, tmp_path_factory):
    with classifier_and_console(artifacts, keys, tmp_path_factory.mktemp("pages-logs")) as started:
        yield started


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
