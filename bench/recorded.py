"""The decisions the console's bench records: the classifier's own, copied and stamped anew, and what they hold.

:func:`recorded_pool` has a real classifier decide the held-out applications and reads them back
as recorded; :func:`planned` draws a million (or fewer) of them over 13 months, the first 7 by a
previous model version; :func:`fill` writes them with the record's own writer (PostgreSQL by COPY);
:func:`open_reviews` contests recent rejections through :class:`~loanxai.records.reviews.ReviewDesk`.
:class:`Recorded` keeps what each database holds, to count what a search should show.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import requests

from loanxai.console.pages import SEARCH_LIMIT
from loanxai.ops.services import classifier_service, free_port
from loanxai.records.queries import Selection
from loanxai.records.reviews import ReviewDesk
from loanxai.records.store import DecisionStore, RequestDecisions

__all__ = ["PREVIOUS_MODEL", "Recorded", "decision_rows", "fill", "open_reviews", "planned", "recorded_pool",
           "request_of"]

#: the days the decisions spread over (13 months), and those of the current model (the last 6)
DAYS, CURRENT_MODEL_DAYS = 395, 183
#: the model that decided before the current one (its artifacts are not here: its decisions are not contested)
PREVIOUS_MODEL = ("5b2e0c7a91d4", hashlib.sha256(b"the previous model's manifest").hexdigest())
#: decisions per write while filling
CHUNK = 10_000
#: who opens the contests
BY = {"subject": "bench", "role": "decide"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86_400_000_000


def recorded_pool(applications: list[dict[str, Any]], logs: Path, folder: Path) -> list[dict[str, Any]]:
    """Each application decided by a real classifier (2 workers) recording to SQLite, read back
    as recorded: the rejections' from requests asking for reasons, the approvals' from requests not."""
    url = f"sqlite:///{folder}/pool.sqlite"
    classifier = classifier_service(free_port(), free_port(), {"GUNICORN_WORKERS": "2", "LOAN_RECORDS_URL": url})
    classifier.start(logs / "console-pool-classifier.log")
    try:
        classifier.wait_ready()
        asked: dict[bool, list[str]] = {True: [], False: []}
        for reasons in asked:
            for i in range(0, len(applications), 1000):
                answer = requests.post(classifier.predictions_url, timeout=300, json={
                    "jsonData": applications[i:i + 1000], "meta": {"tags": {"reasons": reasons}}})
                answer.raise_for_status()
                asked[reasons].append(answer.json()["meta"]["puid"])
    finally:
        classifier.stop()
    store = DecisionStore(url)
    wanted = {True: "rejected", False: "approved"}
    pool = [row for reasons, puids in asked.items() for puid in puids
            for row in store.decisions_of_request(puid) if row["decision"] == wanted[reasons]]
    store.engine.dispose()
    return pool


@dataclass(frozen=True)
class Recorded:
    """The decisions a database holds, to check the pages' answers by: each one's time (µs since
    the epoch, UTC), its row of the pool (inputs, groups), whether the previous model decided it,
    whether it is a rejection, and its application id; the first ``planned`` were filled in, the
    rest made by reviews."""

    pool: list[dict[str, Any]]
    planned: int
    at: np.ndarray
    row: np.ndarray
    previous: np.ndarray
    rejected: np.ndarray
    application_ids: list[str]

    def shown(self, asked: Selection) -> int:
        """How many decisions a search shows: those ``asked`` for, at most :data:`SEARCH_LIMIT`."""
        mask = np.ones(len(self.at), bool)
        if asked.since is not None:
            mask &= self.at >= _us(asked.since)
        if asked.until is not None:
            mask &= self.at < _us(asked.until)
        if asked.decision is not None:
            mask &= self.rejected == (asked.decision == "rejected")
        if asked.model_version is not None:
            mask &= self.previous == (asked.model_version == PREVIOUS_MODEL[0])
        if asked.group is not None:
            attribute, value = asked.group
            mask &= np.array([r["protected"].get(attribute) == value for r in self.pool])[self.row]
        return min(int(mask.sum()), SEARCH_LIMIT)

    def last_day(self) -> datetime:
        """Midnight (UTC) of the day of the newest decision."""
        return _EPOCH + timedelta(microseconds=int(self.at.max()) // _DAY_US * _DAY_US)

    def with_decision(self, at: datetime, row: int, rejected: bool, application_id: str) -> Recorded:
        """These decisions and one more (a review's)."""
        return replace(self, at=np.append(self.at, _us(at)), row=np.append(self.row, row),
                       previous=np.append(self.previous, False), rejected=np.append(self.rejected, rejected),
                       application_ids=[*self.application_ids, application_id])


def planned(pool: list[dict[str, Any]], n: int, end: datetime, seed: int = 8812) -> Recorded:
    """``n`` decisions of the pool's rows drawn at random, at random times over the :data:`DAYS` before ``end``."""
    rng = np.random.default_rng(seed)
    end_us = _us(end)
    at = np.sort(rng.integers(end_us - DAYS * _DAY_US, end_us, n))
    row = rng.integers(0, len(pool), n)
    rejected = np.array([r["decision"] == "rejected" for r in pool])[row]
    ids = rng.bytes(16 * n).hex()
    request_ids = [ids[32 * i:32 * (i + 1)] for i in range(n)]
    return Recorded(pool, n, at, row, at < end_us - CURRENT_MODEL_DAYS * _DAY_US, rejected,
                    [f"{request_id}-0" for request_id in request_ids])


def decision_rows(recorded: Recorded) -> Iterator[list[dict[str, Any]]]:
    """The planned decisions as the record's writer takes them, :data:`CHUNK` at a time."""
    for start in range(0, len(recorded.at), CHUNK):
        rows = []
        for i in range(start, min(start + CHUNK, len(recorded.at))):
            application_id = recorded.application_ids[i]
            row = {**recorded.pool[recorded.row[i]], "request_id": application_id.removesuffix("-0"), "row": 0,
                   "application_id": application_id,
                   "decided_at": _EPOCH + timedelta(microseconds=int(recorded.at[i]))}
            if recorded.previous[i]:
                row["model_version"], row["manifest_sha256"] = PREVIOUS_MODEL
            rows.append(row)
        yield rows


def fill(stores: dict[str, DecisionStore], recorded: Recorded) -> dict[str, float]:
    """Write the planned decisions to each store by its own writer (a commit per chunk); each one's seconds."""
    seconds = dict.fromkeys(stores, 0.0)
    for rows in decision_rows(recorded):
        for name, store in stores.items():
            started = time.perf_counter()
            store.writer.write(rows, wait=store.timeout)
            seconds[name] += time.perf_counter() - started
    return seconds


def open_reviews(desk: ReviewDesk, recorded: Recorded, count: int, seed: int = 34) -> tuple[list[int], Recorded]:
    """``count`` contests of the current model's rejections of the last 60 days, every third with
    its hours per week corrected (decided again); their ids, and the decisions with the reviews' own."""
    rng = np.random.default_rng(seed)
    recent = recorded.at >= recorded.at.max() - 60 * _DAY_US
    chosen = rng.choice(np.flatnonzero(recorded.rejected & ~recorded.previous & recent), count, replace=False)
    ids = []
    for k, i in enumerate(chosen):
        inputs = recorded.pool[recorded.row[i]]["inputs"]
        corrections = {"hours-per-week": inputs["hours-per-week"] + 10} if k % 3 == 0 else None
        review_id = desk.open(recorded.application_ids[i], "I work more hours than the form says.", BY, corrections)
        ids.append(review_id)
        for made in desk.review(review_id)["decisions"][1:]:
            recorded = recorded.with_decision(made["decided_at"], int(recorded.row[i]), made["decision"] == "rejected",
                                              made["application_id"])
    return ids, recorded


def request_of(rows: list[dict[str, Any]]) -> RequestDecisions:
    """A request deciding ``rows`` (the pool's) now, as the classifier hands it to the record."""
    first = rows[0]
    return RequestDecisions(uuid.uuid4().hex, [None] * len(rows), datetime.now(UTC), first["model_version"],
                            first["manifest_sha256"], first["dataset"], [r["inputs"] for r in rows],
                            [r["protected"] for r in rows], [r["probability"] for r in rows], first["cutoff"],
                            [r["decision"] for r in rows], [r["reasons"] for r in rows])


def _us(moment: datetime) -> int:
    """Microseconds since the epoch (UTC)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)
