"""Reviews of recorded decisions against the real databases (SQLite and PostgreSQL) and the real
model: a contest opened, inputs corrected and decided again by the model that decided, a reviewer's
action, every step an event; what is refused, and why."""
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from loanxai.errors import InputError, ReviewConflict, ReviewNotFound
from loanxai.records import notices
from loanxai.records.queries import Selection, purge, select_decisions
from loanxai.records.redecide import Redecider
from loanxai.records.reviews import Redeciders, ReviewDesk
from loanxai.records.store import RequestDecisions, open_store
from loanxai.records.tables import purges
from tests.conftest import EXAMPLE_APPLICATION, REJECTED_APPLICATION

LENDER = {"subject": "lender-system", "role": "decide"}
ALICE, BOB = {"subject": "alice", "role": "review"}, {"subject": "bob", "role": "review"}
LETTERHEAD = notices.Letterhead("Example Bank|1 Main St", "555-0100", "Federal Agency|Washington, DC")


@pytest.fixture
def desk(url, artifacts):
    return ReviewDesk(open_store(url), Redeciders([artifacts.classifier_dir]), days=30, second_reviewer=True)


def record(desk, application_id, application=REJECTED_APPLICATION, at=None):
    """Decide ``application`` with the model and record it as the classifier does: inputs as
    entered without the protected attributes, which are kept apart."""
    [redecider] = desk.redeciders.by_manifest.values()
    manifest = redecider.manifest
    inputs = {k: v for k, v in application.items() if k in redecider.schema.feature_names}
    protected = {k: application.get(k) for k in redecider.schema.protected}
    made = redecider.decide({"application_id": application_id, "inputs": inputs, "cutoff": manifest.cutoff,
                             "manifest_sha256": manifest.sha256, "probability": 0.0, "decision": None})
    desk.store.record(RequestDecisions(
        f"req-{application_id}", [application_id], at or datetime.now(UTC), manifest.version, manifest.sha256,
        "census", [inputs], [protected], [made.probability], manifest.cutoff, [made.decision], None))
    return made


def test_a_contest_corrected_decided_again_and_reversed_by_two_reviewers(desk):
    assert record(desk, "A-1").decision == "rejected"
    opened = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    review_id = desk.open("A-1", "I work 60 hours, not 40.", LENDER, {"hours-per-week": 60}, now=opened)
    review = desk.review(review_id)
    assert review["status"] == "open" and review["due_at"] == opened + timedelta(days=30)
    contested, redecided = review["decisions"]
    # the correction is decided again by the same model, recorded as a decision of the review
    assert redecided["request_id"] == f"review-{review_id}-1" and redecided["review_id"] == review_id
    assert redecided["inputs"]["hours-per-week"] == 60 and contested["inputs"]["hours-per-week"] == 40
    assert redecided["manifest_sha256"] == contested["manifest_sha256"] and redecided["decided_by"] is None
    assert redecided["protected"] == contested["protected"]
    assert redecided["probability"] != contested["probability"] and redecided["reasons"] is not None
    # the first reviewer's reversal is a proposal; the same reviewer cannot confirm it
    assert desk.act(review_id, "reverse", "Hours verified with the employer.", ALICE) == "proposed"
    with pytest.raises(ReviewConflict, match="another reviewer must confirm"):
        desk.act(review_id, "reverse", "Confirming my own.", ALICE)
    assert desk.act(review_id, "reverse", "Checked the payslips.", BOB) == "reversed"
    review = desk.review(review_id)
    assert [e["kind"] for e in review["events"]] == ["opened", "corrected", "proposed", "reversed"]
    assert [e["by"]["subject"] for e in review["events"]] == ["lender-system", "lender-system", "alice", "bob"]
    assert review["events"][0]["content"]["grounds"] == "I work 60 hours, not 40."
    assert review["events"][3]["content"]["reason"] == "Checked the payslips."
    reversal = review["decisions"][-1]
    assert reversal["decision"] == "approved" and reversal["decided_by"] == [ALICE, BOB]
    # the newest decision of the application is the reversal: a new action
    assert desk.store.latest("A-1")["request_id"] == reversal["request_id"]
    with pytest.raises(ReviewConflict, match="is reversed"):
        desk.act(review_id, "uphold", "Too late.", BOB)
    assert desk.queue() == []


def test_an_upheld_rejection_is_a_new_decision_whose_notice_names_the_reviewed_reasons(desk, artifacts):
    record(desk, "A-2")
    review_id = desk.open("A-2", "Please have a person look at this.", LENDER)
    assert desk.act(review_id, "uphold", "The inputs are as the applicant gave them.", ALICE) == "upheld"
    upheld = desk.review(review_id)["decisions"][-1]
    assert upheld["decision"] == "rejected" and upheld["decided_by"] == [ALICE]
    assert upheld["reasons"]["reasons"]  # given again by the model that decided: the contested had none recorded
    [page] = notices.render_notices([upheld], Redecider(artifacts.classifier_dir), LETTERHEAD)
    assert isinstance(page, str)
    for reason in upheld["reasons"]["reasons"][:notices.MAX_NOTICE_REASONS]:
        assert reason["code"] in page


def test_an_uphold_the_corrected_inputs_do_not_support_is_refused(desk):
    record(desk, "A-3")
    approving = {"occupation": EXAMPLE_APPLICATION["occupation"], "hours-per-week": EXAMPLE_APPLICATION["hours-per-week"]}
    review_id = desk.open("A-3", "Wrong occupation.", LENDER, approving)
    assert desk.review(review_id)["decisions"][-1]["decision"] == "approved"
    with pytest.raises(ReviewConflict, match="approves the corrected inputs"):
        desk.act(review_id, "uphold", "No.", ALICE)
    # corrected back, the rejection stands on the model's reasons again
    desk.correct(review_id, {"occupation": "Sales", "hours-per-week": 40}, ALICE, note="The change was not verified.")
    assert desk.act(review_id, "uphold", "Occupation not verified.", ALICE) == "upheld"


def test_refused_steps_name_the_problem_and_record_nothing(desk):
    record(desk, "A-4")
    record(desk, "A-ok", EXAMPLE_APPLICATION)
    with pytest.raises(ReviewNotFound, match="no decision"):
        desk.open("nobody", "x", LENDER)
    with pytest.raises(ReviewConflict, match="only a rejection"):
        desk.open("A-ok", "x", LENDER)
    with pytest.raises(InputError, match="'gender', which is not an input"):
        desk.open("A-4", "x", LENDER, {"gender": "Male"})
    with pytest.raises(InputError, match="corrections: .*hours-per-week"):
        desk.open("A-4", "x", LENDER, {"hours-per-week": "many"})
    with pytest.raises(InputError, match="grounds holds the character U\\+202E"):
        desk.open("A-4", "look \u202e here", LENDER)
    assert desk.queue() == []  # none of them opened a review
    review_id = desk.open("A-4", "x", LENDER)
    with pytest.raises(ReviewConflict, match=f"review {review_id} open"):
        desk.open("A-4", "again", LENDER)
    with pytest.raises(InputError, match="action must be one of"):
        desk.act(review_id, "approve", "x", ALICE)
    with pytest.raises(ReviewNotFound):
        desk.review(review_id + 1000)
    with pytest.raises(ReviewNotFound):
        desk.act(2**40, "refer", "x", ALICE)
    assert desk.act(review_id, "refer", "To the underwriting team.", ALICE) == "referred"
    with pytest.raises(ReviewConflict, match="cannot be corrected"):
        desk.correct(review_id, {"hours-per-week": 50}, ALICE)
    assert [e["kind"] for e in desk.review(review_id)["events"]] == ["opened", "referred"]


def test_the_queue_is_soonest_due_first_and_overdue_is_shown(desk):
    for name in ("Q-1", "Q-2"):
        record(desk, name)
    late = desk.open("Q-2", "x", LENDER, now=datetime.now(UTC) - timedelta(days=40))
    soon = desk.open("Q-1", "x", LENDER)
    assert [r["id"] for r in desk.queue()] == [late, soon]
    assert desk.review(late)["overdue"] and not desk.review(soon)["overdue"]
    with pytest.raises(InputError, match="status must be among"):
        desk.queue(["pending"])


def test_monitoring_counts_the_served_decisions_and_exports_every_decision(desk):
    record(desk, "M-1")
    review_id = desk.open("M-1", "x", LENDER, {"hours-per-week": 45})
    desk.act(review_id, "refer", "x", ALICE)
    every = list(select_decisions(desk.store, Selection()))
    served = list(select_decisions(desk.store, Selection(reviewed=False)))
    assert len(every) == 2 and [r["request_id"] for r in served] == ["req-M-1"]
    assert [r["review_id"] for r in select_decisions(desk.store, Selection(reviewed=True))] == [review_id]


def test_a_kept_review_keeps_the_decisions_it_contested_and_made(desk):
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=31 * 30)  # about 31 months: past the decisions' 25, within the reviews' 36
    record(desk, "P-1", at=long_ago)
    record(desk, "P-2", at=long_ago)
    review_id = desk.open("P-1", "x", LENDER, {"hours-per-week": 50}, now=long_ago + timedelta(days=1))
    assert purge(desk.store, 25, now=now, review_months=36) == 1  # P-2's alone
    assert desk.review(review_id)["status"] == "open" and len(desk.store.decisions_of_application("P-1")) == 2
    # a year on, the review is past its retention too: it goes, with the decisions it contested and made
    assert purge(desk.store, 25, now=now + timedelta(days=365), review_months=36) == 2
    with pytest.raises(ReviewNotFound):
        desk.review(review_id)
    assert desk.store.decisions_of_application("P-1") == []
    with desk.store.engine.connect() as connection:
        assert [tuple(r) for r in connection.execute(select(purges.c.decisions, purges.c.reviews,
                                                            purges.c.review_retention_months).order_by(purges.c.id))] \
            == [(1, 0, 36), (2, 1, 36)]
