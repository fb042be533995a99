"""What the services count for Prometheus, against the references training recorded
(:mod:`loanxai.monitoring.references`); every series is declared in :mod:`loanxai.monitoring.series`.

The classifier's :class:`DecisionMonitor` counts every decided application (by each declared
protected attribute's group as the request gives it, by score bin and by input bin) and every outcome
arriving through the feedback endpoint, and exports the references as gauges.
:class:`ExplanationMonitor` (the explainer) and :class:`HttpMonitor` (both services' endpoints)
count the rest. Every label value comes from the artifacts or from a fixed list: a request can
never make a new series. The series are Seldon custom metrics (``method`` label, Seldon's
deployment labels, timers in Seldon's buckets) in the process's metrics files
(:mod:`loanxai.serving.server.metrics`), not entries of each response's ``meta.metrics``: about
25 per decision would cost more than the decision. A request thread only queues what it saw;
a thread of each process counts the queue every :data:`FLUSH_SECONDS`, whole batches at once
(numpy), and when the process exits: monitoring costs the classifier under 10% of its
throughput (docs: Results). A scrape sees a decision at most that long after it was answered;
a process killed outright loses what it had not counted yet.
"""
from __future__ import annotations

import atexit
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from seldon_core.metrics import BINS

from loanxai.core.codecs import EXPLAIN_KINDS, Outcomes
from loanxai.core.manifest import ClassifierManifest
from loanxai.core.roles import EXPLAIN_ROLES
from loanxai.monitoring import series
from loanxai.monitoring.references import NOT_GIVEN, OUTCOMES, SCORE_BINS, bin_indices, outcome_rates, score_indices
from loanxai.monitoring.series import Series

__all__ = ["CALLER_OUTCOMES", "CLOSED_WHY", "EXPLANATION_OUTCOMES", "FLUSH_SECONDS", "TIMER_BUCKETS", "ConnectionMonitor",
           "DecisionMonitor", "ExplanationMonitor", "HttpMonitor", "flush_all"]

#: the timers' buckets in seconds: Seldon's (1 ms to 30 s, log-spaced)
TIMER_BUCKETS = tuple(BINS[1:])

#: what an explanation request came to: ok, or the answer's status
EXPLANATION_OUTCOMES = ("ok", "4xx", "502", "503", "504", "5xx")
#: what an authenticated caller's explanation request came to
CALLER_OUTCOMES = ("ok", "429", "4xx", "5xx")
#: seconds between two countings of the queued observations, in each process
FLUSH_SECONDS = 1.0



def _counter(declared: Series, *extra: str) -> Counter:
    """The counter ``declared`` describes, with its labels and ``extra`` ones (``method``)."""
    return Counter(declared.metric_name, declared.meaning, [*declared.labels, *extra], registry=None)


def _histogram(declared: Series, *extra: str) -> Histogram:
    return Histogram(declared.metric_name, declared.meaning, [*declared.labels, *extra], registry=None,
                     buckets=TIMER_BUCKETS)


def _gauge(declared: Series, **value: float) -> GaugeMetricFamily:
    """The gauge family ``declared`` describes (with ``value=`` for one without labels)."""
    return GaugeMetricFamily(declared.name, declared.meaning, labels=list(declared.labels) if declared.labels else None,
                             **value)


def _children(metric: Any, label_values: Iterable[tuple[str, ...]]) -> list[Any]:
    """One child per label set, created now: every series exists (at 0) before anything is counted."""
    return [metric.labels(*values) for values in label_values]


def _add(children: Sequence[Any], index: np.ndarray) -> None:
    """Count each index once into its child."""
    if len(index) == 1:
        children[int(index[0])].inc()
        return
    for i, count in enumerate(np.bincount(index, minlength=len(children))):
        if count:
            children[i].inc(int(count))


class _Queue:
    """Observations queued by request threads, counted in batches by :func:`flush_all`."""

    def __init__(self, count: Callable[[list[Any]], None]) -> None:
        self.count = count
        self.items: deque[Any] = deque()
        self.lock = threading.Lock()
        _QUEUES.append(self)

    def put(self, item: Any) -> None:
        if _flusher["pid"] != os.getpid():
            _start_flusher()
        self.items.append(item)

    def flush(self) -> None:
        with self.lock:
            batch = [self.items.popleft() for _ in range(len(self.items))]
            if batch:
                self.count(batch)


_QUEUES: list[_Queue] = []
_flusher: dict[str, Any] = {"pid": None, "lock": threading.Lock()}


def flush_all() -> None:
    """Count everything queued in this process."""
    for queue in _QUEUES:
        queue.flush()


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        flush_all()


def _start_flusher() -> None:
    """The flush thread of this process (a forked worker starts its own), and a last flush at exit."""
    with _flusher["lock"]:
        if _flusher["pid"] != os.getpid():
            _flusher["pid"] = os.getpid()
            threading.Thread(target=_flush_forever, name="metrics-flush", daemon=True).start()
            atexit.register(flush_all)


class DecisionMonitor:
    """The classifier's decision and outcome counters, and its reference gauges, from its manifest."""

    def __init__(self, manifest: ClassifierManifest) -> None:
        self.manifest = manifest
        self.schema = manifest.schema
        monitoring = manifest.monitoring
        edges = [monitoring["features"][name]["edges"] for name in self.schema.feature_names]
        self.features = [(j, None if e is None else np.asarray(e)) for j, e in enumerate(edges)]
        method = ("predict",)
        self.requests, self.applications, self.approvals, self.rejections = (
            _counter(total, "method").labels(*method)
            for total in (series.REQUESTS, series.APPLICATIONS, series.APPROVALS, series.REJECTIONS))
        self.unrecorded_applications = _counter(series.UNRECORDED, "method").labels(*method)
        self.in_doubt_applications = _counter(series.IN_DOUBT, "method").labels(*method)
        self.sampled_rows = _counter(series.SAMPLED, "method").labels(*method)
        # decisions: one child per (attribute, group, decision), groups in order then "not given"
        decisions = _counter(series.DECISIONS, "method")
        declared = self.schema.groups
        self.group_codes = {a: {g: i for i, g in enumerate(groups)} for a, groups in declared.items()}
        self.decisions = {a: _children(decisions, ((a, g, d, *method) for g in (*groups, NOT_GIVEN)
                                                   for d in ("rejected", "approved")))
                          for a, groups in declared.items()}
        self.scores = _children(_counter(series.SCORE_BINS_SERIES, "method"), ((b, *method) for b in SCORE_BINS))
        feature = _counter(series.FEATURE_BINS, "method")
        self.feature_children = [_children(feature, ((name, b, *method) for b in monitoring["features"][name]["bins"]))
                                 for name in self.schema.feature_names]
        # outcomes: per kind, one child per (attribute, group), "all" first
        cells = [("all", "all"), *((a, g) for a, groups in declared.items() for g in (*groups, NOT_GIVEN))]
        self.cell_index = {cell: i for i, cell in enumerate(cells)}
        self.outcomes = {kind: _children(_counter(declared, "method"), ((a, g, "feedback") for a, g in cells))
                         for kind, declared in zip(OUTCOMES, series.OUTCOME_COUNTS)}
        self.queue = _Queue(self._count)

    def record(self, X: np.ndarray, approval: np.ndarray, approved: np.ndarray,
               groups: Mapping[str, Sequence[str | None]]) -> None:
        """Queue decided applications: ``X`` encoded as the applicants gave them, shape (n,
        n_features); ``approval`` their served approval probabilities and ``approved`` the
        decisions at the cutoff, shape (n,) each; ``groups`` each declared attribute's n groups
        (None: not given)."""
        self.queue.put((X, approval, approved, groups))

    def unrecorded(self, n: int, in_doubt: bool = False) -> None:
        """Count ``n`` applications answered 503 because the record failed (``in_doubt``: because
        it could not tell whether it holds them); at once: they are rare."""
        (self.in_doubt_applications if in_doubt else self.unrecorded_applications).inc(n)

    def sampled(self, n: int) -> None:
        """Count ``n`` rows an explainer made up, answered unrecorded."""
        self.sampled_rows.inc(n)

    def record_outcomes(self, outcomes: Outcomes) -> None:
        """Queue the outcomes of one feedback, counted overall and by group."""
        self.queue.put(outcomes)

    def _count(self, batch: list[Any]) -> None:
        decisions = [item for item in batch if isinstance(item, tuple)]
        if decisions:
            self._count_decisions(decisions)
        for outcomes in (item for item in batch if isinstance(item, Outcomes)):
            self._count_outcomes(outcomes)

    def _count_decisions(self, decisions: list[tuple[np.ndarray, np.ndarray, np.ndarray,
                                                     Mapping[str, Sequence[str | None]]]]) -> None:
        X = np.concatenate([x for x, _, _, _ in decisions])
        approval = np.concatenate([a for _, a, _, _ in decisions])
        approved = np.concatenate([d for _, _, d, _ in decisions]).astype(np.intp)
        n, n_approved = len(X), int(np.count_nonzero(approved))
        self.requests.inc(len(decisions))
        self.applications.inc(n)
        if n_approved:
            self.approvals.inc(n_approved)
        if n - n_approved:
            self.rejections.inc(n - n_approved)
        _add(self.scores, score_indices(approval))
        for (j, edges), children in zip(self.features, self.feature_children):
            _add(children, bin_indices(X[:, j], edges))
        for attribute, children in self.decisions.items():
            codes, not_given = self.group_codes[attribute], len(self.group_codes[attribute])
            group = np.fromiter((codes.get(g, not_given) for *_, groups in decisions for g in groups[attribute]),
                                np.intp, n)
            _add(children, group * 2 + approved)

    def _count_outcomes(self, outcomes: Outcomes) -> None:
        kinds = np.where(outcomes.predicted, np.where(outcomes.truth, 0, 1), np.where(outcomes.truth, 3, 2))
        for k, kind in enumerate(OUTCOMES):
            rows = np.flatnonzero(kinds == k)
            if not len(rows):
                continue
            children = self.outcomes[kind]
            children[0].inc(len(rows))
            for attribute, groups in outcomes.groups.items():
                cells = [self.cell_index[(attribute, groups[i] if groups[i] is not None else NOT_GIVEN)] for i in rows]
                _add(children, np.asarray(cells, dtype=np.intp))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        """The references, as gauges: for the metrics server (called on every scrape)."""
        monitoring, gate = self.manifest.monitoring, self.manifest.gate
        share = _gauge(series.FEATURE_REFERENCE)
        for name, record in monitoring["features"].items():
            for label, value in zip(record["bins"], record["reference"]):
                share.add_metric([name, label], value)
        yield share
        score = _gauge(series.SCORE_REFERENCE)
        for label, value in zip(monitoring["score"]["bins"], monitoring["score"]["reference"]):
            score.add_metric([label], value)
        yield score
        rates = {declared.name.removeprefix("loan_held_out_"): _gauge(declared) for declared in series.HELD_OUT_RATES}
        rows = _gauge(series.HELD_OUT_ROWS)
        for attribute, groups in monitoring["held_out"].items():
            for group, counts in groups.items():
                for name, value in outcome_rates(counts).items():
                    if not np.isnan(value):
                        rates[name].add_metric([attribute, group], value)
                rows.add_metric([attribute, group], sum(counts.values()))
        yield from rates.values()
        yield rows
        thresholds = gate.thresholds
        yield _gauge(series.GATE_MIN_ADVERSE_IMPACT_RATIO, value=thresholds["min_adverse_impact_ratio"] or 0.0)
        screened = _gauge(series.GATE_SCREENED)
        for attribute in self.manifest.screened:
            screened.add_metric([attribute], 1.0)
        yield screened
        yield _gauge(series.CUTOFF, value=self.manifest.cutoff)
        yield _gauge(series.GATE_MIN_GROUP_ROWS, value=thresholds["min_group_rows"])
        info = _gauge(series.MODEL_INFO)
        info.add_metric([self.manifest.version, self.manifest.dataset.name, self.manifest.candidate, gate.status], 1)
        yield info


class ExplanationMonitor:
    """The explainer's counters: explanations by kind and outcome, their durations, model calls,
    and by caller role with ``LOAN_AUTH=on``."""

    def __init__(self, budget_seconds: float, p95_budget_seconds: float) -> None:
        self.budget_seconds, self.p95_budget_seconds = budget_seconds, p95_budget_seconds
        kinds = (*EXPLAIN_KINDS, "invalid")
        explanations = _counter(series.EXPLANATIONS, "method")
        self.explanations = {(k, o): explanations.labels(k, o, "predict") for k in kinds for o in EXPLANATION_OUTCOMES}
        seconds = _histogram(series.EXPLANATION_SECONDS, "method")
        self.seconds = {k: seconds.labels(k, "predict") for k in kinds}
        calls = _counter(series.EXPLANATION_MODEL_CALLS, "method")
        self.calls = {k: calls.labels(k, "predict") for k in kinds}
        by_role = _counter(series.CALLER_EXPLANATIONS, "method")
        self.by_role = {(r, o): by_role.labels(r, o, "predict") for r in sorted(EXPLAIN_ROLES) for o in CALLER_OUTCOMES}

    def record(self, kind: str, status: int, seconds: float, model_calls: int, role: str | None = None) -> None:
        """One explanation request: its kind (``invalid`` if unreadable), answer status, time,
        classifier calls, and the caller's role (None: no authenticated caller)."""
        outcome = ("ok" if status < 400 else "4xx" if status < 500
                   else str(status) if str(status) in EXPLANATION_OUTCOMES else "5xx")
        self.explanations[kind, outcome].inc()
        self.seconds[kind].observe(seconds)
        if model_calls:
            self.calls[kind].inc(model_calls)
        if role in EXPLAIN_ROLES:
            self.by_role[role, "ok" if status < 400 else "429" if status == 429 else outcome[0] + "xx"].inc()

    def collect(self, busiest_share: float | None = None) -> Iterable[GaugeMetricFamily]:
        """The explanation budgets and, with callers' budgets, the busiest caller's share, as gauges."""
        yield _gauge(series.EXPLAIN_BUDGET, value=self.budget_seconds)
        yield _gauge(series.EXPLAIN_P95_BUDGET, value=self.p95_budget_seconds)
        if busiest_share is not None:
            yield _gauge(series.CALLER_BUDGET_SHARE, value=busiest_share)


#: why a worker closed a connection before its request had come whole
CLOSED_WHY = ("request_timeout", "room")


class ConnectionMonitor:
    """Connections a REST worker's event loop closed before their request had come whole (rare:
    counted at once, no queue)."""

    def __init__(self) -> None:
        closed = _counter(series.CONNECTIONS_CLOSED)
        self.closed = {why: closed.labels(why) for why in CLOSED_WHY}


class HttpMonitor:
    """Requests answered by a service, by endpoint and status code, and their durations."""

    def __init__(self, endpoints: Iterable[str]) -> None:
        self.endpoints = frozenset(endpoints)
        self.requests = _counter(series.HTTP_REQUESTS)
        seconds = _histogram(series.HTTP_SECONDS)
        self.seconds = {e: seconds.labels(e) for e in (*self.endpoints, "other")}
        self.queue = _Queue(self._count)

    def record(self, path: str, code: int, started: float) -> None:
        """Queue one answered request: its path (an unknown one counts as ``other``), status, and
        ``time.perf_counter()`` when it began."""
        self.queue.put((path if path in self.endpoints else "other", code, time.perf_counter() - started))

    def _count(self, batch: list[tuple[str, int, float]]) -> None:
        for endpoint, code, seconds in batch:
            self.requests.labels(endpoint, str(code)).inc()
            self.seconds[endpoint].observe(seconds)
