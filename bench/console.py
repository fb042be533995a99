"""Benchmarks of the reviewer console: its pages over a million recorded decisions, on SQLite and PostgreSQL.

Called by ``bench/run.py`` (alone: ``bench/run.py --only console``). Each database, SQLite in a
file and a real PostgreSQL on loopback (started here), is made by the record's migrations and
filled with the classifier's own decisions (:mod:`bench.recorded`): a million (``--quick``:
20,000) over 13 months, two model versions, and a few hundred contests (:data:`SIZES`).
PostgreSQL is then vacuumed and analysed, as its autovacuum would have done by then (nothing of
ours runs SQLite's ANALYZE, so the bench does not either).

A console (``python -m loanxai console``, ``LOAN_AUTH=off``) serves each database. Each page is
asked :data:`REQUESTS` times, one request at a time (latency, not load), the pages and the two
databases in turn so that all meet the same machine; every answer is checked (200, and the
rows it should show, counted from what was recorded: a broken page does not pass as fast). Each
search's statement is then explained by its database (the indexes its plan uses) and timed
alone in process; the slowest search's plan is kept whole (PostgreSQL's with EXPLAIN ANALYZE).
Last, what the searches' indexes cost the record (:func:`index_cost`).
"""
from __future__ import annotations

import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import requests
from sqlalchemy import event, text

from bench.recorded import CHUNK, PREVIOUS_MODEL, Recorded, fill, open_reviews, planned, recorded_pool, request_of
from loanxai.artifacts import CLASSIFIER_DIR
from loanxai.console.pages import SEARCH_LIMIT
from loanxai.ops.postgres import LocalPostgres
from loanxai.ops.services import console_service, free_port
from loanxai.records.queries import Selection, select_decisions
from loanxai.records.reviews import OPEN, Redeciders, ReviewDesk
from loanxai.records.store import DecisionStore, open_store

#: requests per page: each page's p50 and p90 are of these
REQUESTS = 21
#: the p50 each page should stay under, in ms
TARGET_MS = 200
#: decisions filled in, contests opened (a third correcting an input), and for :func:`index_cost`
#: the decisions each of its databases holds first and its rounds
SIZES = {"full": {"decisions": 1_000_000, "reviews": 300, "prefill": 100_000, "rounds": 30},
         "quick": {"decisions": 20_000, "reviews": 30, "prefill": 2_000, "rounds": 2}}
#: the indexes of the searches (migration 0006), by database
SEARCH_INDEXES = {"sqlite": ("ix_decisions_model_version_decided_at",),
                  "postgresql": ("ix_decisions_model_version_decided_at", "ix_decisions_protected")}
#: a group many decisions have, and one few have (0.05% of the held-out applications)
GROUP, RARE_GROUP = ("gender", "Female"), ("marital-status", "Married-AF-spouse")


# --- the pages and what each should show -------------------------------------------------------------

Check = Callable[[requests.Response], str | None]
#: page -> what the results call it
PAGES = {
    "queue": "the queue (`/`)",
    "decision": "an application's decisions (`/decisions?application_id=`)",
    "review": "a review (`/reviews/<id>`)",
    "api_reviews": "the API's queue (`GET /api/v1/reviews`)",
    "search_day": "search: one day",
    "search_30_days": "search: 30 days",
    "search_decision": "search: rejected",
    "search_model": "search: the previous model (its last decision 6 months back)",
    "search_decision_group": f"search: rejected, {GROUP[0]}={GROUP[1]}",
    "search_rare_group": f"search: {RARE_GROUP[0]}={RARE_GROUP[1]} (0.05% of decisions)",
    "search_30_days_rare_group": f"search: 30 days, {RARE_GROUP[0]}={RARE_GROUP[1]}",
}


def _shown(pattern: str, expected: Any, what: str) -> Check:
    """A check that the page is 200 and shows ``expected`` as the first group of ``pattern``."""
    def check(answer: requests.Response) -> str | None:
        if answer.status_code != 200:
            return f"{answer.status_code}: {answer.text[:200]}"
        found = re.search(pattern, answer.text)
        shown = found.group(1) if found else None
        return None if shown == str(expected) else f"{what}: {shown!r}, not {expected!r}"
    return check


def _counted(marker: str, expected: int, what: str) -> Check:
    """A check that the page is 200 and holds ``marker`` ``expected`` times."""
    def check(answer: requests.Response) -> str | None:
        if answer.status_code != 200:
            return f"{answer.status_code}: {answer.text[:200]}"
        found = answer.text.count(marker)
        return None if found == expected else f"{what}: {found}, not {expected}"
    return check


def _listed(expected: int) -> Check:
    """A check that the API answers 200 with ``expected`` reviews."""
    def check(answer: requests.Response) -> str | None:
        if answer.status_code != 200:
            return f"{answer.status_code}: {answer.text[:200]}"
        found = len(answer.json()["reviews"])
        return None if found == expected else f"reviews listed: {found}, not {expected}"
    return check


def searches(recorded: Recorded) -> dict[str, list[dict[str, str]]]:
    """Each search page's forms (ISO dates, as a reviewer types them): one a request, days varied where it has dates."""
    today = recorded.last_day()
    days = [today - timedelta(days=k) for k in range(1, REQUESTS + 1)]
    rare, group = "=".join(RARE_GROUP), "=".join(GROUP)
    return {
        "search_day": [{"since": _day(d), "until": _day(d + timedelta(days=1))} for d in days],
        "search_30_days": [{"since": _day(d - timedelta(days=30)), "until": _day(d)} for d in days],
        "search_decision": [{"decision": "rejected"}],
        "search_model": [{"model": PREVIOUS_MODEL[0]}],
        "search_decision_group": [{"decision": "rejected", "group": group}],
        "search_rare_group": [{"group": rare}],
        "search_30_days_rare_group": [{"since": _day(d - timedelta(days=30)), "until": _day(d), "group": rare}
                                      for d in days],
    }


def selection(form: dict[str, str]) -> Selection:
    """The selection a search form asks for."""
    group = tuple(form["group"].split("=", 1)) if "group" in form else None
    return Selection(_moment(form.get("since")), _moment(form.get("until")), form.get("decision"), form.get("model"),
                     group)  # type: ignore[arg-type]


def pages(recorded: Recorded, review_ids: list[int], seed: int = 1002) -> dict[str, list[tuple[str, Check]]]:
    """Each page's requests (path and check), in the order they are asked."""
    # the first decision shown, the oldest, is the one filled in (a review's come after it)
    sample = np.random.default_rng(seed).choice(recorded.planned, REQUESTS, replace=False)
    found: dict[str, list[tuple[str, Check]]] = {
        "queue": [("/", _counted('<td><a href="/reviews/', min(len(review_ids), 500), "contests listed"))],
        "decision": [(f"/decisions?{urlencode({'application_id': recorded.application_ids[i]})}",
                      _shown(r'<td class="decision">(\w+)</td>', "rejected" if recorded.rejected[i] else "approved",
                             "decision shown")) for i in sample],
        "review": [(f"/reviews/{review_id}", _shown(r'<td id="status">(\w+)</td>', OPEN, "status"))
                   for review_id in review_ids[:REQUESTS]],
        "api_reviews": [("/api/v1/reviews", _listed(min(len(review_ids), 100)))],
    }
    for page, forms in searches(recorded).items():
        found[page] = []
        for form in forms:
            found[page].append((f"/search?{urlencode(form)}", _shown(r'<p id="count">(\d+) decisions',
                                                                        recorded.shown(selection(form)), "decisions shown")))
    return found


def measure(consoles: dict[str, str], asked: dict[str, dict[str, list[tuple[str, Check]]]],
            repeats: int) -> dict[str, dict[str, Any]]:
    """Ask each console's pages ``repeats`` times, one request at a time, pages and consoles in
    turn; each page's p50 and p90 (ms) and how many answers showed what they should."""
    sessions = {name: requests.Session() for name in consoles}
    times: dict[str, dict[str, list[float]]] = {name: {page: [] for page in PAGES} for name in consoles}
    wrong: dict[str, dict[str, list[str]]] = {name: {page: [] for page in PAGES} for name in consoles}
    for k in range(repeats):
        for page in PAGES:
            for name, url in consoles.items():
                path, check = asked[name][page][k % len(asked[name][page])]
                started = time.perf_counter()
                answer = sessions[name].get(url + path, timeout=300)
                times[name][page].append(1000 * (time.perf_counter() - started))
                problem = check(answer)
                if problem:
                    wrong[name][page].append(f"{path}: {problem}")
    return {name: {page: {"p50_ms": statistics.median(ms), "p90_ms": statistics.quantiles(ms, n=10)[-1],
                          "requests": len(ms), "ok": len(ms) - len(wrong[name][page]),
                          "wrong": wrong[name][page][:1]}
                   for page, ms in by_page.items()} for name, by_page in times.items()}


# --- what the databases say ---------------------------------------------------------------------------


def indexes(store: DecisionStore) -> dict[str, str]:
    """The indexes on ``decisions`` and ``reviews``, as the database's catalog defines them: name -> definition."""
    with store.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            found = connection.execute(text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' "
                                            "AND tbl_name IN ('decisions', 'reviews') ORDER BY tbl_name, name"))
            return {name: sql or f"the primary key of {table}" for name, table, sql in found}
        found = connection.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
                                        "('decisions', 'reviews') ORDER BY tablename, indexname"))
        return dict(found.all())


def statement_of(store: DecisionStore, asked: Selection) -> tuple[str, Any]:
    """The SQL and parameters a search sends its database (as the page runs it), caught on their way."""
    caught: list[tuple[str, Any]] = []

    def catch(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        caught.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", catch)
    try:
        list(select_decisions(store, asked, SEARCH_LIMIT, newest_first=True))
    finally:
        event.remove(store.engine, "before_cursor_execute", catch)
    return caught[-1]


def plan(store: DecisionStore, asked: Selection, analyze: bool = False) -> str:
    """The database's plan of a search's statement (PostgreSQL's run, with its times, when ``analyze``)."""
    statement, parameters = statement_of(store, asked)
    with store.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            lines = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            return "\n".join(line[-1] for line in lines)
        prefix = "EXPLAIN (ANALYZE, BUFFERS)" if analyze else "EXPLAIN"
        return "\n".join(line[0] for line in connection.exec_driver_sql(f"{prefix} {statement}", parameters))


def query_ms(store: DecisionStore, asked: Selection, runs: int = 5) -> float:
    """Median ms of a search's statement alone, in process (its rows read, nothing rendered or recorded)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        list(select_decisions(store, asked, SEARCH_LIMIT, newest_first=True))
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def database_facts(store: DecisionStore, recorded: Recorded, measured: dict[str, Any]) -> dict[str, Any]:
    """The indexes, each search's plan (the indexes it uses) and time alone, the slowest search's plan whole."""
    defined = indexes(store)
    forms = {page: forms[0] for page, forms in searches(recorded).items()}
    plans = {page: plan(store, selection(form)) for page, form in forms.items()}
    slowest = max(forms, key=lambda page: measured[page]["p50_ms"])
    return {
        "indexes": defined,
        "searches": {page: {"form": form, "indexes_used": [name for name in defined if name in plans[page]],
                            "plan": plans[page], "query_ms": query_ms(store, selection(form))}
                     for page, form in forms.items()},
        "slowest_search": {"page": slowest, "plan": plan(store, selection(forms[slowest]), analyze=True)},
    }


def index_cost(pool: list[dict[str, Any]], prefill: int, rounds: int, seed: int = 12) -> dict[str, Any]:
    """What the searches' indexes cost the record: ``DecisionStore.record`` alone (1 and 100 of the
    pool's decisions a request) on each database with them and on a twin without them (dropped),
    each holding ``prefill`` decisions first, all on a tmpfs: on disk the sync to it dwarfs them.
    ``rounds`` turns, the databases alternated; the median ms of each."""
    folder = Path(tempfile.mkdtemp(prefix="loanxai-bench-console-", dir="/dev/shm"))
    folder.chmod(0o755)  # reachable by PostgreSQL's user
    postgres = LocalPostgres(folder / "postgres", free_port())
    try:
        postgres.start()
        twins = ("with", "without")
        urls = {("sqlite", twin): f"sqlite:///{folder}/{twin}.sqlite" for twin in twins}
        urls |= {("postgresql", twin): postgres.create_database(f"records_{twin}") for twin in twins}
        stores = {key: open_store(url, timeout=600) for key, url in urls.items()}
        fill(stores, planned(pool, prefill, datetime.now(UTC)))
        for kind in SEARCH_INDEXES:
            with stores[kind, "without"].engine.begin() as connection:
                for name in SEARCH_INDEXES[kind]:
                    connection.exec_driver_sql(f"DROP INDEX {name}")
        rng = np.random.default_rng(seed)
        times: dict[tuple[str, str], dict[int, list[float]]] = {key: {1: [], 100: []} for key in stores}
        keys = list(stores)
        for turn in range(rounds):
            for key in keys[turn % len(keys):] + keys[:turn % len(keys)]:  # each first in turn
                for size, repeats in ((1, 20), (100, 5)):
                    for _ in range(repeats):
                        request = request_of([pool[i] for i in rng.choice(len(pool), size, replace=False)])
                        started = time.perf_counter()
                        stores[key].record(request)
                        times[key][size].append(1000 * (time.perf_counter() - started))
        return {"prefill": prefill, "rounds": rounds,
                **{kind: {str(size): {twin: statistics.median(times[kind, twin][size]) for twin in twins}
                          for size in (1, 100)} for kind in SEARCH_INDEXES}}
    finally:
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _vacuumed(store: DecisionStore) -> None:
    """VACUUM ANALYZE a PostgreSQL record (outside a transaction, as VACUUM must be)."""
    with store.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")


def _size_mb(store: DecisionStore) -> float:
    """The decisions table's size with its indexes (SQLite: the whole file), in MB."""
    with store.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            return Path(store.engine.url.database).stat().st_size / 2**20
        return connection.execute(text("SELECT pg_total_relation_size('decisions')")).scalar_one() / 2**20


# --- the stage -----------------------------------------------------------------------------------------


def run_console(applications: list[dict[str, Any]], logs: Path, quick: bool) -> dict[str, Any]:
    """Fill both databases, serve each with a console, measure the pages and what the searches'
    indexes cost the record (see the module); ``quick``: the small :data:`SIZES`."""
    size = SIZES["quick" if quick else "full"]
    decisions, reviews = size["decisions"], size["reviews"]
    folder = Path(tempfile.mkdtemp(prefix="loanxai-bench-console-"))
    folder.chmod(0o755)  # reachable by PostgreSQL's user
    postgres = LocalPostgres(folder / "postgres", free_port())
    consoles: dict[str, Any] = {}
    try:
        print(f"  console: the pool of {len(applications)} applications through the classifier", flush=True)
        pool = recorded_pool(applications, logs, folder)
        postgres.start()
        urls = {"sqlite": f"sqlite:///{folder}/decisions.sqlite", "postgresql": postgres.url}
        stores = {name: open_store(url, timeout=600) for name, url in urls.items()}
        planned_decisions = planned(pool, decisions, datetime.now(UTC))
        print(f"  console: {decisions:,} decisions to each database", flush=True)
        fill_s = fill(stores, planned_decisions)
        redeciders = Redeciders([CLASSIFIER_DIR])
        recorded, review_ids = {}, {}
        for name, store in stores.items():
            review_ids[name], recorded[name] = open_reviews(ReviewDesk(store, redeciders), planned_decisions, reviews)
        _vacuumed(stores["postgresql"])
        for name, url in urls.items():
            consoles[name] = console_service(free_port(), {"LOAN_AUTH": "off", "LOAN_RECORDS_URL": url,
                                                           "LOAN_REVIEW_ARTIFACTS": str(CLASSIFIER_DIR)})
            consoles[name].start(logs / f"console-{name}.log")
            consoles[name].wait_ready()
        print("  console: the pages", flush=True)
        asked = {name: pages(recorded[name], review_ids[name]) for name in stores}
        measured = measure({name: console.url for name, console in consoles.items()}, asked, REQUESTS)
        print("  console: what the searches' indexes cost the record", flush=True)
        cost = index_cost(pool, size["prefill"], size["rounds"])
        return {
            "decisions": decisions, "reviews": reviews, "requests_per_page": REQUESTS, "target_ms": TARGET_MS,
            "pool": len(pool), "labels": PAGES, "search_indexes": SEARCH_INDEXES, "index_cost": cost,
            "databases": {name: {"fill_s": fill_s[name], "size_mb": _size_mb(store), "pages": measured[name],
                                 **database_facts(store, recorded[name], measured[name])}
                          for name, store in stores.items()},
        }
    finally:
        for console in consoles.values():
            console.stop()
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


def console_markdown(r: dict[str, Any]) -> list[str]:
    """The console's tables: each page's p50 and p90 on both databases, the indexes, the slowest search's plan."""
    sqlite, postgresql = r["databases"]["sqlite"], r["databases"]["postgresql"]

    def row(page: str) -> str:
        a, b = sqlite["pages"][page], postgresql["pages"][page]
        met = ("answers wrong" if a["ok"] < a["requests"] or b["ok"] < b["requests"]
               else "yes" if max(a["p50_ms"], b["p50_ms"]) < r["target_ms"] else "no")
        return (f"| {r['labels'][page]} | {a['p50_ms']:.1f} | {a['p90_ms']:.1f} | {b['p50_ms']:.1f} | "
                f"{b['p90_ms']:.1f} | {met} |")

    def used(facts: dict[str, Any], page: str) -> str:
        search = facts["searches"][page]
        return f"{', '.join(search['indexes_used']) or 'none'} | {search['query_ms']:.1f}"

    names = sorted(set(sqlite["indexes"]) | set(postgresql["indexes"]))
    return [
        f"| the reviewer console over {r['decisions']:,} decisions and {r['reviews']} open contests, "
        f"{r['requests_per_page']} requests a page, one at a time | SQLite p50 ms | p90 ms | PostgreSQL p50 ms | "
        f"p90 ms | p50 under {r['target_ms']} ms on both |",
        "|---|---|---|---|---|---|",
        *(row(page) for page in r["labels"]),
        "",
        "| search: the indexes its plan uses, the statement alone in process (ms) | SQLite | ms | PostgreSQL | ms |",
        "|---|---|---|---|---|",
        *(f"| {r['labels'][page]} | {used(sqlite, page)} | {used(postgresql, page)} |" for page in sqlite["searches"]),
        "",
        "| index (on `decisions` and `reviews`) | SQLite (`sqlite_master`) | PostgreSQL (`pg_indexes`) |",
        "|---|---|---|",
        *(f"| {name} | {_definition(sqlite['indexes'].get(name))} | {_definition(postgresql['indexes'].get(name))} |"
          for name in names),
        "",
        f"Filled by the record's writer in chunks of {CHUNK:,}: SQLite {sqlite['fill_s']:.0f} s "
        f"({sqlite['size_mb']:,.0f} MB, the file), PostgreSQL {postgresql['fill_s']:.0f} s "
        f"({postgresql['size_mb']:,.0f} MB, the table and its indexes); the decisions copy {r['pool']:,} the classifier "
        "recorded.",
        "",
        *index_cost_markdown(r),
        *(line for name, facts in (("SQLite", sqlite), ("PostgreSQL", postgresql)) for line in (
            f"The slowest search on {name}, {r['labels'][facts['slowest_search']['page']]}, as planned:", "",
            "```", facts["slowest_search"]["plan"], "```", "")),
    ]


def index_cost_markdown(r: dict[str, Any]) -> list[str]:
    """What the searches' indexes cost the record: its table."""
    c = r["index_cost"]

    def row(kind: str, label: str) -> str:
        one, hundred = c[kind]["1"], c[kind]["100"]
        return (f"| {label} ({', '.join(r['search_indexes'][kind])}) | {one['with']:.3f} | {one['without']:.3f} | "
                f"{one['with'] / one['without']:.2f} | {hundred['with']:.2f} | {hundred['without']:.2f} | "
                f"{hundred['with'] / hundred['without']:.2f} |")

    return [
        f"| what the searches' indexes cost the record: `DecisionStore.record` alone, sync free (tmpfs), on "
        f"{c['prefill']:,} decisions, {c['rounds']} rounds alternated | 1 row, ms: with them | without | ratio | "
        "100 rows, ms: with them | without | ratio |",
        "|---|---|---|---|---|---|---|",
        row("sqlite", "SQLite"), row("postgresql", "PostgreSQL"),
        "",
    ]


def _definition(sql: str | None) -> str:
    """An index's columns as its definition gives them (``-``: none of that name)."""
    if sql is None:
        return "-"
    found = re.search(r"ON (?:public\.)?(\w+)(?: USING (\w+))? (\(.*\))", sql)
    return f"`{found.group(1)} {found.group(3)}`" + (f" ({found.group(2)})" if found.group(2) else "") if found \
        else sql


def _day(moment: datetime) -> str:
    return moment.date().isoformat()


def _moment(day: str | None) -> datetime | None:
    return None if day is None else datetime.fromisoformat(day).replace(tzinfo=UTC)
