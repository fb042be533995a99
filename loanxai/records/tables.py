"""The record's tables, in SQLAlchemy Core: what the code reads and writes, at the newest migration.

A decision is one application of one request: its key is the request's id (Seldon's ``puid``)
and the application's row in the request. The champion's decisions (those answered) are in
``decisions``; a challenger shadowing it records its own of the same requests in
``challenger_decisions``, keyed by its model version too. A contest of a decision is a review
(``reviews``) whose every step is an event in ``review_events``; the decisions a review makes
(the model's on corrected inputs, the reviewer's action) are decisions too, naming their review.
Protected attributes are kept apart from the inputs (for monitoring and audit only); the inputs
are kept exactly as entered (12 CFR 1002.12(b), comment 12(b)-2). Every column change is an
Alembic migration (:mod:`loanxai.records.migrations`); a test checks these tables equal what the
migrations make.
"""
from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Float, ForeignKeyConstraint, Index, Integer, MetaData, String, Table, Text, cast
from sqlalchemy.dialects.postgresql import JSONB

from loanxai.config import CHALLENGER, CHAMPION
from loanxai.core.codecs import MAX_PUID_CHARACTERS

__all__ = ["DECISION_COLUMNS", "MODEL_ROLE_TABLES", "SHARED_DECISION_COLUMNS", "challenger_decisions", "decisions",
           "events", "metadata", "purges", "review_events", "reviews"]


metadata = MetaData()

# request_id: Seldon's puid; row: the application's row in the request, from 0; application_id:
# the lender's, or one made up; decided_at: UTC; inputs: as entered, without protected
# attributes; protected: attribute -> group; probability: of approval; reasons: the principal
# reasons answered, when asked
def _decision_columns(model_version_in_key: bool) -> list[Column]:
    return [
        Column("request_id", String(MAX_PUID_CHARACTERS), primary_key=True),
        Column("row", Integer, primary_key=True, autoincrement=False),
        # a made-up id is the request's and the row's
        Column("application_id", String(MAX_PUID_CHARACTERS + 16), nullable=False),
        Column("decided_at", DateTime(timezone=True), nullable=False),
        Column("model_version", String(12), nullable=False, primary_key=model_version_in_key),
        Column("manifest_sha256", String(64), nullable=False),
        Column("dataset", Text, nullable=False),
        Column("inputs", JSON, nullable=False),
        Column("protected", JSON, nullable=False),
        Column("probability", Float, nullable=False),
        Column("cutoff", Float, nullable=False),
        Column("decision", String(8), nullable=False),
        Column("reasons", JSON, nullable=True),
    ]


#: the champion's decisions: what the applicants were answered, and what their reviews decided
#: (review_id: the review that decided, None: answered by the classifier; decided_by: the reviewers
#: who acted, None: the model decided)
decisions = Table(
    "decisions", metadata, *_decision_columns(model_version_in_key=False),
    Column("review_id", Integer, nullable=True),
    Column("decided_by", JSON, nullable=True),
    Index("ix_decisions_application_id", "application_id"),
    # a review's decisions, read on every step and page of it (a scan of a million decisions took 0.3 s)
    Index("ix_decisions_review_id", "review_id"),
    Index("ix_decisions_decided_at", "decided_at"),
    # a search by model version: the newest of a model replaced months ago were a scan of every
    # decision since (1.5 s over a million, make bench)
    Index("ix_decisions_model_version_decided_at", "model_version", "decided_at"),
)
# PostgreSQL only: the protected groups, which a search by group asks by containment
# (loanxai.records.queries); without it a rare group was a scan of most decisions (1.2 s over a
# million). SQLite has no index of a JSON document's members.
Index("ix_decisions_protected", cast(decisions.c.protected, JSONB).label("protected"), postgresql_using="gin",
      postgresql_ops={"protected": "jsonb_path_ops"}).ddl_if(dialect="postgresql")

#: a challenger's decisions of the same requests (mirrored to it, never answered), paired with the
#: champion's by ``(request_id, row)``; one request may be decided by several challengers in turn
challenger_decisions = Table(
    "challenger_decisions", metadata, *_decision_columns(model_version_in_key=True),
    Index("ix_challenger_decisions_decided_at", "decided_at"),
)

#: the table the decisions of a classifier in each model role go to
MODEL_ROLE_TABLES = {CHAMPION: decisions, CHALLENGER: challenger_decisions}

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(MAX_PUID_CHARACTERS), nullable=False),
    Column("row", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("content", JSON, nullable=False),
    ForeignKeyConstraint(["request_id", "row"], ["decisions.request_id", "decisions.row"], ondelete="CASCADE"),
    Index("ix_events_decision", "request_id", "row"),
)

#: every purge (``records purge``): when, the retention it applied (months, and the moment before
#: which it deleted), how many of the champion's decisions went, and the override that allowed a
#: retention shorter than the legal minimum (reason, who), if any; the reviews' retention and how
#: many went (None: a purge from before reviews)
purges = Table(
    "purges", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("retention_months", Integer, nullable=False),
    Column("purged_before", DateTime(timezone=True), nullable=False),
    Column("decisions", Integer, nullable=False),
    Column("override", JSON, nullable=True),
    Column("review_retention_months", Integer, nullable=True),
    Column("reviews", Integer, nullable=True),
)

#: a contest of a decision (an appeal): the decision contested, when it was opened and is due
#: (UTC), by whom (subject, role), the applicant's grounds in their words, and where it stands
#: (:data:`loanxai.records.reviews.STATUSES`, kept with the events that change it)
reviews = Table(
    "reviews", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(MAX_PUID_CHARACTERS), nullable=False),
    Column("row", Integer, nullable=False),
    Column("application_id", String(MAX_PUID_CHARACTERS + 16), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("opened_by", JSON, nullable=False),
    Column("grounds", Text, nullable=False),
    Column("status", String(16), nullable=False),
    ForeignKeyConstraint(["request_id", "row"], ["decisions.request_id", "decisions.row"], ondelete="CASCADE"),
    Index("ix_reviews_application_id", "application_id"),
    Index("ix_reviews_status_due_at", "status", "due_at"),
)

#: every step of a review, appended, never changed: what (kind), when, by whom (subject, role), and its content
review_events = Table(
    "review_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("review_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("by", JSON, nullable=False),
    Column("content", JSON, nullable=False),
    ForeignKeyConstraint(["review_id"], ["reviews.id"], ondelete="CASCADE"),
    Index("ix_review_events_review_id", "review_id"),
)

#: the columns of a decision, in the order exports give them
DECISION_COLUMNS = tuple(column.name for column in decisions.columns)
#: the columns a champion's and a challenger's decision both have
SHARED_DECISION_COLUMNS = tuple(column.name for column in challenger_decisions.columns)
