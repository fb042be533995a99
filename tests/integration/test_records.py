"""The decision record against the real databases: SQLite in a file and a real PostgreSQL server,
the same code for both. Writing, retries, outcomes, migrations of a populated database, the
examiner's selections and exports, the purge."""
import dataclasses
import multiprocessing
import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from loanxai.config import CHALLENGER
from loanxai.core.text import check_entered
from loanxai.errors import DecisionConflict, LoanError, RecordError
from loanxai.records import migrations
from loanxai.records.queries import Selection, export, outcomes_of, purge, retention_limit, select_decisions
from loanxai.records.store import DecisionStore, RequestDecisions, open_store
from loanxai.records.tables import DECISION_COLUMNS, challenger_decisions, decisions, metadata


@pytest.fixture
def store(url):
    return open_store(url)


def decided(request_id, n=1, at=None, decision="rejected", groups=("Female",), ids=None, inputs=None):
    return RequestDecisions(
        request_id=request_id, application_ids=ids or [None] * n, decided_at=at or datetime.now(UTC),
        model_version="0123456789ab", manifest_sha256="f" * 64, dataset="census",
        inputs=inputs or [{"age": 30 + i, "occupation": "Sales"} for i in range(n)],
        protected=[{"gender": groups[i % len(groups)], "ethnicity": None} for i in range(n)],
        probabilities=[0.2 + i / 100 for i in range(n)], cutoff=0.3459, decisions=[decision] * n, reasons=None)


def test_a_request_is_recorded_whole_and_found_by_either_id(store):
    ids = store.record(decided("req-1", 3, ids=["A-1", "A-2", "A-3"]))
    assert ids == ["A-1", "A-2", "A-3"]
    assert [r["row"] for r in store.decisions_of_request("req-1")] == [0, 1, 2]
    [found] = store.decisions_of_application("A-2")
    assert found["inputs"] == {"age": 31, "occupation": "Sales"}
    assert found["protected"] == {"gender": "Female", "ethnicity": None}
    assert found["probability"] == pytest.approx(0.21) and found["decision"] == "rejected"
    assert found["model_version"] == "0123456789ab" and found["reasons"] is None
    # no application id given: one made of the request id and the row, the same on every retry
    assert store.record(decided("req-2", 2)) == ["req-2-0", "req-2-1"]


def test_every_value_the_boundary_admits_is_recorded_as_entered(store):
    entered = [{"big": 2**64 - 1, "low": -(2**63), "x": 0.1, "none": None, "yes": True, "name": "Jos\u00e9 \u4e2d\t",
                "far": 1.5e300, "minus_zero": -0.0},
               [1, "two", 3.25]]
    check_entered(entered)  # what the classifier admits before it records
    request = dataclasses.replace(decided("req-values", 2), inputs=entered,
                                  reasons=[[{"feature": "age", "contribution": np.float64(-0.25)}], None])
    store.record(request)
    recorded = store.decisions_of_request("req-values")
    assert [r["inputs"] for r in recorded] == entered
    assert recorded[0]["reasons"] == [{"feature": "age", "contribution": -0.25}]


def test_a_retry_makes_no_second_record_and_other_applications_conflict(store):
    first = store.record(decided("req-r", 2))
    assert store.record(decided("req-r", 2)) == first
    assert len(store.decisions_of_request("req-r")) == 2
    with pytest.raises(DecisionConflict, match="req-r"):
        store.record(decided("req-r", 2, inputs=[{"age": 1}, {"age": 2}]))
    with pytest.raises(DecisionConflict):
        store.record(decided("req-r", 3))
    assert len(store.decisions_of_request("req-r")) == 2


def test_outcomes_attach_to_their_decisions_only(store):
    store.record(decided("req-o", 2))
    at = datetime.now(UTC)
    assert store.attach("req-o", "outcome", [(0, {"truth": "approved"}), (7, {"truth": "rejected"})], at, "the feedback") == 1
    assert [e["content"] for e in store.events_of("req-o", 0)] == [{"truth": "approved"}]
    assert store.events_of("req-o", 1) == []
    assert store.attach("no-such-request", "outcome", [(0, {"truth": "approved"})], at, "the feedback") == 0


def test_a_challengers_decisions_of_the_same_request_are_recorded_apart(url):
    champion, challenger = open_store(url), open_store(url, CHALLENGER)
    champion.record(decided("req-c", 2, ids=["A-1", "A-2"]))
    shadow = dataclasses.replace(decided("req-c", 2, ids=["A-1", "A-2"]), model_version="ba9876543210",
                                 probabilities=[0.9, 0.1], decisions=["approved", "rejected"])
    assert challenger.record(shadow) == ["A-1", "A-2"]
    # a retry of the mirrored request makes no second record; other applications conflict
    assert challenger.record(shadow) == ["A-1", "A-2"]
    with pytest.raises(DecisionConflict):
        challenger.record(dataclasses.replace(shadow, inputs=[{"age": 99}, {"age": 98}]))
    # the next challenger decides the same request under its own version
    assert challenger.record(dataclasses.replace(shadow, model_version="cccccccccccc")) == ["A-1", "A-2"]
    # what the record shows, notices and re-decides is the champion's
    assert [r["decision"] for r in champion.decisions_of_request("req-c")] == ["rejected", "rejected"]
    with challenger.engine.connect() as connection:
        rows = connection.execute(select(challenger_decisions.c.model_version, challenger_decisions.c.decision)
                                  .order_by(challenger_decisions.c.model_version, challenger_decisions.c.row)).all()
    assert [tuple(r) for r in rows] == [("ba9876543210", "approved"), ("ba9876543210", "rejected"),
                                        ("cccccccccccc", "approved"), ("cccccccccccc", "rejected")]


# SQLite cannot reflect an expression index: the groups' GIN index is PostgreSQL's only
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_the_tables_are_what_the_migrations_make(store):
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []


def _open_together(url, barrier):
    barrier.wait()
    open_store(url)


def test_processes_starting_together_on_a_new_database_migrate_it_once(url):
    """The init containers of the champion's replicas and a challenger migrate an empty record
    together (`loanxai records upgrade`): none fails on tables another just made (SQLite and
    PostgreSQL alike)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    processes = [context.Process(target=_open_together, args=(url, barrier)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * 4
    assert migrations.revision(DecisionStore(url).engine) == migrations.head()


def test_migrating_a_populated_database_keeps_every_decision(url):
    store = DecisionStore(url)
    migrations.upgrade(store.engine, "0001")
    rows = [{k: v for k, v in r.items() if k != "reasons"} for r in decided("old", 50).rows()]
    with store.engine.begin() as connection:
        connection.execute(insert(decisions), rows)  # the columns of migration 0001 only
    with pytest.raises(RecordError, match=f"migration 0001, the code needs {migrations.head()}"):
        store.check_current()
    store.upgrade()
    store.check_current()
    kept = store.decisions_of_request("old")
    assert [r["row"] for r in kept] == list(range(50)) and all(r["reasons"] is None for r in kept)
    assert [r["inputs"] for r in kept] == [r["inputs"] for r in rows]
    store.attach("old", "outcome", [(3, {"truth": "approved"})], datetime.now(UTC), "the feedback")  # the new table works
    assert len(store.events_of("old", 3)) == 1


def test_a_record_migrated_by_newer_code_is_refused_as_newer_not_as_behind(store):
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(RecordError, match=r"is at migration 0099, newer than this code's newest \(\d+\): run the newer"):
        store.check_current()


def test_a_decision_cannot_be_recorded_twice_even_bypassing_the_store(store):
    store.record(decided("req-pk"))
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(insert(decisions), decided("req-pk").rows())


def test_selections_and_exports_hold_exactly_the_selected_decisions(store, tmp_path):
    day = datetime(2026, 3, 3, 12, tzinfo=UTC)
    store.record(decided("march", 4, at=day, groups=("Female", "Male")))
    store.record(decided("march-ok", 2, at=day, decision="approved"))
    store.record(decided("april", 3, at=datetime(2026, 4, 1, tzinfo=UTC)))
    march = Selection(since=datetime(2026, 3, 1, tzinfo=UTC), until=datetime(2026, 4, 1, tzinfo=UTC))
    assert len(list(select_decisions(store, march))) == 6
    women = Selection(since=march.since, until=march.until, decision="rejected", group=("gender", "Female"))
    assert [(r["request_id"], r["row"]) for r in select_decisions(store, women)] == [("march", 0), ("march", 2)]
    assert [r["decided_at"] for r in select_decisions(store, women)] == [day, day]
    for suffix, read in ((".csv", pd.read_csv), (".parquet", pd.read_parquet)):
        out = tmp_path / f"march{suffix}"
        assert export(store, march, out) == 6
        frame = read(out)
        assert list(frame.columns) == list(DECISION_COLUMNS) and len(frame) == 6
        assert sorted(frame["request_id"].unique()) == ["march", "march-ok"]
        assert (pd.to_datetime(frame["decided_at"], utc=True) == pd.Timestamp(day)).all()
    with pytest.raises(RecordError, match=".csv or .parquet"):
        export(store, march, tmp_path / "march.xlsx")


def test_a_selection_by_model_holds_that_models_decisions_only(store):
    old = "0123456789aa"  # replaced by decided()'s model in March
    store.record(dataclasses.replace(decided("old", 3, at=datetime(2026, 1, 5, tzinfo=UTC)), model_version=old))
    store.record(dataclasses.replace(decided("old-last", 1, at=datetime(2026, 2, 5, tzinfo=UTC)), model_version=old))
    store.record(decided("new", 2, at=datetime(2026, 3, 5, tzinfo=UTC)))
    by_old = Selection(model_version=old)
    assert [(r["request_id"], r["row"]) for r in select_decisions(store, by_old)] == [
        ("old", 0), ("old", 1), ("old", 2), ("old-last", 0)]
    assert [(r["request_id"], r["row"]) for r in select_decisions(store, by_old, limit=2, newest_first=True)] == [
        ("old-last", 0), ("old", 2)]
    assert list(select_decisions(store, Selection(model_version="000000000000"))) == []
    # joined with what attached: the model's first and last decisions are read apart from the outer query's
    store.attach("old", "outcome", [(1, {"truth": "approved"})], datetime.now(UTC), "the feedback")
    store.attach("new", "outcome", [(0, {"truth": "approved"})], datetime.now(UTC), "the feedback")
    assert outcomes_of(store, by_old) == {("old", 1): "approved"}


def test_the_purge_deletes_what_is_past_retention_and_nothing_else(store, url):
    now = datetime(2026, 12, 2, tzinfo=UTC)
    store.record(decided("26-months", 2, at=datetime(2024, 10, 1, tzinfo=UTC)))
    store.record(decided("24-months", 1, at=datetime(2024, 12, 10, tzinfo=UTC)))
    challenger = open_store(url, CHALLENGER)
    challenger.record(decided("26-months", 2, at=datetime(2024, 10, 1, tzinfo=UTC)))
    challenger.record(decided("24-months", 1, at=datetime(2024, 12, 10, tzinfo=UTC)))
    store.attach("26-months", "outcome", [(0, {"truth": "approved"})], now, "the feedback")
    assert retention_limit(25, now) == datetime(2024, 11, 2, tzinfo=UTC)
    assert purge(store, 25, dry_run=True, now=now) == 2
    assert len(store.decisions_of_request("26-months")) == 2
    assert purge(store, 25, now=now) == 2
    assert store.decisions_of_request("26-months") == [] and len(store.decisions_of_request("24-months")) == 1
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM events")).scalar_one() == 0
        assert connection.execute(select(challenger_decisions.c.request_id)).scalars().all() == ["24-months"]
    assert purge(store, 25, now=now) == 0


def test_a_stopped_database_is_refused_at_once_and_used_again_once_back(postgres):
    from loanxai.errors import RecordUnavailable

    store = open_store(postgres.create_database(f"test_{uuid.uuid4().hex[:12]}"))
    store.record(decided("before"))
    postgres.stop()
    try:
        with pytest.raises(RecordUnavailable, match="retry with the same meta.puid"):
            store.record(decided("while-down"))
    finally:
        postgres.start()
    store.record(decided("after"))
    with store.engine.connect() as connection:
        recorded = set(connection.execute(select(decisions.c.request_id)).scalars())
    assert recorded == {"before", "after"}


def test_one_requests_bad_rows_fail_only_that_request_in_a_commit_group(store, url):
    import threading
    import time

    outcomes = {}

    def record(request_id, application_id):
        try:
            outcomes[request_id] = store.record(decided(request_id, 2, ids=[application_id, f"{application_id}-b"]))
        except Exception as error:  # noqa: BLE001 (what each request hears is the test)
            outcomes[request_id] = error

    requests_ = [(f"good-{i}", f"G-{i}") for i in range(4)] + [("bad", "bad\ud800id")] + [
        (f"good-{i}", f"G-{i}") for i in range(4, 8)]
    writer = store.writer
    with writer.commit_lock:  # as a long commit holds it: the nine queue up behind it, one group
        threads = [threading.Thread(target=record, args=pair) for pair in requests_]
        for thread in threads:
            thread.start()
        while len(writer.queued) < len(requests_):
            time.sleep(0.01)
    for thread in threads:
        thread.join()
    bad = outcomes.pop("bad")
    # the driver's own error (a bug's: the classifier answers it 500 naming the request), never a 503 of the database
    assert isinstance(bad, Exception) and not isinstance(bad, LoanError), bad
    assert all(isinstance(ids, list) for ids in outcomes.values()), outcomes
    assert all(len(store.decisions_of_request(request_id)) == 2 for request_id in outcomes)
    assert store.decisions_of_request("bad") == []


def _record_in_another_process(url, request_id, n):
    open_store(url).record(decided(request_id, n))


def test_sqlite_writers_in_several_processes_take_turns_and_a_kept_turn_is_refused_in_time(tmp_path):
    """Processes writing one SQLite file wait for each other's turn (an flock beside the file),
    not in SQLite's busy handler; a turn kept too long is refused as SQLite refuses a lock."""
    import fcntl
    import sqlite3
    import time

    from loanxai.records.commits import WriterTurn

    url = f"sqlite:///{tmp_path}/decisions.sqlite"
    store = open_store(url)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_record_in_another_process, args=(url, f"p{i}", 50)) for i in range(3)]
    for worker in workers:
        worker.start()
    store.record(decided("here", 50))
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert {r["request_id"] for r in select_decisions(store, Selection())} == {"here", "p0", "p1", "p2"}
    assert (tmp_path / "decisions.sqlite-writers").exists()

    with open(tmp_path / "decisions.sqlite-writers", "a") as held:  # another process's turn, never given back
        fcntl.flock(held, fcntl.LOCK_EX)
        turn = WriterTurn(str(tmp_path / "decisions.sqlite"), 0.2, sqlite3.OperationalError)
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"), turn.taken():
            pass
        assert time.monotonic() - started >= 0.2
    with turn.taken():  # given back: taken at once
        pass
