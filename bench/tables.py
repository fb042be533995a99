"""The bench's results as the Markdown the performance page shows (``docs/results/performance.md``).

:func:`markdown` renders each section a results file holds, in order, so a file written by an
earlier version renders too; the targets of issue 33 come first (:func:`bench.run.targets`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.console import console_markdown
from bench.peer import MLServerPeer
from bench.records import records_markdown


def markdown(results: dict[str, Any]) -> str:
    """The results as the Markdown tables the docs show: each section the results hold, in order."""
    m = results["machine"]
    model = f" (the model {results['model']})" if "model" in results else ""
    lines = [
        f"Measured {results['date']}{model} on {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}; "
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
        f"| the same message alone through a requests session (a bare post: none of the explainer's bookkeeping) | "
        f"{e['call']['requests_ms']:.2f} |",
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
        peer = rate.get((MLServerPeer.name, rows, connections))
        if server != MLServerPeer.name and peer:
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


def targets_markdown(results: dict[str, Any]) -> list[str]:
    """Issue 33's targets: this run's figure, met or not, and what bounds it in the same run."""
    t = results["targets"]
    sqlite, postgresql = t["kept_c32"]
    return [
        "| target (issue 33) | this run | met? | what bounds it, measured in this run |",
        "|---|---|---|---|",
        f"| 100 rows, fast path, rows/s over MLServer's at c = 8 / c = 32: at least 3x | "
        f"{t['fast_over_peer_100'][0]:.2f}x / {t['fast_over_peer_100'][1]:.2f}x | "
        f"{_met(min(t['fast_over_peer_100']) >= 3)} | the work the decisions need, each part measured alone: the "
        f"prediction with the elderly rule {t['decided_ms_100']:.2f} ms (in process) and the record alone under load "
        f"{t['record_cpu_ms_100']:.2f} ms of CPU. Were a request to cost only these, the cores would give "
        f"{t['needed_over_peer_100'][0]:.2f}x / {t['needed_over_peer_100'][1]:.2f}x (no HTTP, JSON or load "
        "generator) |",
        f"| 100 rows, scikit-learn path: at least MLServer's | {t['scikit_learn_over_peer_100'][0]:.2f}x / "
        f"{t['scikit_learn_over_peer_100'][1]:.2f}x | {_met(min(t['scikit_learn_over_peer_100']) >= 1)} | "
        f"one request at a time (c = 1) {t['scikit_learn_over_peer_100_c1']:.2f}x: of its p50 of "
        f"{t['scikit_learn_p50_100_c1_ms']:.2f} ms, {t['predict_proba_100_ms']:.2f} ms is the `predict_proba` call the peer "
        "makes too (in process, `n_jobs=1`) |",
        f"| 1 row, c = 32, recording over off: at least 80% (SQLite / PostgreSQL) | {sqlite:.1%} / {postgresql:.1%} | "
        f"{_met(min(sqlite, postgresql) >= 0.8)} | the record alone added to an unrecorded request's CPU: "
        f"{t['kept_c32_record_alone'][0]:.1%} / {t['kept_c32_record_alone'][1]:.1%} (PostgreSQL's server on the same "
        f"cores); SQLite with the sync free (tmpfs) kept {t['kept_c32_sync_free']:.1%} |",
        f"| 1 row, c = 1, p50 added by recording: at most 0.3 ms (SQLite / PostgreSQL) | "
        f"+{t['p50_added_c1_ms'][0]:.2f} / +{t['p50_added_c1_ms'][1]:.2f} ms | "
        f"{_met(max(t['p50_added_c1_ms']) <= 0.3)} | SQLite's record alone on disk: {t['record_alone_c1_ms']:.2f} ms; "
        f"with the sync free: +{t['p50_added_c1_sync_free_ms'][0]:.2f} / +{t['p50_added_c1_sync_free_ms'][1]:.2f} ms |",
        f"| PDF notices, a batch of 1,000: at least 50 a second | {t['pdf_per_s']:.0f} | {_met(t['pdf_per_s'] >= 50)} "
        f"| WeasyPrint alone, in as many processes, nothing else: {t['weasyprint_alone_per_s']:.0f} a second |",
        f"| explanations, service p50 over in process: at most 1.5x | {t['explanations_over_in_process']:.2f}x | "
        f"{_met(t['explanations_over_in_process'] <= 1.5)} | each call costing only the bare round trip more than in "
        f"process: {t['explanations_floor_over_in_process']:.2f}x |",
        "",
    ]


def _met(met: bool) -> str:
    return "yes" if met else "no"


#: each section of the results (by its key) and how it is shown, in the order shown
SECTIONS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "targets": targets_markdown,
    "in_process": in_process_markdown,
    "rest": rest_markdown,
    "explanations": explanations_markdown,
    "decisions": lambda results: decisions_markdown(results["decisions"]),
    "monitoring": lambda results: monitoring_markdown(results["monitoring"]),
    "records": lambda results: records_markdown(results["records"]),
    "console": lambda results: console_markdown(results["console"]),
    "cold_start_s": cold_start_markdown,
}
