"""Where a decision's time goes: the classifier sampled by py-spy under load, summed by stage.

Called by ``bench/run.py``: for each prediction path (the fast path, scikit-learn), request
size (1 and 100 rows) and record (SQLite, PostgreSQL), a classifier (2 workers) is loaded by
wrk at concurrency 8 while py-spy samples each of its processes (:data:`RATE` per second;
threads py-spy sees idle, such as those asleep in a socket wait, are left out). Each sample is
given to the first stage of :data:`STAGES` found in its stack; the table shows each stage's
share. The samples cost the classifier some speed: the rates here are lower than the bench's.
"""
from __future__ import annotations

import collections
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loanxai.ops.services import classifier_service, free_port

PY_SPY = Path(sys.executable).parent / "py-spy"
#: samples per second of each process (at 200, py-spy fell seconds behind on 2 busy cores)
RATE = 100
ATTEMPTS = 3
#: stage -> the functions (``name (file)``) whose presence in a sample's stack puts it there, first match wins
STAGES: dict[str, tuple[str, ...]] = {
    "record: insert and commit (the group's holder)": ("_commit (commits.py)",),
    "record: converting the rows for the driver": ("_parameters (commits.py)",),
    "record: waiting for the group's commit": ("write (commits.py)",),
    "record: the request's decisions, as the driver takes them": ("_record (classifier.py)",),
    "prediction (with the elderly rule)": ("served (classifier.py)",),
    "reading the request": ("read_decision_request (codecs.py)",),
    "the answer's JSON": ("jsonify (flask_utils.py)",),
    "the request's JSON": ("get_json (request.py)", "loads (guards.py)"),
    "rest of the handler": ("_predict_message (classifier.py)",),
    "HTTP server (gunicorn, Flask, Seldon's wrapper)": ("handle (gthread.py)", "handle (workers.py)"),
}
OTHER = "other (the supervisor, metrics, start-up)"


def _frame_name(frame: str) -> str:
    """``function (file.py)`` of py-spy's ``function (path/file.py:line)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1].split(':', 1)[0]})"


def stage_shares(raw: str) -> dict[str, float]:
    """The share of samples of each stage (and :data:`OTHER`) in py-spy's raw (collapsed) output."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not (stack and count.isdigit()):  # a line that is not a sample (py-spy's own words)
            continue
        frames = {_frame_name(f) for f in stack.split(";")}
        stage = next((name for name, marks in STAGES.items() if frames.intersection(marks)), OTHER)
        counts[stage] += int(count)
    total = sum(counts.values()) or 1
    return {name: counts[name] / total for name in [*STAGES, OTHER]}


def descendants(pid: int) -> list[int]:
    """``pid`` and every process under it."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        found.append(parent)
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent)], capture_output=True, text=True).stdout
        todo += [int(child) for child in children.split()]
    return found


def profile_case(url: str, path: str, body: str, logs: Path, seconds: float,
                 wrk: Callable[..., dict[str, float]]) -> dict[str, Any]:
    """One classifier (recording at ``url``, serving ``path``) sampled while wrk sends ``body``."""
    server = classifier_service(free_port(), free_port(), {"GUNICORN_WORKERS": "2", "LOAN_RECORDS_URL": url,
                                                           "LOAN_PREDICTION_PATH": path})
    server.start(logs)
    try:
        server.wait_ready()
        wrk(server.predictions_url, body, 8, 2)  # warm
        pids = descendants(server.process.pid)
        # one py-spy per process: its --subprocesses can crash (benfred/py-spy#638, #724, open)
        with tempfile.TemporaryDirectory() as folder:
            outs = [Path(folder) / f"{pid}.txt" for pid in pids]
            spies = [subprocess.Popen([str(PY_SPY), "record", "--nonblocking", "--rate", str(RATE), "--duration",
                                       str(int(seconds)), "--format", "raw", "--output", str(out), "--pid", str(pid)],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                     for pid, out in zip(pids, outs)]
            load = wrk(server.predictions_url, body, 8, seconds)
            for spy in spies:
                said, _ = spy.communicate(timeout=seconds + 60)
                if spy.returncode != 0:
                    raise RuntimeError(f"py-spy failed (exit {spy.returncode}): {said.strip()[-500:]}")
            raw = "\n".join(out.read_text(errors="replace") for out in outs)  # frames may hold any bytes
        return {"requests_per_s": load["requests_per_s"], "shares": stage_shares(raw)}
    finally:
        server.stop()


def run_profiles(urls: dict[str, str], bodies: dict[int, str], logs: Path, seconds: float,
                 wrk: Callable[..., dict[str, float]], quick: bool = False) -> list[dict[str, Any]]:
    """Every case (see the module): path x rows x database (``quick``: the fast path's first).
    py-spy 0.4.1 sometimes dies of a segmentation fault here (2026-12-06, one run in several):
    a case is tried :data:`ATTEMPTS` times, then shown as failed rather than losing the bench."""
    cases = []
    for path, label in (("auto", "fast path"), ("scikit-learn", "scikit-learn")):
        for rows, body in bodies.items():
            for database, url in urls.items():
                if quick and cases:
                    return cases
                print(f"  profile {label:<13} rows={rows:<3} {database}", flush=True)
                case: dict[str, Any] = {"path": label, "rows": rows, "database": database}
                for attempt in range(1, ATTEMPTS + 1):
                    try:
                        case.update(profile_case(url, path, body, logs / f"profile-{path}-{rows}-{database}.log",
                                                 seconds, wrk), failed=None)
                        break
                    except RuntimeError as error:
                        print(f"  attempt {attempt}: {error}", flush=True)
                        case["failed"] = str(error)
                cases.append(case)
    return cases


def profile_markdown(cases: list[dict[str, Any]]) -> list[str]:
    """One column per case, one row per stage the results name (a results file of an earlier
    version renders with its own stages): the share of samples."""
    header = [f"{c['path']}, {c['rows']} row{'s' if c['rows'] > 1 else ''}, {c['database']}" for c in cases]
    named = dict.fromkeys(stage for c in cases if not c["failed"] for stage in c["shares"])
    stages = [*(stage for stage in named if stage != OTHER), OTHER]

    def cell(case: dict[str, Any], stage: str) -> str:
        if case["failed"]:
            return "py-spy failed"
        return f"{case['shares'][stage]:.0%}" if stage in case["shares"] else "-"

    return [
        "| where the classifier's time goes (py-spy samples, c = 8) | " + " | ".join(header) + " |",
        "|---|" + "---|" * len(cases),
        "| requests/s while sampled | " + " | ".join("-" if c["failed"] else f"{c['requests_per_s']:.0f}"
                                                    for c in cases) + " |",
        *(f"| {stage} | " + " | ".join(cell(c, stage) for c in cases) + " |" for stage in stages),
        "",
    ]
