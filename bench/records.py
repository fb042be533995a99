"""Benchmarks of the decision record: what recording costs the classifier, and notices per second.

Called by ``bench/run.py``: three classifiers side by side (2 workers each), recording to
SQLite in a file, to a real PostgreSQL on loopback (started here, in a temporary folder), and
not at all (``LOAN_RECORDS_URL=off``); requests/s of 1-row named applications at concurrency
32 and p50 at concurrency 1, runs alternated so that all three meet the same machine. Then
adverse action notices rendered as HTML for a batch of recorded rejections, with their reasons
recorded and given again, and a batch as PDF (1,000; a process per core).
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench.stages import profile_markdown, run_profiles
from loanxai.artifacts import CLASSIFIER_DIR
from loanxai.core.manifest import load_verified_manifest
from loanxai.ops.postgres import LocalPostgres
from loanxai.ops.services import classifier_service, free_port
from loanxai.records.notices import Letterhead, notice_pdfs, render_notices
from loanxai.records.queries import Selection, select_decisions
from loanxai.records.redecide import Redecider
from loanxai.records.store import DecisionStore, RequestDecisions, open_store

LETTERHEAD = Letterhead("Bench Lender\n1 Main Street", "555-0100", "Consumer Financial Protection Bureau\nWashington, DC 20552")


def _alternated(servers: dict[str, Any], body: str, connections: int, rounds: int, duration_s: float,
                wrk: Callable[..., dict[str, float]]) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    for _ in range(rounds):
        for name, server in servers.items():
            runs[name].append(wrk(server.predictions_url, body, connections, duration_s))
            print(f"  records {name:<10} c={connections:<3} {runs[name][-1]['requests_per_s']:8.0f} req/s "
                  f"p50 {runs[name][-1]['p50_ms']:.2f} ms", flush=True)
    return {name: {"requests_per_s_median": statistics.median(r["requests_per_s"] for r in rs),
                   "p50_ms_median": statistics.median(r["p50_ms"] for r in rs),
                   "errors": sum(r["errors"] for r in rs), "runs": rs} for name, rs in runs.items()}


def _notices(url: str, predictions_url: str, rejected: list[dict[str, Any]], pdfs: int) -> dict[str, Any]:
    """Notices per second for recorded rejections, reasons recorded and given again; ``pdfs``
    PDF notices as ``records notices --format pdf`` renders them (a process per core)."""
    redecider = Redecider(CLASSIFIER_DIR)
    store = DecisionStore(url)
    result: dict[str, Any] = {}
    for label, reasons in (("reasons_recorded", True), ("reasons_given_again", False)):
        answer = requests.post(predictions_url, json={"jsonData": rejected, "meta": {"tags": {"reasons": reasons}}},
                               timeout=300)
        answer.raise_for_status()
        records = store.decisions_of_request(answer.json()["meta"]["puid"])
        records = [r for r in records if r["decision"] == "rejected"]
        started = time.perf_counter()
        pages = render_notices(records, redecider, LETTERHEAD)
        seconds = time.perf_counter() - started
        result[label] = {"notices": len(pages), "seconds": seconds, "per_s": len(pages) / seconds}
    with tempfile.TemporaryDirectory() as folder:
        jobs = [(pages[i % len(pages)], Path(folder) / f"{i}.pdf", records[i % len(pages)]["decided_at"])
                for i in range(pdfs)]
        started = time.perf_counter()
        failed = [why for why in notice_pdfs(jobs) if why is not None]
        seconds = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"{len(failed)} PDF notices failed: {failed[0]}")
    result["pdf"] = {"notices": pdfs, "seconds": seconds, "per_s": pdfs / seconds, "processes": os.cpu_count()}
    return result


def _record_floor(urls: dict[str, str], batch: list[dict[str, Any]], repeats: int) -> dict[str, float]:
    """Median milliseconds of one 100-row request's record (``DecisionStore.record``, in process,
    nothing else), for each database, and for SQLite on a tmpfs, where the sync to disk is free."""
    protected = load_verified_manifest(CLASSIFIER_DIR).schema.protected
    floors = {}
    with tempfile.TemporaryDirectory(dir="/dev/shm") as memory:
        for name, url in {**urls, "sqlite, sync free (tmpfs)": f"sqlite:///{memory}/decisions.sqlite"}.items():
            if url == "off":
                continue
            store = open_store(url)
            times = []
            for _ in range(repeats):
                decided = RequestDecisions(
                    request_id=uuid.uuid4().hex, application_ids=[None] * len(batch), decided_at=datetime.now(UTC),
                    model_version="0123456789ab", manifest_sha256="f" * 64, dataset="census",
                    inputs=[{k: v for k, v in r.items() if k not in protected} for r in batch],
                    protected=[{k: r.get(k) for k in protected} for r in batch], probabilities=[0.5] * len(batch),
                    cutoff=0.5, decisions=["rejected"] * len(batch), reasons=None)
                started = time.perf_counter()
                store.record(decided)
                times.append(time.perf_counter() - started)
            store.engine.dispose()
            floors[name] = 1000 * statistics.median(times)
    return floors


def run_records(application: dict[str, Any], rejected: list[dict[str, Any]], logs: Path, rounds: int,
                duration_s: float, wrk: Callable[..., dict[str, float]], pdfs: int) -> dict[str, Any]:
    """The recording cost and the notice rates (see the module)."""
    folder = Path(tempfile.mkdtemp(prefix="loanxai-bench-records-"))  # reachable by PostgreSQL's user
    postgres = LocalPostgres(folder / "postgres", free_port())
    urls = {"off": "off", "sqlite": f"sqlite:///{folder}/decisions.sqlite", "postgresql": None}
    servers: dict[str, Any] = {}
    try:
        folder.chmod(0o755)
        postgres.start()
        urls["postgresql"] = postgres.url
        for name, url in urls.items():
            servers[name] = classifier_service(free_port(), free_port(), {"GUNICORN_WORKERS": "2", "LOAN_RECORDS_URL": url})
            servers[name].start(logs / f"records-{name}.log")
            servers[name].wait_ready()
        body = json.dumps({"jsonData": [application]})
        batch = rejected[:100]
        result = {"c32": _alternated(servers, body, 32, rounds, duration_s, wrk),
                  "c1": _alternated(servers, body, 1, rounds, duration_s, wrk),
                  "rows100_c8": _alternated(servers, json.dumps({"jsonData": batch}), 8, rounds, duration_s, wrk),
                  "floor_100_rows_ms": _record_floor(urls, batch, 20 if rounds == 1 else 300)}
        for kind in ("sqlite", "postgresql"):
            result[f"{kind}_over_off"] = (result["c32"][kind]["requests_per_s_median"]
                                          / result["c32"]["off"]["requests_per_s_median"])
            result[f"{kind}_over_off_100_rows"] = (result["rows100_c8"][kind]["requests_per_s_median"]
                                                   / result["rows100_c8"]["off"]["requests_per_s_median"])
            result[f"{kind}_p50_added_ms"] = (result["c1"][kind]["p50_ms_median"]
                                              - result["c1"]["off"]["p50_ms_median"])
        recorded = sum(1 for _ in select_decisions(DecisionStore(urls["sqlite"]), Selection()))
        result["sqlite_records"] = recorded
        result["notices"] = _notices(urls["sqlite"], servers["sqlite"].predictions_url, rejected, pdfs)
        for server in servers.values():  # the profiles start their own, one at a time
            server.stop()
        result["profile"] = run_profiles({"sqlite": urls["sqlite"], "postgresql": urls["postgresql"]},
                                         {1: body, 100: json.dumps({"jsonData": batch})}, logs, duration_s, wrk,
                                         quick=rounds == 1)
        return result
    finally:
        for server in servers.values():
            server.stop()
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


def records_markdown(r: dict[str, Any]) -> list[str]:
    """The recording cost's and the notices' tables."""
    rows = [f"| {name} | {r['c32'][name]['requests_per_s_median']:.0f} | {r['c32'][name]['p50_ms_median']:.2f} | "
            f"{r['c1'][name]['p50_ms_median']:.2f} |" for name in ("off", "sqlite", "postgresql")]
    n = r["notices"]
    return [
        f"| what recording costs: 1 named application per request, {len(r['c32']['off']['runs'])} runs each, "
        "alternated | requests/s at c = 32 (median) | p50 ms at c = 32 | p50 ms at c = 1 |",
        "|---|---|---|---|", *rows, "",
        f"Recording every decision durably, the classifier serves {r['sqlite_over_off']:.1%} of its unrecorded rate "
        f"with SQLite and {r['postgresql_over_off']:.1%} with PostgreSQL; one request's p50 grows by "
        f"{r['sqlite_p50_added_ms']:.2f} ms and {r['postgresql_p50_added_ms']:.2f} ms.",
        "",
        f"| 100 named applications per request, c = 8, {len(r['rows100_c8']['off']['runs'])} runs each, alternated "
        "| requests/s (median) | rows/s | p50 ms |",
        "|---|---|---|---|",
        *(f"| {name} | {r['rows100_c8'][name]['requests_per_s_median']:.0f} | "
          f"{100 * r['rows100_c8'][name]['requests_per_s_median']:,.0f} | {r['rows100_c8'][name]['p50_ms_median']:.2f} |"
          for name in ("off", "sqlite", "postgresql")),
        "",
        f"With 100 rows per request the classifier serves {r['sqlite_over_off_100_rows']:.1%} of its unrecorded rate "
        f"with SQLite and {r['postgresql_over_off_100_rows']:.1%} with PostgreSQL.",
        "",
        "| one 100-row request's record alone, in process (`DecisionStore.record`) | median ms |",
        "|---|---|",
        *(f"| {name} | {ms:.2f} |" for name, ms in r["floor_100_rows_ms"].items()),
        "",
        "| adverse action notices | notices | seconds | per second |",
        "|---|---|---|---|",
        *(f"| {label} | {n[key]['notices']} | {n[key]['seconds']:.2f} | {n[key]['per_s']:.0f} |" for label, key in (
            ("HTML, reasons recorded", "reasons_recorded"), ("HTML, reasons given again", "reasons_given_again"),
            (f"PDF (WeasyPrint, {n['pdf']['processes']} processes)", "pdf"))),
        "",
        *profile_markdown(r["profile"]),
    ]
