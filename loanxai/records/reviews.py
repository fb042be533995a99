"""Human review of recorded decisions: a contest opened, inputs corrected and decided again, a reviewer's action.

A contest (an appeal) is opened on a recorded rejection, with the applicant's grounds in their
words and, if they say an input was wrong, its corrected value. Corrected inputs are decided
again by the model that made the contested decision (:class:`~loanxai.records.redecide.Redecider`,
its manifest checksum checked) and the re-decision is recorded as a decision of its own, naming
its review. A reviewer then closes the review:

- ``uphold``: the rejection stands, on the inputs the model last decided; it is recorded as a new
  decision by the reviewer, with the reasons reviewed (its notice names them). Refused when the
  model approves the corrected inputs;
- ``reverse``: the application is approved, a new decision by the reviewer(s); with a second
  reviewer required (``LOAN_REVIEW_SECOND_REVIEWER``) the first reversal is a proposal another
  reviewer confirms;
- ``refer``: the review leaves the system (to underwriting, to compliance), with its reason.

Every step is an event appended to ``review_events`` with who and when, in the same transaction
as what it changes; a review is due ``LOAN_REVIEW_DAYS`` after it was opened. Regulation B counts
a reversed decision as a new action, and Colorado's law on automated decisions asks for the
correction of inaccurate data and an appeal with human review: these are those steps.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, null, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from loanxai.core.codecs import MAX_PUID_CHARACTERS
from loanxai.core.text import check_text
from loanxai.errors import InputError, RecordError, RecordUnavailable, ReviewConflict, ReviewNotFound
from loanxai.records.queries import utc
from loanxai.records.redecide import Redecider
from loanxai.records.store import DecisionStore
from loanxai.records.tables import decisions, review_events, reviews

__all__ = ["ACTIONS", "CLOSED", "MAX_GROUNDS_CHARACTERS", "OPEN", "STATUSES", "ReviewDesk", "Redeciders",
           "named_inputs"]

logger = logging.getLogger(__name__)

#: where a review stands: open; a reversal proposed, awaiting a second reviewer; closed by an action
OPEN, PROPOSED = "open", "proposed"
#: what each action closes a review as
CLOSED = {"uphold": "upheld", "reverse": "reversed", "refer": "referred"}
STATUSES = (OPEN, PROPOSED, *CLOSED.values())
#: what a reviewer may do with a review
ACTIONS = tuple(CLOSED)
#: the longest grounds, reason or note taken (a letter's worth of words)
MAX_GROUNDS_CHARACTERS = 4000
#: the largest review id a database holds (an integer column: 32 bits)
_LARGEST_ID = 2**31 - 1


class Redeciders:
    """The models whose decisions may be contested, by manifest checksum, from their artifact folders."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.by_manifest: dict[str, Redecider] = {}
        for folder in folders:
            redecider = Redecider(folder)
            self.by_manifest[redecider.manifest.sha256] = redecider

    def of(self, record: Mapping[str, Any]) -> Redecider:
        """The model that made ``record``; :class:`RecordError` naming it when none of the folders holds it."""
        found = self.by_manifest.get(record["manifest_sha256"])
        if found is None:
            raise RecordError(f"application {record['application_id']} was decided by model {record['model_version']} "
                              f"(manifest sha256 {record['manifest_sha256']}), whose artifacts are not among "
                              "LOAN_REVIEW_ARTIFACTS: add its folder (keep every served model's for the retention period)")
        return found


@dataclass(frozen=True)
class ReviewDesk:
    """Reviews on the record of ``store``: contests answered within ``days``, a reversal of an
    automated rejection taking two reviewers when ``second_reviewer``; corrected inputs decided
    again by ``redeciders``. ``by`` (who acts) is ``{"subject": ..., "role": ...}``."""

    store: DecisionStore
    redeciders: Redeciders
    days: int = 30
    second_reviewer: bool = False

    def open(self, application_id: str, grounds: str, by: Mapping[str, str],
             corrections: Mapping[str, Any] | None = None, now: datetime | None = None) -> int:
        """Open a contest of the newest decision of ``application_id`` (a rejection, with no
        review open); with ``corrections``, decide the corrected inputs again at once. The review's id."""
        check_text(application_id, "application_id", MAX_PUID_CHARACTERS + 16)
        check_text(grounds, "grounds", MAX_GROUNDS_CHARACTERS, lines=True)
        record = self.store.latest(application_id)
        if record is None:
            raise ReviewNotFound(f"application {application_id!r} has no decision on the record")
        if record["decision"] != "rejected":
            raise ReviewConflict(f"application {application_id!r} was {record['decision']}: only a rejection is contested")
        if corrections is not None:  # refused before anything is written
            self._corrected_inputs(record, corrections)
        at = now or datetime.now(UTC)
        with self._transaction() as connection:
            # the contested decision's row locked: two contests of it at once open one review
            connection.execute(select(decisions.c.row).where(decisions.c.request_id == record["request_id"],
                                                             decisions.c.row == record["row"]).with_for_update())
            opened = self._open_reviews(connection, application_id)
            if opened:
                raise ReviewConflict(f"application {application_id!r} has review {opened[0]} open: add to it")
            review_id = connection.execute(insert(reviews).values(
                request_id=record["request_id"], row=record["row"], application_id=application_id, opened_at=at,
                due_at=at + timedelta(days=self.days), opened_by=dict(by), grounds=grounds, status=OPEN)).inserted_primary_key[0]
            self._event(connection, review_id, "opened", at, by, {"grounds": grounds, "decision": _key(record)})
        logger.info("review %d opened on application %s by %s", review_id, application_id, by["subject"])
        if corrections is not None:
            self.correct(review_id, corrections, by, now=at)
        return review_id

    def correct(self, review_id: int, corrections: Mapping[str, Any], by: Mapping[str, str],
                note: str | None = None, now: datetime | None = None) -> dict[str, Any]:
        """Correct inputs of an open review and decide them again with the model that made the
        contested decision; the re-decision as recorded."""
        if note is not None:
            check_text(note, "note", MAX_GROUNDS_CHARACTERS, lines=True)
        review = self._review(review_id)
        self._check_status(review, (OPEN,), "corrected")
        standing = self.standing(review_id)
        inputs = self._corrected_inputs(standing, corrections)
        again = self.redeciders.of(standing).decide({**standing, "inputs": inputs})
        at = now or datetime.now(UTC)
        with self._transaction() as connection:
            self._check_status(self._review(review_id, connection, lock=True), (OPEN,), "corrected")
            if self._standing(connection, review)["request_id"] != standing["request_id"]:
                raise ReviewConflict(f"review {review_id} was corrected by someone else meanwhile: read it and retry")
            made = self._decision(connection, review, standing, at, inputs=inputs, probability=again.probability,
                                  decision=again.decision, reasons=again.reasons, decided_by=None)
            self._event(connection, review_id, "corrected", at, by,
                        {"corrections": dict(corrections), "note": note, "decision": _key(made),
                         "probability": again.probability, "outcome": again.decision})
        logger.info("review %d: inputs corrected by %s, decided again: %s", review_id, by["subject"], again.decision)
        return made

    def act(self, review_id: int, action: str, reason: str, by: Mapping[str, str],
            now: datetime | None = None) -> str:
        """A reviewer's action (:data:`ACTIONS`) with its reason; the review's status after it."""
        if action not in ACTIONS:
            raise InputError(f"action must be one of {', '.join(ACTIONS)}, not {str(action)[:32]!r}")
        check_text(reason, "reason", MAX_GROUNDS_CHARACTERS, lines=True)
        at = now or datetime.now(UTC)
        with self._transaction() as connection:
            review = self._review(review_id, connection, lock=True)
            self._check_status(review, (OPEN, PROPOSED), action)
            standing = self._standing(connection, review)
            if action == "refer":
                return self._close(connection, review, action, reason, by, at, {})
            if action == "uphold":
                if standing["decision"] != "rejected":
                    raise ReviewConflict(f"review {review_id}: the model approves the corrected inputs, so the "
                                         "rejection has no reason to stand on: reverse, refer, or correct the inputs")
                reasons = standing["reasons"] or self.redeciders.of(standing).decide(standing).reasons
                made = self._decision(connection, review, standing, at, decision="rejected", reasons=reasons,
                                      decided_by=[dict(by)])
                return self._close(connection, review, action, reason, by, at, {"decision": _key(made)})
            reviewers = self._reversal_reviewers(connection, review, by)
            if self.second_reviewer and len(reviewers) < 2:
                self._event(connection, review_id, "proposed", at, by, {"action": action, "reason": reason})
                connection.execute(update(reviews).where(reviews.c.id == review_id).values(status=PROPOSED))
                logger.info("review %d: reversal proposed by %s, awaiting a second reviewer", review_id, by["subject"])
                return PROPOSED
            made = self._decision(connection, review, standing, at, decision="approved", reasons=None,
                                  decided_by=reviewers)
            return self._close(connection, review, action, reason, by, at, {"decision": _key(made)})

    def _reversal_reviewers(self, connection: Connection, review: Mapping[str, Any],
                            by: Mapping[str, str]) -> list[dict[str, str]]:
        """Who reverses: the proposer and ``by`` (a proposal awaiting its second reviewer), else ``by``."""
        if review["status"] != PROPOSED:
            return [dict(by)]
        proposal = connection.execute(select(review_events.c.by).where(
            review_events.c.review_id == review["id"], review_events.c.kind == "proposed")
            .order_by(review_events.c.id.desc()).limit(1)).scalar_one()
        if proposal["subject"] == by["subject"]:
            raise ReviewConflict(f"review {review['id']}: {by['subject']} proposed the reversal; another reviewer "
                                 "must confirm it")
        return [proposal, dict(by)]

    def _close(self, connection: Connection, review: Mapping[str, Any], action: str, reason: str,
               by: Mapping[str, str], at: datetime, content: dict[str, Any]) -> str:
        status = CLOSED[action]
        self._event(connection, review["id"], status, at, by, {"reason": reason, **content})
        connection.execute(update(reviews).where(reviews.c.id == review["id"]).values(status=status))
        logger.info("review %d %s by %s", review["id"], status, by["subject"])
        return status

    def review(self, review_id: int) -> dict[str, Any]:
        """A review as recorded: its row, ``events`` oldest first, ``decisions`` (the contested
        one first, then those it made) and ``overdue`` (open past its deadline)."""
        with self.store.engine.connect() as connection:
            review = self._review(review_id, connection)
            review["events"] = [_moment(dict(r._mapping), "at") for r in connection.execute(
                select(review_events).where(review_events.c.review_id == review_id).order_by(review_events.c.id))]
            review["decisions"] = [self._contested(connection, review), *[
                _moment(dict(r._mapping), "decided_at") for r in connection.execute(
                    select(decisions).where(decisions.c.review_id == review_id).order_by(decisions.c.decided_at))]]
        review["overdue"] = review["status"] in (OPEN, PROPOSED) and review["due_at"] < datetime.now(UTC)
        return review

    def queue(self, statuses: Sequence[str] = (OPEN, PROPOSED), limit: int = 100) -> list[dict[str, Any]]:
        """Reviews in ``statuses``, the soonest due first."""
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise InputError(f"status must be among {', '.join(STATUSES)}, not {str(unknown[0])[:32]!r}")
        statement = (select(reviews).where(reviews.c.status.in_(statuses)).order_by(reviews.c.due_at, reviews.c.id)
                     .limit(limit))
        with self.store.engine.connect() as connection:
            return [_review_row(r._mapping) for r in connection.execute(statement)]

    def reviews_of(self, application_id: str) -> list[dict[str, Any]]:
        """The reviews of an application, oldest first."""
        statement = select(reviews).where(reviews.c.application_id == application_id).order_by(reviews.c.id)
        with self.store.engine.connect() as connection:
            return [_review_row(r._mapping) for r in connection.execute(statement)]

    def standing(self, review_id: int) -> dict[str, Any]:
        """The decision a review stands on: the model's last one (a re-decision of corrected inputs, else the contested)."""
        with self.store.engine.connect() as connection:
            return self._standing(connection, self._review(review_id, connection))

    def _standing(self, connection: Connection, review: Mapping[str, Any]) -> dict[str, Any]:
        latest = connection.execute(select(decisions).where(decisions.c.review_id == review["id"],
                                                            decisions.c.decided_by.is_(None))
                                    .order_by(decisions.c.decided_at.desc(), decisions.c.request_id.desc())
                                    .limit(1)).first()
        return _moment(dict(latest._mapping), "decided_at") if latest else self._contested(connection, review)

    def _contested(self, connection: Connection, review: Mapping[str, Any]) -> dict[str, Any]:
        row = connection.execute(select(decisions).where(decisions.c.request_id == review["request_id"],
                                                         decisions.c.row == review["row"])).one()
        return _moment(dict(row._mapping), "decided_at")

    def _corrected_inputs(self, record: Mapping[str, Any], corrections: Mapping[str, Any]) -> dict[str, Any]:
        """The inputs of ``record`` with ``corrections`` applied, checked by the deciding model's schema."""
        schema = self.redeciders.of(record).schema
        if not isinstance(corrections, Mapping) or not corrections:
            raise InputError("corrections must be an object of one or more input names to corrected values")
        unknown = [name for name in corrections if name not in schema.feature_names]
        if unknown:
            raise InputError(f"corrections name {str(unknown[0])[:64]!r}, which is not an input of model "
                             f"{record['model_version']}; its inputs: {', '.join(schema.feature_names)}")
        named = named_inputs(record["inputs"], schema.feature_names)
        corrected = {name: named.get(name) for name in schema.feature_names} | dict(corrections)
        try:
            schema.encode_records([corrected])
        except InputError as error:
            raise InputError(f"corrections: {error.message.replace(' in row 0', '')}") from None
        return corrected

    def _decision(self, connection: Connection, review: Mapping[str, Any], standing: Mapping[str, Any], at: datetime,
                  *, decision: str, reasons: Any, decided_by: list[dict[str, str]] | None,
                  inputs: Any = None, probability: float | None = None) -> dict[str, Any]:
        """Record a decision the review makes (a new request id: ``review-<id>-<n>``)."""
        made = connection.execute(select(func.count()).select_from(decisions)
                                  .where(decisions.c.review_id == review["id"])).scalar_one()
        row = {**{c: standing[c] for c in ("application_id", "model_version", "manifest_sha256", "dataset",
                                           "protected", "cutoff")},
               "request_id": f"review-{review['id']}-{made + 1}", "row": 0, "decided_at": at,
               "inputs": standing["inputs"] if inputs is None else inputs,
               "probability": standing["probability"] if probability is None else probability,
               "decision": decision, "reasons": reasons, "review_id": review["id"], "decided_by": decided_by}
        # the model's: SQL's NULL, which JSON's None is not (it would be JSON's null)
        connection.execute(insert(decisions).values(**row | {"decided_by": null() if decided_by is None else decided_by}))
        return row

    def _event(self, connection: Connection, review_id: int, kind: str, at: datetime, by: Mapping[str, str],
               content: dict[str, Any]) -> None:
        connection.execute(insert(review_events).values(review_id=review_id, kind=kind, at=at, by=dict(by),
                                                        content=content))

    def _review(self, review_id: int, connection: Connection | None = None, lock: bool = False) -> dict[str, Any]:
        """A review's row; ``lock``: held until the transaction ends (PostgreSQL; SQLite writes one at a time)."""
        if connection is None:
            with self.store.engine.connect() as opened:
                return self._review(review_id, opened)
        if not 0 < review_id <= _LARGEST_ID:
            raise ReviewNotFound(f"there is no review {review_id}")
        statement = select(reviews).where(reviews.c.id == review_id)
        found = connection.execute(statement.with_for_update() if lock else statement).first()
        if found is None:
            raise ReviewNotFound(f"there is no review {review_id}")
        return _review_row(found._mapping)

    @staticmethod
    def _check_status(review: Mapping[str, Any], allowed: Sequence[str], what: str) -> None:
        if review["status"] not in allowed:
            raise ReviewConflict(f"review {review['id']} is {review['status']}: it cannot be {what}"
                                 if what == "corrected" else
                                 f"review {review['id']} is {review['status']}: no {what} is taken on it")

    @staticmethod
    def _open_reviews(connection: Connection, application_id: str) -> list[int]:
        return list(connection.execute(select(reviews.c.id).where(reviews.c.application_id == application_id,
                                                                  reviews.c.status.in_((OPEN, PROPOSED)))).scalars())

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One transaction on the record: a failing database is a 503 (nothing of the step is recorded)."""
        try:
            with self.store.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as error:
            logger.error("a review step could not be recorded at %s: %s", self.store.shown_url, error)
            raise RecordUnavailable("the review step could not be recorded (the record's database failed; the "
                                    "console's log says why): nothing was changed, retry in a moment") from None


def named_inputs(inputs: Any, names: Sequence[str]) -> dict[str, Any]:
    """Recorded inputs as input name -> value (a request may have sent them as a list, in ``names``' order)."""
    return dict(inputs) if isinstance(inputs, Mapping) else dict(zip(names, inputs))


def _key(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"request_id": record["request_id"], "row": record["row"]}


def _moment(row: dict[str, Any], name: str) -> dict[str, Any]:
    row[name] = utc(row[name])
    return row


def _review_row(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return _moment(_moment(dict(mapping), "opened_at"), "due_at")
