"""An examiner's selections of the record, their exports, and the purge past the retention period.

A selection (:class:`Selection`) is a time window (``since`` inclusive, ``until`` exclusive,
UTC), a decision, a model version and a protected group, each optional. Exports write one row
per decision, the columns of :data:`~loanxai.records.tables.DECISION_COLUMNS`; ``inputs``,
``protected`` and ``reasons`` as JSON text.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta
from sqlalchemy import and_, cast, delete, exists, func, insert, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from loanxai.config import LEGAL_MINIMUM_MONTHS
from loanxai.core.schema import FeatureSchema
from loanxai.core.text import spreadsheet_cell
from loanxai.errors import RecordError
from loanxai.records.store import DecisionStore
from loanxai.records.tables import (
    DECISION_COLUMNS,
    SHARED_DECISION_COLUMNS,
    challenger_decisions,
    decisions,
    events,
    purges,
    review_events,
    reviews,
)

__all__ = ["EXPORT_FORMATS", "Selection", "asker", "challenger_versions", "event_text", "export", "outcomes_of",
           "paired_decisions", "purge", "recorded_features", "retention_limit", "select_decisions", "utc"]

logger = logging.getLogger(__name__)

#: export formats, by the output file's suffix
EXPORT_FORMATS = (".csv", ".parquet")

_JSON_COLUMNS = ("inputs", "protected", "reasons")
#: decisions read at a time from a large selection
BATCH = 1000


@dataclass(frozen=True)
class Selection:
    """Which decisions: decided in [since, until) (UTC), with this decision, by this model
    version, of this protected ``group`` (``(attribute, group)``), made in a review or answered
    by the classifier (``reviewed``: True or False); None: any."""

    since: datetime | None = None
    until: datetime | None = None
    decision: str | None = None
    model_version: str | None = None
    group: tuple[str, str] | None = None
    reviewed: bool | None = None

    def where(self) -> list[Any]:
        """The SQL conditions."""
        conditions = []
        if self.since is not None:
            conditions.append(decisions.c.decided_at >= self.since)
        if self.until is not None:
            conditions.append(decisions.c.decided_at < self.until)
        if self.decision is not None:
            conditions.append(decisions.c.decision == self.decision)
        if self.model_version is not None:
            conditions += [decisions.c.model_version == self.model_version, _within_model(self.model_version)]
        if self.group is not None:
            conditions.append(_InGroup(*self.group))
        if self.reviewed is not None:
            review = decisions.c.review_id
            conditions.append(review.is_not(None) if self.reviewed else review.is_(None))
        return conditions


def _within_model(version: str) -> Any:
    """Decided between the model's first and last decisions (their index's ends, migration 0006):
    always true, and where the database starts reading. Without it PostgreSQL reads a model's newest
    through the time index, from the newest decision of any model: months of another's for a model
    replaced (0.5-0.9 s over a million decisions, make bench)."""
    own = decisions.alias("model_span")  # not the outer query's decisions
    of = own.c.model_version == version
    return decisions.c.decided_at.between(select(func.min(own.c.decided_at)).where(of).scalar_subquery(),
                                          select(func.max(own.c.decided_at)).where(of).scalar_subquery())


class _InGroup(ColumnElement[bool]):
    """A decision's protected ``attribute`` is ``group``: on PostgreSQL, a containment in the
    groups as JSONB, which their GIN index answers (migration 0006); elsewhere, the attribute's value."""

    inherit_cache = False  # the attribute and group are kept as Python values, not bound for a cache key

    def __init__(self, attribute: str, group: str) -> None:
        self.attribute, self.group = attribute, group


@compiles(_InGroup)
def _group_value(element: _InGroup, compiler: Any, **kw: Any) -> str:
    return compiler.process(decisions.c.protected[element.attribute].as_string() == element.group, **kw)


@compiles(_InGroup, "postgresql")
def _group_contained(element: _InGroup, compiler: Any, **kw: Any) -> str:
    return compiler.process(cast(decisions.c.protected, JSONB).contains({element.attribute: element.group}), **kw)


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC (SQLite gives back the UTC time it was given, without its zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def event_text(event: Mapping[str, Any]) -> str:
    """What followed a decision, in a line: an outcome as recorded, an explanation by what it found and who asked."""
    content = event["content"]
    if event["kind"] == "anchor":
        answer = content["answer"]
        return (f"anchor {answer['anchor_text']!r} (precision {answer['precision']:.2f}, coverage "
                f"{answer['coverage']:.2f}; explainer {content['explainer_version']}, seed {content['parameters']['seed']}); "
                f"asked by {asker(content)}")
    if event["kind"] == "recourse":
        found = content["answer"].get("counterfactuals", [])
        return (f"recourse: {len(found)} approved applications like it (explainer {content['explainer_version']}, "
                f"k {content['parameters']['k']}, seed {content['parameters']['seed']}); asked by {asker(content)}")
    if event["kind"] == "looked":
        return f"shown in the console, page {content['page']}, to {content['by']['subject']} ({content['by']['role']})"
    return f"{event['kind']} {json.dumps(content)}"


def asker(content: Mapping[str, Any]) -> str:
    """Who asked for an explanation: the token's subject and role, or nobody known (LOAN_AUTH=off)."""
    caller = content.get("asked_by")
    return "an unauthenticated caller (LOAN_AUTH=off)" if caller is None else f"{caller['subject']} ({caller['role']})"


def select_decisions(store: DecisionStore, selection: Selection, limit: int | None = None,
                     newest_first: bool = False) -> Iterator[dict[str, Any]]:
    """The selected decisions, oldest first (or newest), read in batches."""
    order = [decisions.c.decided_at, decisions.c.request_id, decisions.c.row]
    statement = (select(decisions).where(*selection.where())
                 .order_by(*(column.desc() for column in order) if newest_first else order).limit(limit))
    # at most a batch is read whole: PostgreSQL plans a cursor for its first tenth of rows, and took
    # a month of a rare group through the time index (125 ms a page as a cursor, 8 ms read whole;
    # docs: Performance)
    streamed = {"yield_per": BATCH} if limit is None or limit > BATCH else {}
    with store.engine.connect() as connection:
        for row in connection.execution_options(**streamed).execute(statement):
            record = dict(row._mapping)
            record["decided_at"] = utc(record["decided_at"])
            yield record


def paired_decisions(store: DecisionStore, selection: Selection,
                     challenger_version: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The selected champion decisions a challenger of ``challenger_version`` decided too, each
    with the challenger's decision of the same application (same request id and row), oldest first."""
    shadow = challenger_decisions
    columns = [c.label(f"champion_{c.name}") for c in decisions.columns] + [
        c.label(f"challenger_{c.name}") for c in shadow.columns]
    statement = (select(*columns)
                 .join_from(decisions, shadow, and_(shadow.c.request_id == decisions.c.request_id,
                                                    shadow.c.row == decisions.c.row,
                                                    shadow.c.model_version == challenger_version))
                 .where(*selection.where()).order_by(decisions.c.decided_at, decisions.c.request_id, decisions.c.row))
    pairs = []
    with store.engine.connect() as connection:
        for row in connection.execution_options(yield_per=BATCH).execute(statement):
            values = row._mapping
            pair = tuple({name: values[f"{role}_{name}"] for name in SHARED_DECISION_COLUMNS}
                         for role in ("champion", "challenger"))
            for record in pair:
                record["decided_at"] = utc(record["decided_at"])
            pairs.append(pair)
    return pairs


def challenger_versions(store: DecisionStore, selection: Selection) -> dict[str, int]:
    """The challengers' model versions that decided selected requests, with how many decisions each."""
    shadow = challenger_decisions
    statement = (select(shadow.c.model_version, func.count())
                 .join_from(decisions, shadow, and_(shadow.c.request_id == decisions.c.request_id,
                                                    shadow.c.row == decisions.c.row))
                 .where(*selection.where()).group_by(shadow.c.model_version).order_by(shadow.c.model_version))
    with store.engine.connect() as connection:
        return {version: count for version, count in connection.execute(statement)}


def outcomes_of(store: DecisionStore, selection: Selection) -> dict[tuple[str, int], str]:
    """The outcome attached to each selected decision that has one (the newest when feedback
    came more than once): ``(request_id, row)`` -> ``"approved"`` or ``"rejected"``."""
    statement = (select(events.c.request_id, events.c.row, events.c.content)
                 .join(decisions, and_(events.c.request_id == decisions.c.request_id, events.c.row == decisions.c.row))
                 .where(events.c.kind == "outcome", *selection.where()).order_by(events.c.at, events.c.id))
    with store.engine.connect() as connection:
        return {(r.request_id, r.row): r.content["truth"] for r in connection.execute(statement)}


def recorded_features(schema: FeatureSchema, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The recorded applications' inputs as entered, encoded by the classifier's rule: shape
    (n, n_features). An input is an object when its request named the columns, else a list."""
    X = np.empty((len(records), schema.n_features))
    named = np.fromiter((isinstance(r["inputs"], Mapping) for r in records), bool, len(records))
    for rows, encode in ((np.flatnonzero(named), schema.encode_records), (np.flatnonzero(~named), schema.encode_rows)):
        if len(rows):
            X[rows] = encode([records[i]["inputs"] for i in rows])
    return X


def export(store: DecisionStore, selection: Selection, out: Path) -> int:
    """Write the selected decisions to ``out`` (CSV or Parquet, by its suffix); how many. A CSV
    cell a spreadsheet would run as a formula is written with a leading ``'``
    (:func:`~loanxai.core.text.spreadsheet_cell`); Parquet's are typed, written as they are."""
    if out.suffix not in EXPORT_FORMATS:
        raise RecordError(f"{out}: an export is {' or '.join(EXPORT_FORMATS)}")
    rows = [{**r, **{c: None if r[c] is None else json.dumps(r[c], sort_keys=True) for c in _JSON_COLUMNS}}
            for r in select_decisions(store, selection)]
    frame = pd.DataFrame(rows, columns=list(DECISION_COLUMNS))
    frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        frame.map(spreadsheet_cell).to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    return len(frame)


def retention_limit(months: int, now: datetime | None = None) -> datetime:
    """The moment before which decisions are past a retention period of ``months``."""
    return (now or datetime.now(UTC)) - relativedelta(months=months)


def purge(store: DecisionStore, months: int, dry_run: bool = False, now: datetime | None = None,
          override: Mapping[str, str] | None = None, review_months: int | None = None) -> int:
    """Delete the decisions (and what attached to them, and any challenger's decisions) decided
    more than ``months`` ago, and the reviews opened more than ``review_months`` ago (default:
    ``months``), and record the purge; how many of the champion's decisions. A decision a kept
    review contested or made is kept with it. A retention shorter than :data:`LEGAL_MINIMUM_MONTHS`
    needs an ``override`` (``reason``, ``accepted_by``), recorded with it; a retention of less
    than one month is refused."""
    review_months = months if review_months is None else review_months
    for kind, period in (("decisions", months), ("reviews", review_months)):
        if period < 1:
            raise RecordError(f"a retention of {period} months would delete the {kind}: it is at least 1 month, and the "
                              f"law asks for {LEGAL_MINIMUM_MONTHS} (12 CFR 1002.12(b))")
    if min(months, review_months) < LEGAL_MINIMUM_MONTHS and not override:
        raise RecordError(f"a retention of {min(months, review_months)} months is shorter than the {LEGAL_MINIMUM_MONTHS} "
                          "the law asks for (12 CFR 1002.12(b)): nothing is purged without a recorded override "
                          "(--override REASON)")
    at = now or datetime.now(UTC)
    limit, review_limit = retention_limit(months, at), retention_limit(review_months, at)
    old_reviews = reviews.c.opened_at < review_limit
    kept = select(reviews.c.id).where(~old_reviews)
    old = and_(decisions.c.decided_at < limit,
               ~exists().where(reviews.c.request_id == decisions.c.request_id, reviews.c.row == decisions.c.row,
                               ~old_reviews),
               or_(decisions.c.review_id.is_(None), decisions.c.review_id.not_in(kept)))
    with store.engine.begin() as connection:
        count = connection.execute(select(func.count()).select_from(decisions).where(old)).scalar_one()
        reviewed = connection.execute(select(func.count()).select_from(reviews).where(old_reviews)).scalar_one()
        if not dry_run:
            # a review's events go with it (a decision that goes has no kept review: its reviews go here)
            connection.execute(delete(review_events).where(review_events.c.review_id.in_(
                select(reviews.c.id).where(old_reviews))))
            connection.execute(delete(reviews).where(old_reviews))
            if count:  # a request's applications share their time: its events go with them
                connection.execute(delete(events).where(events.c.request_id.in_(select(decisions.c.request_id)
                                                                                .where(old))))
                connection.execute(delete(decisions).where(old))
            # a challenger's decisions of the same time go too
            connection.execute(delete(challenger_decisions).where(challenger_decisions.c.decided_at < limit))
            connection.execute(insert(purges).values(at=at, retention_months=months, purged_before=limit,
                                                     decisions=count, review_retention_months=review_months,
                                                     reviews=reviewed,
                                                     override=dict(override) if override else None))
    logger.info("%s %d decisions made before %s (retention %d months) and %d reviews opened before %s (retention %d "
                "months)%s", "would purge" if dry_run else "purged", count, limit.isoformat(timespec="seconds"), months,
                reviewed, review_limit.isoformat(timespec="seconds"), review_months,
                f"; override by {override['accepted_by']}: {override['reason']}" if override else "")
    return count
