"""Benchmarks of the decision record: what recording costs the classifier, and notices per second.

Called by ``bench/run.py``: five classifiers side by side (2 workers each), recording to
SQLite in a file, to a real PostgreSQL on loopback (started here, in a temporary folder), to
each of the two on a tmpfs (``/dev/shm``, where the sync to disk is free: what recording costs
but the disk), and not at all (``LOAN_RECORDS_URL=off``); requests/s of 1-row named
applications at concurrency 32 and p50 at concurrency 1, runs alternated so that all meet the
same machine; 100-row requests at concurrency 8 (off, SQLite, PostgreSQL); one request's record
alone, in process. Then adverse action notices rendered as HTML for a batch of recorded
rejections, with their reasons recorded and given again, and a batch as PDF (1,000; a process
per core); then where the time goes (:mod:`bench.stages`).
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench.stages import descendants, profile_markdown, run_profiles
from loanxai.artifacts import CLASSIFIER_DIR
from loanxai.config import ServerSettings
from loanxai.core.manifest import load_verified_manifest
from loanxai.ops.postgres import LocalPostgres
from loanxai.ops.services import classifier_service, free_port
from loanxai.records.notices import Letterhead, notice_pdfs, render_notices
from loanxai.records.queries import Selection, select_decisions
from loanxai.records.redecide import Redecider
from loanxai.records.store import DecisionStore, RequestDecisions, open_store

#: each database's twin on a tmpfs, where its sync to disk is free: what recording costs but the disk
SYNC_FREE = {kind: f"{kind}, sync free (tmpfs)" for kind in ("sqlite", "postgresql")}
#: seconds each process measuring WeasyPrint alone waits for the others to be ready (loaded)
WEASYPRINT_READY_S = 120
LETTERHEAD = Letterhead("Bench Lender\n1 Main Street", "555-0100", "Consumer Financial Protection Bureau\nWashington, DC 20552")


def _usage(root: int) -> dict[str, float]:
    """What the process ``root`` and every process under it used so far: CPU seconds (user and
    system) and the times their threads slept to wait (voluntary context switches)."""
    ticks = switches = 0
    for pid in descendants(root):
        with contextlib.suppress(FileNotFoundError):  # a process that ended meanwhile
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(FileNotFoundError):
                    status = (task / "status").read_text()
                    switches += int(status.split("voluntary_ctxt_switches:")[1].split()[0])
    return {"cpu_ms": 1000 * ticks / os.sysconf("SC_CLK_TCK"), "switches": switches}


def _alternated(servers: dict[str, Any], databases: dict[str, LocalPostgres], body: str, connections: int,
                rounds: int, duration_s: float, wrk: Callable[..., dict[str, float]]) -> dict[str, Any]:
    """Each server loaded in turn, ``rounds`` times; the medians, and the CPU each request took
    in the classifier's processes and in its database server's (``databases``, by server name),
    and how often the classifier's threads slept to wait, per request."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    for _ in range(rounds):
        for name, server in servers.items():
            roots = {"classifier": server.process.pid}
            if name in databases:
                roots["database"] = int((databases[name].data / "postmaster.pid").read_text().split()[0])
            before = {side: _usage(pid) for side, pid in roots.items()}
            run = wrk(server.predictions_url, body, connections, duration_s)
            after, requests = {side: _usage(pid) for side, pid in roots.items()}, max(run["requests"], 1)
            for side in roots:
                run[f"{side}_cpu_ms"] = (after[side]["cpu_ms"] - before[side]["cpu_ms"]) / requests
            run["classifier_switches"] = (after["classifier"]["switches"] - before["classifier"]["switches"]) / requests
            runs[name].append(run)
            print(f"  records {name:<30} c={connections:<3} {run['requests_per_s']:8.0f} req/s "
                  f"p50 {run['p50_ms']:.2f} ms, CPU ms per request: classifier {run['classifier_cpu_ms']:.3f} "
                  f"database {run.get('database_cpu_ms', 0):.3f}; waits {run['classifier_switches']:.1f}", flush=True)
    return {name: {"requests_per_s_median": statistics.median(r["requests_per_s"] for r in rs),
                   "p50_ms_median": statistics.median(r["p50_ms"] for r in rs),
                   "classifier_cpu_ms_median": statistics.median(r["classifier_cpu_ms"] for r in rs),
                   "database_cpu_ms_median": statistics.median(r.get("database_cpu_ms", 0.0) for r in rs),
                   "classifier_switches_median": statistics.median(r["classifier_switches"] for r in rs),
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
    result["pdf"] = {"notices": pdfs, "seconds": seconds, "per_s": pdfs / seconds, "processes": os.cpu_count(),
                     "weasyprint_alone_per_s": _weasyprint_alone(pages, max(4, pdfs // 20))}
    return result


def _weasyprint_alone(pages: list[str], each: int) -> float:
    """Notices per second WeasyPrint itself turns into PDF bytes: ``each`` of ``pages`` in a
    process per core, all at once once each has loaded its modules and fonts, nothing else done
    (no file, no job handed over): what bounds the PDF rate on this machine."""
    processes = os.cpu_count() or 1
    context = multiprocessing.get_context("fork")
    ready, rates = context.Barrier(processes), context.SimpleQueue()
    workers = [context.Process(target=_weasyprint_rate, args=(pages, each, ready, rates)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    failed = [worker.exitcode for worker in workers if worker.exitcode != 0]
    if failed:  # its rate never came: reading the queue would wait for ever
        raise RuntimeError(f"WeasyPrint alone: {len(failed)} of {processes} processes failed (exit {failed[0]})")
    return sum(rates.get() for _ in workers)


def _weasyprint_rate(pages: list[str], each: int, ready: Any, rates: Any) -> None:
    from weasyprint import HTML

    HTML(string=pages[0]).write_pdf()
    ready.wait(timeout=WEASYPRINT_READY_S)  # a process that died before it breaks the barrier: the others fail too
    started = time.perf_counter()
    for i in range(each):
        HTML(string=pages[i % len(pages)]).write_pdf()
    rates.put(each / (time.perf_counter() - started))


def _decided(batch: list[dict[str, Any]], protected: list[str]) -> RequestDecisions:
    """A request's decisions of ``batch`` as the classifier hands them to the record."""
    return RequestDecisions(
        request_id=uuid.uuid4().hex, application_ids=[None] * len(batch), decided_at=datetime.now(UTC),
        model_version="0123456789ab", manifest_sha256="f" * 64, dataset="census",
        inputs=[{k: v for k, v in r.items() if k not in protected} for r in batch],
        protected=[{k: r.get(k) for k in protected} for r in batch], probabilities=[0.5] * len(batch),
        cutoff=0.5, decisions=["rejected"] * len(batch), reasons=None)


def _record_floor(urls: dict[str, str], batches: dict[int, list[dict[str, Any]]], repeats: int) -> dict[str, Any]:
    """Median milliseconds of one request's record alone, in process (``DecisionStore.record``,
    nothing else), for each batch size and each database: what a lone request waits for it."""
    protected = load_verified_manifest(CLASSIFIER_DIR).schema.protected
    floors: dict[str, dict[str, float]] = {str(n): {} for n in batches}
    for name, url in urls.items():
        if url == "off":
            continue
        store = open_store(url)
        for n, batch in batches.items():
            times = []
            for _ in range(repeats):
                decided = _decided(batch, protected)
                started = time.perf_counter()
                store.record(decided)
                times.append(time.perf_counter() - started)
            floors[str(n)][name] = 1000 * statistics.median(times)
        store.engine.dispose()
    return floors


def _recording_threads(url: str, batch: list[dict[str, Any]], protected: list[str], threads: int, seconds: float,
                       out: Any) -> None:
    """In a process of its own: ``threads`` threads recording ``batch`` as one request each, over
    and over for ``seconds``; put (requests, CPU seconds of the process) on ``out``."""
    store = DecisionStore(url)
    counts: list[int] = []
    end = time.monotonic() + seconds

    def recording() -> None:
        n = 0
        while time.monotonic() < end:
            store.record(_decided(batch, protected))
            n += 1
        counts.append(n)

    started = time.process_time()
    workers = [threading.Thread(target=recording) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put((sum(counts), time.process_time() - started))


def _record_cpu(urls: dict[str, str], batches: dict[int, list[dict[str, Any]]], seconds: float) -> dict[str, Any]:
    """CPU milliseconds per request of the record alone as the service runs it: 2 processes (its
    workers) of its threads each recording at once, the mean over ``seconds`` (every commit's
    sync, wait and checkpoint included, as a service pays them). The database server's own CPU
    (PostgreSQL's) is not counted: this is the classifier's side."""
    protected = load_verified_manifest(CLASSIFIER_DIR).schema.protected
    threads, context = ServerSettings().threads, multiprocessing.get_context("fork")
    cpu: dict[str, dict[str, float]] = {str(n): {} for n in batches}
    for name, url in urls.items():
        if url == "off":
            continue
        open_store(url)  # migrated before the processes start
        for n, batch in batches.items():
            out = context.Queue()
            processes = [context.Process(target=_recording_threads, args=(url, batch, protected, threads, seconds, out))
                         for _ in range(2)]
            for process in processes:
                process.start()
            done = [out.get(timeout=seconds + 120) for _ in processes]
            for process in processes:
                process.join()
            cpu[str(n)][name] = 1000 * sum(c for _, c in done) / max(sum(r for r, _ in done), 1)
    return {"threads": threads, "processes": 2, "ms": cpu}


def run_records(application: dict[str, Any], rejected: list[dict[str, Any]], logs: Path, rounds: int,
                duration_s: float, wrk: Callable[..., dict[str, float]], pdfs: int) -> dict[str, Any]:
    """The recording cost and the notice rates (see the module)."""
    folders = [Path(tempfile.mkdtemp(prefix="loanxai-bench-records-", dir=d)) for d in (None, "/dev/shm")]
    disk, memory = folders
    databases = {"postgresql": LocalPostgres(disk / "postgres", free_port()),
                 SYNC_FREE["postgresql"]: LocalPostgres(memory / "postgres", free_port())}
    urls = {"off": "off", "sqlite": f"sqlite:///{disk}/decisions.sqlite",
            SYNC_FREE["sqlite"]: f"sqlite:///{memory}/decisions.sqlite"}
    servers: dict[str, Any] = {}
    try:
        for folder in folders:
            folder.chmod(0o755)  # reachable by PostgreSQL's user
        for name, postgres in databases.items():
            postgres.start()
            urls[name] = postgres.url
        for name, url in urls.items():
            servers[name] = classifier_service(free_port(), free_port(), {"GUNICORN_WORKERS": "2", "LOAN_RECORDS_URL": url})
            servers[name].start(logs / f"records-{name.split(',')[0]}{'-tmpfs' if ',' in name else ''}.log")
            servers[name].wait_ready()
        body = json.dumps({"jsonData": [application]})
        batch = rejected[:100]
        on_disk = {name: servers[name] for name in ("off", "sqlite", "postgresql")}
        result = {"c32": _alternated(servers, databases, body, 32, rounds, duration_s, wrk),
                  "c1": _alternated(servers, databases, body, 1, rounds, duration_s, wrk),
                  "rows100_c8": _alternated(on_disk, databases, json.dumps({"jsonData": batch}), 8, rounds,
                                            duration_s, wrk),
                  "floor_ms": _record_floor(urls, {1: [application], 100: batch}, 20 if rounds == 1 else 300),
                  "record_cpu": _record_cpu(urls, {1: [application], 100: batch}, 2 if rounds == 1 else duration_s / 2)}
        for kind in urls.keys() - {"off"}:
            result[f"{kind}_over_off"] = (result["c32"][kind]["requests_per_s_median"]
                                          / result["c32"]["off"]["requests_per_s_median"])
            result[f"{kind}_p50_added_ms"] = (result["c1"][kind]["p50_ms_median"]
                                              - result["c1"]["off"]["p50_ms_median"])
        for kind in ("sqlite", "postgresql"):
            result[f"{kind}_over_off_100_rows"] = (result["rows100_c8"][kind]["requests_per_s_median"]
                                                   / result["rows100_c8"]["off"]["requests_per_s_median"])
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
        for postgres in databases.values():
            postgres.stop()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def records_markdown(r: dict[str, Any]) -> list[str]:
    """The recording cost's and the notices' tables."""
    names = list(r["c32"])
    cpu = r["record_cpu"]["ms"]
    rows = [f"| {name} | {r['c32'][name]['requests_per_s_median']:.0f} | {r['c32'][name]['p50_ms_median']:.2f} | "
            f"{r['c1'][name]['p50_ms_median']:.2f} | {_ms(r['floor_ms']['1'].get(name))} | "
            f"{r['c32'][name]['classifier_cpu_ms_median']:.3f} | {_ms(cpu['1'].get(name), 3)} | "
            f"{r['c32'][name]['database_cpu_ms_median']:.3f} | {r['c32'][name]['classifier_switches_median']:.1f} |"
            for name in names]
    n = r["notices"]
    under_load = (f"the record alone under the service's load: `DecisionStore.record` in {r['record_cpu']['processes']} "
                  f"processes of {r['record_cpu']['threads']} threads at once, CPU ms per request (mean)")
    return [
        f"| what recording costs: 1 named application per request, {len(r['c32']['off']['runs'])} runs each, "
        "alternated | requests/s at c = 32 (median) | p50 ms at c = 32 | p50 ms at c = 1 | the record alone, ms | "
        f"CPU ms per request at c = 32: classifier | {under_load} | its database server | the classifier's "
        "threads' waits per request at c = 32 (voluntary context switches) |",
        "|---|---|---|---|---|---|---|---|---|", *rows, "",
        *(f"Recording to {kind}, the classifier serves {r[f'{kind}_over_off']:.1%} of its unrecorded rate at c = 32; "
          f"one request's p50 at c = 1 grows by {r[f'{kind}_p50_added_ms']:.2f} ms; each request takes "
          f"{_added(r['c32'], kind):.3f} ms more CPU, of which the record alone under load is {cpu['1'][kind]:.3f}."
          for kind in names[1:]),
        "",
        f"| 100 named applications per request, c = 8, {len(r['rows100_c8']['off']['runs'])} runs each, alternated "
        f"| requests/s (median) | rows/s | p50 ms | the record alone, ms | CPU ms per request: classifier | {under_load} "
        "| its database server |",
        "|---|---|---|---|---|---|---|---|",
        *(f"| {name} | {c['requests_per_s_median']:.0f} | {100 * c['requests_per_s_median']:,.0f} | "
          f"{c['p50_ms_median']:.2f} | {_ms(r['floor_ms']['100'].get(name))} | {c['classifier_cpu_ms_median']:.2f} | "
          f"{_ms(cpu['100'].get(name))} | {c['database_cpu_ms_median']:.2f} |" for name, c in r["rows100_c8"].items()),
        "",
        *(f"Recording 100 rows to {kind} adds {_added(r['rows100_c8'], kind):.2f} ms of CPU per request, of which the "
          f"record alone under load is {cpu['100'][kind]:.2f}." for kind in ("sqlite", "postgresql")),
        "",
        f"With 100 rows per request the classifier serves {r['sqlite_over_off_100_rows']:.1%} of its unrecorded rate "
        f"with SQLite and {r['postgresql_over_off_100_rows']:.1%} with PostgreSQL. The record alone: "
        "`DecisionStore.record` in process, nothing else, the median of one request's; with the sync to disk made "
        "free (on a tmpfs), it is the record's own work: "
        + ", ".join(f"{name.split(',')[0]} {ms:.2f} ms" for name, ms in r["floor_ms"]["100"].items() if "tmpfs" in name)
        + " for 100 rows.",
        "",
        "| adverse action notices | notices | seconds | per second |",
        "|---|---|---|---|",
        *(f"| {label} | {n[key]['notices']} | {n[key]['seconds']:.2f} | {n[key]['per_s']:.0f} |" for label, key in (
            ("HTML, reasons recorded", "reasons_recorded"), ("HTML, reasons given again", "reasons_given_again"),
            (f"PDF (WeasyPrint, {n['pdf']['processes']} processes)", "pdf"))),
        "",
        f"WeasyPrint alone, in {n['pdf']['processes']} processes at once (HTML to PDF bytes, nothing else): "
        f"{n['pdf']['weasyprint_alone_per_s']:.0f} notices a second; the batch above is "
        f"{n['pdf']['per_s'] / n['pdf']['weasyprint_alone_per_s']:.0%} of it.",
        "",
        *profile_markdown(r["profile"]),
    ]


def _ms(value: float | None, digits: int = 2) -> str:
    """Milliseconds as the tables show them; ``-`` for nothing measured."""
    return "-" if value is None else f"{value:.{digits}f}"


def _added(runs: dict[str, Any], kind: str) -> float:
    """The classifier's CPU ms per request recording to ``kind``, over its CPU unrecorded."""
    return runs[kind]["classifier_cpu_ms_median"] - runs["off"]["classifier_cpu_ms_median"]
