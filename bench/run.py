"""Benchmark harness: the classifier and the explainer against a peer, side by side in one run.

``make bench`` (or ``.venv/bin/python bench/run.py``) measures, on loopback only, and writes
``bench/results/latest.json`` and ``latest.md``:

- the in-process floor: ``predict_proba`` for 1 and 100 rows, for each predictor variant;
- the classifier over REST (our fast path, our scikit-learn path, and the peer: MLServer with
  mlserver-sklearn serving the same fitted pipeline over the V2 protocol): p50/p99 latency and
  requests/s at each concurrency, for 1-row and 100-row requests, loaded with wrk;
- explanations of a fixed set of applications, in process and through the explainer service,
  both seeded as the service seeds them (the same anchors, the same classifier calls), and one
  of the explainer's classifier calls in process, through the service and as a bare round trip;
- principal reasons, recourse and the file scorer (``bench/decisions.py``), beside Seldon's
  ``seldon-batch-processor``;
- what monitoring costs: the fast path with every metric on and with ``LOAN_METRICS=off``,
  1-row named applications (protected attributes given) at concurrency 32, runs alternated;
- what recording costs (``bench/records.py``): recording to SQLite, to PostgreSQL, to each on a
  tmpfs (the sync free) and not at all, side by side, with the CPU each request takes; one
  request's record alone; adverse action notices per second; where the time goes (py-spy);
- cold start: seconds from process start to ready, for each service;
- the reviewer console's pages over a million recorded decisions (``bench/console.py``), on
  SQLite and on PostgreSQL: each page's p50 and p90, the indexes each search's plan uses.

``--only records`` or ``--only console`` runs that stage alone: its results replace that stage's
in ``--out``'s ``latest.json`` (the others are kept as they were measured, and the stage says
when it was measured alone). Every server it starts listens on 127.0.0.1 and is stopped at the
end, whatever happens.
Load generator: wrk (C, event loop, HTTP keep-alive, Lua body): a Python client on the same
2 cores would spend more CPU per request than the servers it measures.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import requests
from sklearn.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.console import console_markdown, run_console  # noqa: E402
from bench.decisions import run_decisions  # noqa: E402
from bench.records import records_markdown, run_records  # noqa: E402
from loanxai.artifacts import (  # noqa: E402
    CLASSIFIER_DIR,
    COMPILED_FILE,
    EXPLAINER_DIR,
    MODEL_FILE,
    PREPROCESSOR_FILE,
    RESULTS_DIR,
)
from loanxai.core.elderly import elderly_rule  # noqa: E402
from loanxai.core.manifest import library_versions, load_pickle, load_verified_manifest  # noqa: E402
from loanxai.core.pipeline import CLASSIFIER_STEP, PREPROCESSOR_STEP, impute  # noqa: E402
from loanxai.data.dataset import load_trained_dataset  # noqa: E402
from loanxai.data.description import LABEL  # noqa: E402
from loanxai.explain import anchors  # noqa: E402
from loanxai.ops.services import (  # noqa: E402
    classifier_service,
    explainer_service,
    free_port,
    stop_process_group,
    wait_until_ready,
)
from loanxai.ops.tokens import make_sampling_key  # noqa: E402
from loanxai.serving.fastpath import TREES_FROM_ROWS, FastClassifier  # noqa: E402
from loanxai.serving.remote import RemoteClassifier  # noqa: E402
from loanxai.training.train import ensure_trained  # noqa: E402

MLSERVER = ROOT / ".venv-mlserver" / "bin" / "mlserver"
WRK_SCRIPT = ROOT / "bench" / "wrk.lua"
#: the in-process predictor the services serve on the fast path
FAST_PATH = f"fast path as served (GTIL below {TREES_FROM_ROWS} rows, the trees from {TREES_FROM_ROWS})"


# --- measurement helpers -------------------------------------------------------------------------


def median_ms(call: Callable[[], Any], budget_s: float, max_runs: int = 2000) -> float:
    """Median wall time of ``call`` in ms, over as many runs as fit in ``budget_s`` (at least 5)."""
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < max_runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def wrk(url: str, body: str, connections: int, duration_s: float) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 latency (ms), errors."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        handle.write(body)
    try:
        threads = min(connections, 2)
        result = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--timeout", "10s",
             "-s", str(WRK_SCRIPT), url],
            env={**os.environ, "BODY_FILE": handle.name}, capture_output=True, text=True,
            timeout=duration_s + 60, check=True,
        )
    finally:
        os.unlink(handle.name)
    line = next(text for text in result.stdout.splitlines() if text.startswith("WRK_JSON "))
    raw = json.loads(line.removeprefix("WRK_JSON "))
    return {
        "requests_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1e3,
        "p99_ms": raw["p99_us"] / 1e3,
        "requests": raw["requests"],
        "errors": raw["errors"] + raw["non_2xx"],
    }


# --- what is measured ----------------------------------------------------------------------------


def load_predictors() -> tuple[dict[str, Callable[[np.ndarray], np.ndarray]], Pipeline]:
    """The predictors measured in process (each ``rows -> probabilities``), and the pipeline as trained."""
    preprocessor = load_pickle(CLASSIFIER_DIR, PREPROCESSOR_FILE)
    as_trained = Pipeline([(PREPROCESSOR_STEP, preprocessor), (CLASSIFIER_STEP, load_pickle(CLASSIFIER_DIR, MODEL_FILE))])
    single = load_pickle(CLASSIFIER_DIR, MODEL_FILE)  # a second copy, served as the services do
    single.n_jobs = 1
    one_job = Pipeline([("preprocessor", preprocessor), ("classifier", single)])
    fast = FastClassifier(preprocessor, single, CLASSIFIER_DIR / COMPILED_FILE)
    return {
        "scikit-learn pipeline (as trained, n_jobs=-1)": as_trained.predict_proba,
        "scikit-learn pipeline (n_jobs=1)": one_job.predict_proba,
        "fast path, treelite GTIL": fast.gtil_proba,
        "fast path, the fitted trees": fast.trees_proba,
        FAST_PATH: fast.predict_proba,
    }, one_job


def in_process(predictors: dict[str, Callable], rows: np.ndarray, budget_s: float) -> list[dict[str, Any]]:
    """Median milliseconds of each predictor for 1 and 100 rows, each measured for about ``budget_s``."""
    return [
        {"predictor": name, "rows": n, "median_ms": median_ms(lambda: predict(rows[:n]), budget_s)}
        for name, predict in predictors.items() for n in (1, 100)
    ]


def seldon_body(rows: np.ndarray) -> str:
    """A SeldonMessage of encoded rows, as JSON."""
    return json.dumps({"data": {"ndarray": rows.tolist()}})


def v2_body(rows: np.ndarray) -> str:
    """An Open Inference (V2) request of encoded rows, as JSON (MLServer's protocol)."""
    return json.dumps({
        "inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}],
        "outputs": [{"name": "predict_proba"}],
    })


class MLServerPeer:
    """MLServer + mlserver-sklearn serving ``pipeline`` (joblib) with ``workers`` parallel workers."""

    name = "mlserver"

    def __init__(self, pipeline: Pipeline, workers: int, folder: Path) -> None:
        self.http_port = free_port()
        model_dir = folder / "loan"
        model_dir.mkdir(parents=True)
        joblib.dump(pipeline, model_dir / "model.joblib")
        (model_dir / "model-settings.json").write_text(json.dumps({
            "name": "loan", "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "v1"},
        }))
        (folder / "settings.json").write_text(json.dumps({
            "host": "127.0.0.1", "http_port": self.http_port, "grpc_port": free_port(),
            "metrics_port": free_port(), "parallel_workers": workers, "debug": False,
        }))
        self.folder = folder
        self.process: subprocess.Popen | None = None

    @property
    def predictions_url(self) -> str:
        """The predictions endpoint."""
        return f"http://127.0.0.1:{self.http_port}/v2/models/loan/infer"

    def start(self, log_path: Path) -> None:
        """Start the server, its output going to ``log_path``."""
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen([str(MLSERVER), "start", str(self.folder)], stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.log_path = log_path

    def wait_ready(self, timeout: float = 120) -> float:
        """Block until the server is ready; return the seconds waited."""
        return wait_until_ready(f"http://127.0.0.1:{self.http_port}/v2/models/loan/ready", self.process, "mlserver",
                                lambda: self.log_path.read_text(errors="replace")[-3000:], timeout)

    def stop(self) -> None:
        """Stop the process and everything it started."""
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None


def under_elderly_age(rows: np.ndarray, schema: Any) -> np.ndarray:
    """The encoded rows of applicants younger than the elderly age (all of them if age is no input)."""
    for name, age in schema.elderly.items():
        rows = rows[rows[:, schema.feature_names.index(name)] < age]
    return rows


def check_same_answers(rows: np.ndarray, ours: str, peer: str) -> float:
    """Largest probability difference between our service and the peer on ``rows``."""
    answer = requests.post(ours, data=seldon_body(rows), headers={"Content-Type": "application/json"}, timeout=30)
    a = np.asarray(answer.json()["data"]["ndarray"])
    outputs = requests.post(peer, data=v2_body(rows), headers={"Content-Type": "application/json"}, timeout=30).json()["outputs"]
    b = np.asarray(outputs[0]["data"]).reshape(len(rows), -1)
    return float(np.max(np.abs(a - b)))


def rest_section(servers: dict[str, Any], rows: np.ndarray, concurrency: list[int], duration_s: float) -> list[dict[str, Any]]:
    """Load each server with wrk at each concurrency, 1-row and 100-row requests."""
    results = []
    for batch in (1, 100):
        for name, server in servers.items():
            body = v2_body(rows[:batch]) if name == "mlserver" else seldon_body(rows[:batch])
            for connections in concurrency:
                run = wrk(server.predictions_url, body, connections, duration_s)
                results.append({"server": name, "rows": batch, "concurrency": connections, **run})
                print(f"  {name:<22} rows={batch:<3} c={connections:<2} {run['requests_per_s']:8.0f} req/s "
                      f"p50 {run['p50_ms']:7.2f} ms p99 {run['p99_ms']:7.2f} ms errors {run['errors']}", flush=True)
    return results


def monitoring_section(on: Any, off: Any, application: dict[str, Any], rounds: int, duration_s: float) -> dict[str, Any]:
    """Requests/s of the classifier with monitoring on and off, side by side: ``rounds`` runs of
    each, alternated so that both meet the same machine; the median of each, and their ratio."""
    body = json.dumps({"jsonData": [application]})
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for _ in range(rounds):
        for name, server in (("on", on), ("off", off)):
            runs[name].append(wrk(server.predictions_url, body, 32, duration_s))
            print(f"  metrics {name:<3} {runs[name][-1]['requests_per_s']:8.0f} req/s", flush=True)
    result = {name: {"requests_per_s_median": statistics.median(r["requests_per_s"] for r in rs),
                     "p50_ms_median": statistics.median(r["p50_ms"] for r in rs),
                     "errors": sum(r["errors"] for r in rs), "runs": rs} for name, rs in runs.items()}
    result["on_over_off"] = result["on"]["requests_per_s_median"] / result["off"]["requests_per_s_median"]
    return result


def served_decisions(fast_predict: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """The classifier's decisions in process: the elderly rule, the fast path, the cutoff."""
    manifest = load_verified_manifest(CLASSIFIER_DIR)
    rule = elderly_rule(manifest.schema, load_pickle(CLASSIFIER_DIR, PREPROCESSOR_FILE), load_pickle(CLASSIFIER_DIR, MODEL_FILE))

    def decide(X: np.ndarray) -> np.ndarray:
        proba = fast_predict(X) if rule is None else rule.served(X, fast_predict)[1]
        return (proba[:, 1] >= manifest.cutoff).astype(np.intp)

    return decide


def explanation_section(applications: np.ndarray, explainer_url: str, fast_predict: Callable,
                        classifier: Any, sampling_key: Path, call_rows: np.ndarray) -> dict[str, Any]:
    """Seconds per explanation in process (fast predictor) and through the explainer service,
    seeded alike: each application gets the same anchor from the same classifier calls both ways;
    then what one of the explainer's calls costs (:func:`call_costs`)."""
    explainer = anchors.load_explainer(EXPLAINER_DIR)
    explainer_manifest = load_verified_manifest(EXPLAINER_DIR)
    model_sha256 = explainer_manifest.model_sha256
    calls = {"n": 0, "rows": 0}
    decide = served_decisions(fast_predict)

    def counted(X: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        calls["rows"] += len(X)
        return decide(X)

    model = anchors.AnchorModel(explainer_manifest.schema, explainer_manifest.anchor_features, counted)
    anchors.set_predictor(explainer, model)
    local, remote = [], []
    session = requests.Session()
    same = 0
    for row in applications:
        calls.update(n=0, rows=0)
        started = time.perf_counter()
        anchor = anchors.explain(explainer, model, row, {"threshold": 0.95, "seed": 0}, model_sha256).conditions
        local.append({"seconds": time.perf_counter() - started, "model_calls": calls["n"], "rows": calls["rows"]})
        started = time.perf_counter()
        answer = session.post(explainer_url, json={"data": {"ndarray": [row.tolist()]}}, timeout=120).json()["jsonData"]
        same += answer["anchor"] == list(anchor)
        remote.append({"seconds": time.perf_counter() - started, "model_calls": answer["model_calls"],
                       "rows": answer["model_rows"]})

    def summary(runs: list[dict[str, Any]]) -> dict[str, float]:
        return {
            "p50_s": statistics.median(r["seconds"] for r in runs),
            "mean_s": statistics.fmean(r["seconds"] for r in runs),
            "model_calls_median": statistics.median(r["model_calls"] for r in runs),
            "rows_median": statistics.median(r["rows"] for r in runs),
        }

    result = {"applications": len(applications), "same_anchor": same, "in_process": summary(local), "service": summary(remote)}
    result["service_over_in_process_p50"] = result["service"]["p50_s"] / result["in_process"]["p50_s"]
    rows = int(result["service"]["rows_median"] / max(result["service"]["model_calls_median"], 1))
    result["call"] = call_costs(classifier, sampling_key, decide, call_rows[:max(rows, 1)])
    # the explanation's p50 if each of its calls cost only the bare round trip more than in process
    result["floor_over_in_process_p50"] = 1 + (result["service"]["model_calls_median"] * result["call"]["ping_ms"]
                                               / 1000 / result["in_process"]["p50_s"])
    return result


def call_costs(classifier: Any, sampling_key: Path, decide: Callable, X: np.ndarray) -> dict[str, float]:
    """Median milliseconds of one classifier call of the explainer's (``X``, the median rows of
    one): in process, through the classifier service as the explainer makes it
    (:class:`~loanxai.serving.remote.RemoteClassifier`), and the bare round trip to that service
    (``GET /health/ping``: requests, gunicorn, Flask and Seldon's wrapper, no message)."""
    remote = RemoteClassifier(classifier.predictions_url, 5, 30, 0, sampling_key)
    ping = f"{classifier.url}/health/ping"
    # as it called before 2026-12-07: requests reading the environment (proxies, CA bundle, .netrc) on every call
    rereading = RemoteClassifier(classifier.predictions_url, 5, 30, 0, sampling_key)
    rereading.session.trust_env = True
    return {"rows": len(X), "in_process_ms": median_ms(lambda: decide(X), budget_s=2, max_runs=500),
            "service_ms": median_ms(lambda: remote.classify(X), budget_s=4, max_runs=500),
            "service_environment_each_call_ms": median_ms(lambda: rereading.classify(X), budget_s=4, max_runs=500),
            "ping_ms": median_ms(lambda: remote.session.get(ping, timeout=5).raise_for_status(), budget_s=2,
                                 max_runs=500)}


def machine() -> dict[str, Any]:
    """What the results were measured on."""
    cpuinfo, meminfo = Path("/proc/cpuinfo").read_text().splitlines(), Path("/proc/meminfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    memory_kb = int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal")))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": library_versions(["seldon-core", "scikit-learn", "treelite", "numpy", "alibi"]),
        # the console's stage alone runs without wrk
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
        if shutil.which("wrk") else "no wrk",
    }


# --- report ----------------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    """The results as the Markdown tables the docs show: each section the results hold, in order."""
    m = results["machine"]
    lines = [
        f"Measured {results['date']} on {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}; "
        f"{m['wrk']}; {results['settings']['duration_s']} s per load run; servers and wrk share the cores.",
        "",
    ]
    for key, section in SECTIONS.items():
        if key in results:
            if isinstance(results[key], dict) and "measured_alone" in results[key]:
                lines += [f"Measured alone, {results[key]['measured_alone']} (`bench/run.py --only {key}`):", ""]
            lines += section(results)
    return "\n".join(lines)


def in_process_markdown(results: dict[str, Any]) -> list[str]:
    """The in-process floor's table."""
    return [
        "| in process | rows | median ms |",
        "|---|---|---|",
        *[f"| {r['predictor']} | {r['rows']} | {r['median_ms']:.3f} |" for r in results["in_process"]],
        "",
    ]


def rest_markdown(results: dict[str, Any]) -> list[str]:
    """The REST table, the peer's largest difference and the ratios over the peer."""
    return [
        "| over REST | rows | concurrency | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {r['server']} | {r['rows']} | {r['concurrency']} | {r['requests_per_s']:.0f} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['errors']} |"
            for r in results["rest"]
        ],
        "",
        f"Largest probability difference, our service vs MLServer, on 100 rows (applicants under 62: MLServer serves "
        f"the pipeline without the elderly rule): {results['peer_max_difference']:.2e}.",
        "",
        *peer_ratios(results["rest"]),
    ]


def explanations_markdown(results: dict[str, Any]) -> list[str]:
    """The explanations' tables."""
    e = results["explanations"]
    return [
        f"| explanations ({e['applications']} applications) | p50 s | mean s | model calls (median) | rows (median) |",
        "|---|---|---|---|---|",
        *[
            f"| {label} | {e[k]['p50_s']:.3f} | {e[k]['mean_s']:.3f} | {e[k]['model_calls_median']:.0f} "
            f"| {e[k]['rows_median']:.0f} |"
            for label, k in (("in process, fast predictor", "in_process"), ("through the explainer service", "service"))
        ],
        "",
        f"Service / in-process p50: {e['service_over_in_process_p50']:.2f}; the same anchor both ways for "
        f"{e['same_anchor']} of {e['applications']} applications.",
        "",
        f"| one classifier call of an explanation ({e['call']['rows']} rows) | median ms |",
        "|---|---|",
        f"| in process, fast predictor | {e['call']['in_process_ms']:.2f} |",
        f"| through the classifier service, as the explainer calls it | {e['call']['service_ms']:.2f} |",
        "| the same, requests reading the environment (proxies, CA bundle, .netrc) on every call, as until "
        f"2026-12-07 | {e['call']['service_environment_each_call_ms']:.2f} |",
        f"| the bare round trip to the service (`GET /health/ping`) | {e['call']['ping_ms']:.2f} |",
        "",
        f"Were each call to cost only the bare round trip more than in process, an explanation through the service "
        f"would take {e['floor_over_in_process_p50']:.2f} times its in-process p50.",
        "",
    ]


def cold_start_markdown(results: dict[str, Any]) -> list[str]:
    """The cold starts' table."""
    return [
        "| cold start (process start to ready) | seconds |",
        "|---|---|",
        *[f"| {name} | {seconds:.1f} |" for name, seconds in results["cold_start_s"].items()],
        "",
    ]


def peer_ratios(rest: list[dict[str, Any]]) -> list[str]:
    """Our rows/s over MLServer's, each of our paths, rows and concurrency (ours recording, MLServer not)."""
    rate = {(r["server"], r["rows"], r["concurrency"]): r["requests_per_s"] * r["rows"] for r in rest}
    lines = ["| rows/s over MLServer's (ours recording every decision) | rows | concurrency | ratio |",
             "|---|---|---|---|"]
    for (server, rows, connections), value in rate.items():
        peer = rate.get(("mlserver", rows, connections))
        if server != "mlserver" and peer:
            lines.append(f"| {server} | {rows} | {connections} | {value / peer:.2f}x |")
    return [*lines, ""]


def monitoring_markdown(m: dict[str, Any]) -> list[str]:
    """The monitoring cost's table."""
    return [
        f"| what monitoring costs: 1 named application per request, c = 32, {len(m['on']['runs'])} runs each, "
        "alternated | requests/s (median) | p50 ms |",
        "|---|---|---|",
        *[
            f"| metrics {name} | {m[name]['requests_per_s_median']:.0f} | {m[name]['p50_ms_median']:.2f} |"
            for name in ("on", "off")
        ],
        "",
        f"With every metric on, the classifier serves {m['on_over_off']:.1%} of its rate with them off.",
        "",
    ]


def decisions_markdown(d: dict[str, Any]) -> list[str]:
    """The reasons, recourse and file scorer's tables."""
    r, c, s, b = d["reasons"], d["recourse"], d["scorer"], d["batch_processor"]
    return [
        "| principal reasons through the classifier | p50 s |",
        "|---|---|",
        f"| 1 application, with reasons | {r['one_p50_s']:.4f} |",
        f"| 1 application, without | {r['one_without_reasons_p50_s']:.4f} |",
        f"| 1,000 applications in one call, with reasons | {r['thousand_p50_s']:.3f} |",
        "",
        f"Recourse (k = 3) through both services, {c['applications']} rejected applications: p50 {c['p50_s']:.3f} s, "
        f"max {c['max_s']:.3f} s, {c['model_calls_median']:g} classifier calls (median); recourse found for "
        f"{c['with_recourse']}.",
        "",
        "| deciding a file | rows | seconds | rows/s |",
        "|---|---|---|---|",
        *(f"| {label} | {run['rows']:,} | {run['seconds']:.1f} | {run['rows_per_s']:,.0f} |" for label, run in (
            ("`python -m loanxai score`, reasons off", s["reasons_off"]),
            ("`python -m loanxai score`, 4 reasons per rejection", s["reasons_on"]),
            ("`seldon-batch-processor`, 4 workers, batches of 1,000", b))),
        "",
    ]


#: each section of the results (by its key) and how it is shown, in the order shown
SECTIONS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "in_process": in_process_markdown,
    "rest": rest_markdown,
    "explanations": explanations_markdown,
    "decisions": lambda results: decisions_markdown(results["decisions"]),
    "monitoring": lambda results: monitoring_markdown(results["monitoring"]),
    "records": lambda results: records_markdown(results["records"]),
    "console": lambda results: console_markdown(results["console"]),
    "cold_start_s": cold_start_markdown,
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure everything (or the stage ``args.only``); return the results."""
    ensure_trained()
    dataset = load_trained_dataset(load_verified_manifest(CLASSIFIER_DIR))
    rows = dataset.schema.encode_frame(dataset.test)
    predictors, pipeline = load_predictors()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "settings": {"duration_s": args.duration, "concurrency": args.concurrency, "explanations": args.explanations},
    }
    frame = dataset.test.drop(columns=[LABEL])
    applications = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in frame.to_dict("records")]
    approved = served_decisions(predictors[FAST_PATH])(rows).astype(bool)
    rejected = [a for a, yes in zip(applications, approved) if not yes][:1000]
    application = load_verified_manifest(CLASSIFIER_DIR).dataset.example
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stages = {
        "records": lambda: run_records(application, rejected, logs, 1 if args.quick else 3, args.duration, wrk,
                                       pdfs=16 if args.quick else 1000),
        "console": lambda: run_console(applications, logs, args.quick),
    }
    if args.only:
        print(args.only, flush=True)
        results[args.only] = stages[args.only]()
        return results
    print("in-process floor", flush=True)
    results["in_process"] = in_process(predictors, rows, budget_s=max(0.5, args.duration / 3))

    with tempfile.TemporaryDirectory() as folder:
        # the sampling key the explainer and the classifier it calls share
        sampling = {"LOAN_SAMPLING_KEY_FILE": str(make_sampling_key(Path(folder) / "sampling-key"))}

        # each classifier records to a file of its own: none waits for another's writes
        def recording(name: str, **env: str) -> dict[str, str]:
            return {"GUNICORN_WORKERS": "2", "LOAN_RECORDS_URL": f"sqlite:///{folder}/{name}.sqlite", **sampling, **env}

        fast = classifier_service(free_port(), free_port(), recording("fast"))
        unmonitored = classifier_service(free_port(), free_port(), recording("unmonitored", LOAN_METRICS="off"))
        reference = classifier_service(free_port(), free_port(),
                                       recording("reference", LOAN_PREDICTION_PATH="scikit-learn"))
        explainer = explainer_service(fast.predictions_url, free_port(), free_port(), sampling)
        peer = MLServerPeer(pipeline, workers=2, folder=Path(folder))
        servers = {"ours, fast path": fast, "ours, scikit-learn": reference, "mlserver": peer}
        started: list[Any] = []
        try:
            cold: dict[str, float] = {}
            for name, server in [*servers.items(), ("explainer", explainer), ("ours, fast path, metrics off", unmonitored)]:
                server.start(logs / f"{name.replace(', ', '-').replace(' ', '-')}.log")
                started.append(server)
                cold[name] = server.wait_ready()  # one at a time: a start-up is not slowed by another
            results["cold_start_s"] = cold
            # the peer serves the pipeline alone: compared on applicants the elderly rule leaves as they are
            results["peer_max_difference"] = check_same_answers(under_elderly_age(rows, dataset.schema)[:100],
                                                                fast.predictions_url, peer.predictions_url)
            print("REST load (wrk)", flush=True)
            results["rest"] = rest_section(servers, rows, args.concurrency, args.duration)
            print("monitoring cost", flush=True)
            results["monitoring"] = monitoring_section(fast, unmonitored, application, 1 if args.quick else 3, args.duration)
            print("decision record", flush=True)
            results["records"] = stages["records"]()
            print("explanations", flush=True)
            medians = load_verified_manifest(EXPLAINER_DIR).numeric_medians
            results["explanations"] = explanation_section(
                impute(rows[: args.explanations], dataset.schema, medians),
                explainer.predictions_url,
                predictors[FAST_PATH],
                fast, Path(sampling["LOAN_SAMPLING_KEY_FILE"]), impute(rows[:1000], dataset.schema, medians),
            )
            print("principal reasons, recourse, files", flush=True)
            results["decisions"] = run_decisions(fast.url, explainer.url, frame, rows, rejected[:20], args.quick)
        finally:
            for server in started:
                server.stop()
    print("reviewer console", flush=True)  # after the services stopped: it needs none of them
    results["console"] = stages["console"]()
    return results


def alone_in(previous: dict[str, Any], stage: str, results: dict[str, Any]) -> dict[str, Any]:
    """The ``previous`` results with ``stage``'s replaced by those measured alone, dated."""
    return {**previous, stage: {**results[stage], "measured_alone": f"{results['date']}"}}


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds per wrk run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--explanations", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke run")
    parser.add_argument("--only", choices=["records", "console"],
                        help="run this stage alone: its results replace its own in --out's latest.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.concurrency, args.explanations = 1, [1, 8], 2
    tools = {"wrk": "apt-get install wrk", str(MLSERVER): "make bench creates .venv-mlserver"}
    needed = {"console": [], "records": ["wrk"]}.get(args.only, list(tools))
    for tool in needed:
        if shutil.which(tool) is None:
            print(f"error: {tool} not found ({tools[tool]})", file=sys.stderr)
            return 1
    results = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only and (args.out / "latest.json").exists():
        results = alone_in(json.loads((args.out / "latest.json").read_text()), args.only, results)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "latest.md").write_text(markdown(results))
    print("\n" + markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
