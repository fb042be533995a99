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
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.console import run_console  # noqa: E402
from bench.decisions import run_decisions  # noqa: E402
from bench.explanations import explanation_section, served_decisions  # noqa: E402
from bench.measure import machine, median_ms, wrk  # noqa: E402
from bench.peer import MLSERVER, MLServerPeer, check_same_answers, seldon_body, under_elderly_age, v2_body  # noqa: E402
from bench.records import SYNC_FREE, run_records  # noqa: E402
from bench.tables import markdown  # noqa: E402
from loanxai.artifacts import (  # noqa: E402
    CLASSIFIER_DIR,
    COMPILED_FILE,
    EXPLAINER_DIR,
    MODEL_FILE,
    PREPROCESSOR_FILE,
    RESULTS_DIR,
)
from loanxai.core.elderly import elderly_rule  # noqa: E402
from loanxai.core.manifest import load_pickle, load_verified_manifest  # noqa: E402
from loanxai.core.pipeline import CLASSIFIER_STEP, PREPROCESSOR_STEP, impute  # noqa: E402
from loanxai.data.dataset import load_trained_dataset  # noqa: E402
from loanxai.data.description import LABEL  # noqa: E402
from loanxai.ops.services import (  # noqa: E402
    classifier_service,
    explainer_service,
    free_port,
)
from loanxai.ops.tokens import make_sampling_key  # noqa: E402
from loanxai.serving.fastpath import TREES_FROM_ROWS, FastClassifier  # noqa: E402
from loanxai.training.train import ensure_trained  # noqa: E402

#: our paths for the targets over the peer, and the peer, as the REST results name them
FAST, SCIKIT_LEARN, PEER = "ours, fast path", "ours, scikit-learn", MLServerPeer.name
#: the sections the targets are read from: a run of one stage alone (``--only``) has none of its own
TARGETS_FROM = {"rest", "records", "explanations"}
#: the pipeline as the peer and the scikit-learn path serve it, in process
ONE_JOB = "scikit-learn pipeline (n_jobs=1)"
#: the in-process predictor the services serve on the fast path
FAST_PATH = f"fast path as served (GTIL below {TREES_FROM_ROWS} rows, the trees from {TREES_FROM_ROWS})"
#: the prediction a decision needs: the fast path with the elderly rule's candidate ages, as the classifier decides
DECIDED = "fast path with the elderly rule, as the classifier decides"


def load_predictors() -> tuple[dict[str, Callable[[np.ndarray], np.ndarray]], Pipeline]:
    """The predictors measured in process (each ``rows -> probabilities``), and the pipeline as trained."""
    preprocessor = load_pickle(CLASSIFIER_DIR, PREPROCESSOR_FILE)
    as_trained = Pipeline([(PREPROCESSOR_STEP, preprocessor), (CLASSIFIER_STEP, load_pickle(CLASSIFIER_DIR, MODEL_FILE))])
    single = load_pickle(CLASSIFIER_DIR, MODEL_FILE)  # a second copy, served as the services do
    single.n_jobs = 1
    one_job = Pipeline([("preprocessor", preprocessor), ("classifier", single)])
    fast = FastClassifier(preprocessor, single, CLASSIFIER_DIR / COMPILED_FILE)
    rule = elderly_rule(load_verified_manifest(CLASSIFIER_DIR).schema, preprocessor, single)
    return {
        "scikit-learn pipeline (as trained, n_jobs=-1)": as_trained.predict_proba,
        ONE_JOB: one_job.predict_proba,
        "fast path, treelite GTIL": fast.gtil_proba,
        "fast path, the fitted trees": fast.trees_proba,
        FAST_PATH: fast.predict_proba,
        DECIDED: fast.predict_proba if rule is None else (lambda X: rule.served(X, fast.predict_proba)[1]),
    }, one_job


def in_process(predictors: dict[str, Callable], rows: np.ndarray, budget_s: float) -> list[dict[str, Any]]:
    """Median milliseconds of each predictor for 1 and 100 rows, each measured for about ``budget_s``."""
    return [
        {"predictor": name, "rows": n, "median_ms": median_ms(lambda: predict(rows[:n]), budget_s)}
        for name, predict in predictors.items() for n in (1, 100)
    ]


def rest_section(servers: dict[str, Any], rows: np.ndarray, concurrency: list[int], duration_s: float) -> list[dict[str, Any]]:
    """Load each server with wrk at each concurrency, 1-row and 100-row requests."""
    results = []
    for batch in (1, 100):
        for name, server in servers.items():
            body = v2_body(rows[:batch]) if name == PEER else seldon_body(rows[:batch])
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
        "model": load_verified_manifest(CLASSIFIER_DIR).version,
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
        servers = {FAST: fast, SCIKIT_LEARN: reference, PEER: peer}
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


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """Issue 33's targets as this run measured them, and what bounds each, from the same run.

    100 rows: the rate the machine's cores would give were a request to cost nothing but the
    work its decisions need, each measured alone (the prediction with the elderly rule, in
    process, and the record alone under the service's load, SQLite), over the peer's: no
    HTTP, no JSON, no load generator. One row: the share of the unrecorded
    rate left were the service to add to an unrecorded request's CPU only the record alone
    under its load (``DecisionStore.record`` in as many processes and threads at once)."""
    r, e = results["records"], results["explanations"]
    rest = {(x["server"], x["rows"], x["concurrency"]): x for x in results["rest"]}

    def over_peer(server: str, rows: int, connections: int) -> float:
        """``server``'s rate over the peer's, at ``rows`` a request and ``connections``."""
        return rest[server, rows, connections]["requests_per_s"] / rest[PEER, rows, connections]["requests_per_s"]

    off_1 = r["c32"]["off"]["classifier_cpu_ms_median"]
    in_process_100 = {x["predictor"]: x["median_ms"] for x in results["in_process"] if x["rows"] == 100}
    decided_100 = in_process_100[DECIDED]

    def bound(prediction_ms: float) -> list[float]:
        """The rate over the peer's at c = 8 and 32 were a request to cost only ``prediction_ms``
        and the record alone, on every core."""
        needed = prediction_ms + r["record_cpu"]["ms"]["100"]["sqlite"]
        return [results["machine"]["cores"] * 1000 / needed / rest[PEER, 100, c]["requests_per_s"] for c in (8, 32)]

    def kept(kind: str) -> float:
        """The share of the unrecorded rate left were the service to add only the record alone
        (and, for PostgreSQL, its server's CPU on the same cores)."""
        server = r["c32"][kind]["database_cpu_ms_median"] if kind == "postgresql" else 0
        return off_1 / (off_1 + r["record_cpu"]["ms"]["1"][kind] + server)

    pdf = r["notices"]["pdf"]
    return {
        "fast_over_peer_100": [over_peer(FAST, 100, c) for c in (8, 32)],
        "decided_ms_100": decided_100,
        "record_cpu_ms_100": r["record_cpu"]["ms"]["100"]["sqlite"],
        "needed_over_peer_100": bound(decided_100),
        # the same without the elderly rule's tries: what a cheaper way to try them could reach at most
        "needed_without_tries_over_peer_100": bound(in_process_100[FAST_PATH]),
        "scikit_learn_over_peer_100": [over_peer(SCIKIT_LEARN, 100, c) for c in (8, 32)],
        "scikit_learn_over_peer_100_c1": over_peer(SCIKIT_LEARN, 100, 1),
        "scikit_learn_p50_100_c1_ms": rest[SCIKIT_LEARN, 100, 1]["p50_ms"],
        "predict_proba_100_ms": next(x["median_ms"] for x in results["in_process"]
                                     if x["predictor"] == ONE_JOB and x["rows"] == 100),
        "kept_c32": [r["sqlite_over_off"], r["postgresql_over_off"]],
        "kept_c32_record_alone": [kept("sqlite"), kept("postgresql")],
        "kept_c32_sync_free": r[f"{SYNC_FREE['sqlite']}_over_off"],
        "p50_added_c1_ms": [r["sqlite_p50_added_ms"], r["postgresql_p50_added_ms"]],
        "p50_added_c1_sync_free_ms": [r[f"{SYNC_FREE[k]}_p50_added_ms"] for k in ("sqlite", "postgresql")],
        "record_alone_c1_ms": r["floor_ms"]["1"]["sqlite"],
        "pdf_per_s": pdf["per_s"],
        "weasyprint_alone_per_s": pdf["weasyprint_alone_per_s"],
        "explanations_over_in_process": e["service_over_in_process_p50"],
        "explanations_floor_over_in_process": e["floor_over_in_process_p50"],
    }


def one_run(results: dict[str, Any]) -> bool:
    """Whether the sections the targets read were measured side by side in one run (none alone)."""
    return TARGETS_FROM <= results.keys() and not any(
        isinstance(results[key], dict) and "measured_alone" in results[key] for key in TARGETS_FROM)


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
        args.duration, args.explanations = 1, 2
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
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")  # kept whatever follows
    if one_run(results) and {1, 8, 32} <= set(args.concurrency):
        results["targets"] = targets(results)
    else:  # never targets read from sections measured apart
        results.pop("targets", None)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "latest.md").write_text(markdown(results))
    print("\n" + markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
