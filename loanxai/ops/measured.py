"""Figures the docs quote from ``make bench``, each tied to the results it comes from.

The run the performance page shows keeps its results beside the page
(:data:`~loanxai.ops.reference.PERFORMANCE_RESULTS`, in git); :data:`MEASURED` declares each
figure a page's prose quotes from them, as :mod:`loanxai.ops.quoted` does for the model's
manifest, and the same :func:`~loanxai.ops.quoted.disagreements` names a page that says
otherwise (a unit test runs it). Figures measured by hand, outside the bench, are dated on
their page and not declared: no file holds them.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from loanxai.config import CHAMPION
from loanxai.monitoring.series import MODEL_ROLE_LABEL
from loanxai.ops.quoted import Quoted
from loanxai.ops.reference import PERFORMANCE_RESULTS, REPLAY_RESULTS

__all__ = ["MEASURED", "REPLAYED", "read_replay", "read_results"]

Results = Mapping[str, Any]


def read_results() -> Results:
    """The results of the ``make bench`` run the performance page shows."""
    return json.loads(PERFORMANCE_RESULTS.read_text())


def read_replay() -> Results:
    """What the ``make replay`` run the replay page shows sent, and the alerts it fired."""
    return json.loads(REPLAY_RESULTS.read_text())


def _in_process_ms(results: Results, predictor: str, rows: int) -> float:
    """The in-process median of the predictor whose name starts with ``predictor``, for ``rows``."""
    return next(r["median_ms"] for r in results["in_process"] if r["predictor"].startswith(predictor) and r["rows"] == rows)


def _rate(results: Results, server: str, rows: int, connections: int) -> float:
    """``server``'s requests a second over REST, at ``rows`` a request and ``connections``."""
    return next(r["requests_per_s"] for r in results["rest"]
                if (r["server"], r["rows"], r["concurrency"]) == (server, rows, connections))


def _over_peer(results: Results, rows: int, connections: int) -> float:
    """The fast path's rows a second over the peer's, at ``rows`` a request and ``connections``."""
    return _rate(results, "ours, fast path", rows, connections) / _rate(results, "mlserver", rows, connections)


def _anchor(results: Results) -> tuple[Any, ...]:
    """The run's date, how many applications it explained, and the median anchor through the
    services: its classifier calls and rows."""
    e = results["explanations"]
    return results["date"], e["applications"], e["service"]["model_calls_median"], e["service"]["rows_median"]


def _p50s(results: Results, page: str) -> list[float]:
    """A console page's p50 on each database, lower first."""
    return sorted(db["pages"][page]["p50_ms"] for db in results["console"]["databases"].values())


def _console(results: Results) -> tuple[Any, ...]:
    """The review page's sentence: the date, each page's p50 on both databases, the slowest
    search but the rare group's, and the rare group's on SQLite."""
    sqlite = results["console"]["databases"]["sqlite"]["pages"]
    searches = [p for p in sqlite if p.startswith("search_") and "rare_group" not in p]
    slowest = max(p for page in searches for p in _p50s(results, page))
    return (results["date"], *_p50s(results, "queue"), *_p50s(results, "decision"), *_p50s(results, "review"), slowest,
            sqlite["search_rare_group"]["p50_ms"])


def _index_cost(results: Results) -> tuple[float, float]:
    """The least and the most the searches' indexes cost the record, in percent."""
    cost = results["console"]["index_cost"]
    ratios = [cost[kind][rows]["with"] / cost[kind][rows]["without"] for kind in ("sqlite", "postgresql")
              for rows in ("1", "100")]
    return 100 * (min(ratios) - 1), 100 * (max(ratios) - 1)


_PERFORMANCE = "results/performance.md"

#: every figure of ``make bench`` the docs quote, read from the results the performance page shows
MEASURED: tuple[Quoted[Results], ...] = (
    Quoted(_PERFORMANCE, "The fast path served {:.2f}x and {:.2f}x the peer's rows a second at c = 8 and 32.",
           lambda r: r["targets"]["fast_over_peer_100"]),
    Quoted(_PERFORMANCE, "took {:.2f} ms in process, against {:.2f} ms for the same rows without the rule. The "
           "record alone under load took {:.2f} ms of CPU. Were a request to cost only these, the two cores would serve "
           "{:.2f}x and {:.2f}x the peer",
           lambda r: (r["targets"]["decided_ms_100"], _in_process_ms(r, "fast path as served", 100),
                      r["targets"]["record_cpu_ms_100"], *r["targets"]["needed_over_peer_100"])),
    Quoted(_PERFORMANCE, "Without the tries the same bound would be {:.2f}x and {:.2f}x",
           lambda r: r["targets"]["needed_without_tries_over_peer_100"]),
    Quoted(_PERFORMANCE, "the bare post through a requests session took {:.2f} ms, the explainer's whole call through "
           "urllib3 {:.2f} ms", lambda r: (r["explanations"]["call"]["requests_ms"], r["explanations"]["call"]["service_ms"])),
    Quoted(_PERFORMANCE, "An unrecorded request of 100 named applications takes {:.2f} ms of the classifier's CPU",
           lambda r: (r["records"]["rows100_c8"]["off"]["classifier_cpu_ms_median"],)),
    Quoted(_PERFORMANCE, "rule's tries and the record: {:.2f}x the peer at c = 8",
           lambda r: (r["targets"]["scikit_learn_over_peer_100"][0],)),
    Quoted(_PERFORMANCE, "Recording to SQLite kept {:.1%} of the unrecorded rate; were the service to add only the "
           "record alone under its load, it would keep {:.1%}, and with the sync to disk free (the tmpfs twin) it kept "
           "{:.1%}. PostgreSQL kept {:.1%}, {:.1%} with the record alone and its server's CPU",
           lambda r: (r["targets"]["kept_c32"][0], r["targets"]["kept_c32_record_alone"][0],
                      r["targets"]["kept_c32_sync_free"], r["targets"]["kept_c32"][1],
                      r["targets"]["kept_c32_record_alone"][1])),
    Quoted(_PERFORMANCE, "its threads slept {:.1f} times per request unrecorded, {:.1f} recording to SQLite on disk, "
           "{:.1f} on the tmpfs, {:.1f} on PostgreSQL",
           lambda r: [r["records"]["c32"][name]["classifier_switches_median"]
                      for name in ("off", "sqlite", "sqlite, sync free (tmpfs)", "postgresql")]),
    Quoted(_PERFORMANCE, "Recording added +{:.2f} ms to the p50 on SQLite and +{:.2f} ms on PostgreSQL. SQLite's "
           "record alone on this disk takes {:.2f} ms", lambda r: (*r["targets"]["p50_added_c1_ms"],
                                                                  r["targets"]["record_alone_c1_ms"])),
    Quoted(_PERFORMANCE, "(with the sync free, +{:.2f} ms)", lambda r: (r["targets"]["p50_added_c1_sync_free_ms"][0],)),
    Quoted(_PERFORMANCE, "**PDF notices**: {:.0f} a second, 1,000 in {:.1f} s on two processes; WeasyPrint alone, in "
           "two processes with nothing but HTML turned into PDF bytes, {:.0f} a second: the batch is {:.0%} of the "
           "renderer's own rate",
           lambda r: (r["targets"]["pdf_per_s"], r["records"]["notices"]["pdf"]["seconds"],
                      r["targets"]["weasyprint_alone_per_s"],
                      r["targets"]["pdf_per_s"] / r["targets"]["weasyprint_alone_per_s"])),
    Quoted(_PERFORMANCE, "**Explanations** took {:.2f}x their in-process p50 through the service. The median anchor "
           "asked the classifier about {:,.0f} rows through the service against {:,.0f} in process, in {:.0f} calls. "
           "One of the explainer's calls ({:d} rows: the median rows over the median calls) took {:.2f} ms through the "
           "service against {:.2f} ms in process",
           lambda r: (r["targets"]["explanations_over_in_process"], r["explanations"]["service"]["rows_median"],
                      r["explanations"]["in_process"]["rows_median"], r["explanations"]["service"]["model_calls_median"],
                      r["explanations"]["call"]["rows"], r["explanations"]["call"]["service_ms"],
                      r["explanations"]["call"]["in_process_ms"])),
    Quoted(_PERFORMANCE, "wrapper) {:.2f} ms. Were each call to cost only that round trip more, the ratio would be "
           "{:.2f}x.", lambda r: (r["explanations"]["call"]["ping_ms"],
                                  r["targets"]["explanations_floor_over_in_process"])),
    Quoted(_PERFORMANCE, "the fast path served {:.2f}x, {:.2f}x and {:.2f}x MLServer's rate at c = 1, 8 and 32",
           lambda r: [_over_peer(r, 1, c) for c in (1, 8, 32)]),
    Quoted(_PERFORMANCE, "HTML from recorded reasons rendered {:,.0f} a second. With the reasons given again by the "
           "deciding model, in one batch, {:.0f} a second",
           lambda r: (r["records"]["notices"]["reasons_recorded"]["per_s"],
                      r["records"]["notices"]["reasons_given_again"]["per_s"])),
    Quoted(_PERFORMANCE, "(1,000 applications with reasons in one call took {:.1f} s, and a file decided with 4 reasons "
           "per rejection {:,.0f} rows a second against {:,.0f} without)",
           lambda r: (r["decisions"]["reasons"]["thousand_p50_s"], r["decisions"]["scorer"]["reasons_on"]["rows_per_s"],
                      r["decisions"]["scorer"]["reasons_off"]["rows_per_s"])),
    Quoted(_PERFORMANCE, "with every metric on, the classifier kept {:.1%} of its rate with them off",
           lambda r: (r["monitoring"]["on_over_off"],)),
    Quoted(_PERFORMANCE, "a search for a group of 0.05% of the decisions with no date range took {:.0f} ms on SQLite "
           "({:.1f} ms on PostgreSQL); with a date range of 30 days, {:.0f} ms.",
           lambda r: [r["console"]["databases"][db]["pages"][page]["p50_ms"] for db, page in (
               ("sqlite", "search_rare_group"), ("postgresql", "search_rare_group"),
               ("sqlite", "search_30_days_rare_group"))]),
    Quoted("quickstart.md", "where the median anchor in `make bench` ({}, {:d} applications) took {:.0f} calls and "
           "{:,.0f} rows.", _anchor),
    Quoted("how-to/secure-the-services.md", "the median anchor in `make bench` ({}, {:d} applications, through the "
           "service) asked {:.0f} calls and {:,.0f} rows;", _anchor),
    Quoted("how-to/secure-the-services.md", "An anchor asks the classifier about {:,.0f} rows ({:,.0f}, the median "
           "through the services in `make bench`",
           lambda r: (round(_anchor(r)[3], -2), _anchor(r)[3])),
    Quoted("concepts/architecture.md", "~{:.0f} calls, ~{:,.0f} rows (median)",
           lambda r: (_anchor(r)[2], round(_anchor(r)[3], -2))),
    Quoted("reference/configuration.md", "the median anchor asks about {:,.0f}, a hard one a few thousand",
           lambda r: (round(_anchor(r)[3], -2),)),
    Quoted("concepts/architecture.md", "services an anchor took {:.0f} classifier calls and {:,.0f} rows, {:.3f} s, and "
           "a recourse search {:g} calls and {:.3f} s (the medians of {:d} applications in `make bench` of {},",
           lambda r: (*_anchor(r)[2:], r["explanations"]["service"]["p50_s"],
                      r["decisions"]["recourse"]["model_calls_median"], r["decisions"]["recourse"]["p50_s"],
                      r["explanations"]["applications"], r["date"])),
    Quoted("how-to/records-and-notices.md", "a month of 10,000 rejections is about {:.0f} minutes on two cores ({:.0f} "
           "a second in `make bench`",
           lambda r: (10_000 / r["targets"]["pdf_per_s"] / 60, r["targets"]["pdf_per_s"])),
    Quoted("how-to/records-and-notices.md", "in `make bench` of {}, 1,000 notices took {:.1f} s in two processes on "
           "two cores, {:.0f} a second.",
           lambda r: (r["date"], r["records"]["notices"]["pdf"]["seconds"], r["targets"]["pdf_per_s"])),
    Quoted("how-to/review-decisions.md", "Measured {} on 2 cores, p50 of 21 pages one at a time: the queue {:.0f} to "
           "{:.0f} ms, an application's page {:.0f} to {:.0f} ms, a review {:.0f} to {:.0f} ms, every search but the "
           "rare group's two at most {:.0f} ms on both databases. A search for a group of 0.05% of the decisions with "
           "no date range takes {:.0f} ms on SQLite", _console),
    Quoted("how-to/review-decisions.md", "(30 days: {:.0f} ms), or keep the record in PostgreSQL, where a GIN index "
           "(migration 0006) answers it in {:.0f} ms. The indexes a search reads by cost the record {:.0f} to {:.0f}% "
           "per request on a tmpfs",
           lambda r: (r["console"]["databases"]["sqlite"]["pages"]["search_30_days_rare_group"]["p50_ms"],
                      r["console"]["databases"]["postgresql"]["pages"]["search_rare_group"]["p50_ms"],
                      *_index_cost(r))),
)


def _alert(results: Results, phase: str, name: str, about: str) -> float:
    """The value of the champion's alert ``name`` about ``about`` (an attribute or a feature; "" for none) in
    ``phase`` (a replay beside a challenger fires the same alerts for it too)."""
    return next(a["value"] for a in results["phases"][phase]["alerts"]
                if a["alertname"] == name and a["labels"].get(MODEL_ROLE_LABEL, CHAMPION) == CHAMPION
                and about in ("", a["labels"].get("attribute"), a["labels"].get("feature")))


def _trap(results: Results) -> tuple[Any, ...]:
    """The trap: its share and applications, its segment, and the segment's held-out figures."""
    phase = results["phases"]["trap"]
    trap = phase["trap"]
    return (trap["share"], phase["applications"], trap["category"], trap["approved"], trap["rows"], trap["recall"],
            trap["live_recall"])


_REPLAY = "results/replay.md"

#: every figure of ``make replay`` the docs quote, read from the results the replay page shows
REPLAYED: tuple[Quoted[Results], ...] = (
    Quoted(_REPLAY, "**Held-out traffic** ({:,d} applications, {:,d} approved at the cutoff) fired only "
           "`LoanAdverseImpactBelowScreen`, for ethnicity ({:.2f}) and gender ({:.2f})",
           lambda r: (r["phases"]["held-out"]["applications"], r["phases"]["held-out"]["approved"],
                      *[_alert(r, "held-out", "LoanAdverseImpactBelowScreen", a) for a in ("ethnicity", "gender")])),
    Quoted(_REPLAY, "**The trap**: {:.0%} of {:,d} applications from women whose occupation is {} ({:d} approved of "
           "{:d} held out, model recall {:.2f}; expected live recall {:.2f})", _trap),
    Quoted(_REPLAY, "It fired `LoanAdverseImpactBelowScreen` for gender ({:.2f}) and ethnicity ({:.2f}), "
           "`LoanFeatureDrift` on occupation (PSI {:.2f}), education ({:.2f}), workclass ({:.2f}) and hours-per-week "
           "({:.2f}), `LoanScoreDrift` ({:.2f}) and `LoanRecallDrop` (live recall {:.2f},",
           lambda r: (*[_alert(r, "trap", "LoanAdverseImpactBelowScreen", a) for a in ("gender", "ethnicity")],
                      *[_alert(r, "trap", "LoanFeatureDrift", f)
                        for f in ("occupation", "education", "workclass", "hours-per-week")],
                      _alert(r, "trap", "LoanScoreDrift", ""), _alert(r, "trap", "LoanRecallDrop", ""))),
)
