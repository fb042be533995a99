"""Seldon custom metrics counted in each process, aggregated when Prometheus scrapes.

The seldon-core wrapper keeps custom metrics in a multiprocessing manager behind one lock that
every worker takes twice per request: about 1.2 ms of IPC per request, and a worker killed
while it holds the lock (an OOM kill) leaves every other worker, and the master, waiting for
good. :class:`ProcessMetrics` takes the wrapper's place (same ``update`` contract: the entries
of ``meta.metrics``, ``{"type", "key", "value", "tags"}``): each process writes its own values
to a memory-mapped file (prometheus_client's multiprocess mode, no lock shared between
processes), and the metrics server merges the files when scraped. Counters and timers are
summed over processes (a dead worker's counts stay in the sums: totals never go back);
gauges are per process, labelled ``worker_id``. Every series also carries Seldon's deployment
labels (``deployment_name``, ``model_name``, ...), as the wrapper's do.

The folder of the files is ``prometheus_multiproc_dir``; it must be set before
prometheus_client is imported (:mod:`loanxai.serving.server.supervisor` does it first).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from seldon_core.metrics import DEFAULT_LABELS, FEEDBACK_KEY, FEEDBACK_METRIC_METHOD_TAG, FEEDBACK_REWARD_KEY

from loanxai.monitoring.counters import TIMER_BUCKETS

__all__ = ["ProcessMetrics"]


class ProcessMetrics:
    """Stands in for ``seldon_core.metrics.SeldonMetrics``: ``update`` and ``update_reward`` in the
    workers, ``generate_metrics`` in the metrics server. ``extra`` collectors (callables
    returning metric families) are merged into what is scraped."""

    def __init__(self, directory: str, extra: Iterable[Callable[[], Iterable[Any]]] = ()) -> None:
        self.directory = directory
        self.extra = list(extra)
        self._metrics: dict[tuple[str, str, tuple[str, ...]], Any] = {}

    def update(self, custom_metrics: list[dict[str, Any]], method: str) -> None:
        """Record the entries of one response's ``meta.metrics`` (a missing value is 0: protobuf
        leaves zeros out of a gRPC answer)."""
        for entry in custom_metrics:
            kind = entry.get("type", "COUNTER")
            tags = {**entry.get("tags", {}), "method": method}
            names = tuple(sorted(tags))
            metric = self._metric(kind, entry["key"], names)
            child = metric.labels(*(str(tags[name]) for name in names))
            value = float(entry.get("value", 0))
            if kind == "COUNTER":
                child.inc(value)
            elif kind == "GAUGE":
                child.set(value)
            else:  # TIMER, in milliseconds
                child.observe(value / 1000)

    def update_reward(self, reward: float) -> None:
        """What the wrapper counts for each feedback (``/api/v1.0/feedback``) with a reward."""
        if reward:
            self.update([{"type": "COUNTER", "key": FEEDBACK_KEY, "value": 1},
                         {"type": "COUNTER", "key": FEEDBACK_REWARD_KEY, "value": reward}], FEEDBACK_METRIC_METHOD_TAG)

    def clear(self) -> None:
        """Nothing to clear: each process's values live in its own file."""

    def process_exited(self, pid: int) -> None:
        """Forget a dead worker's gauges (its counters stay in the sums)."""
        mark_process_dead(pid, self.directory)

    def generate_metrics(self) -> tuple[str, str]:
        """The Prometheus text of every process's metrics, with Seldon's deployment labels."""
        registry = CollectorRegistry()
        registry.register(_Labelled([MultiProcessCollector(None, path=self.directory).collect, *self.extra]))
        return generate_latest(registry).decode("utf-8"), CONTENT_TYPE_LATEST

    def _metric(self, kind: str, key: str, names: tuple[str, ...]) -> Any:
        metric = self._metrics.get((kind, key, names))
        if metric is None:
            if kind == "COUNTER":
                metric = Counter(key, key, names, registry=None)
            elif kind == "GAUGE":
                metric = Gauge(key, key, names, registry=None, multiprocess_mode="liveall")
            elif kind == "TIMER":
                metric = Histogram(key, key, names, registry=None, buckets=TIMER_BUCKETS)
            else:
                raise ValueError(f"unknown metric type {kind!r} for {key!r}: COUNTER, GAUGE or TIMER")
            self._metrics[(kind, key, names)] = metric
        return metric


class _Labelled:
    """A collector adding Seldon's deployment labels to every sample (``pid`` becomes ``worker_id``)."""

    def __init__(self, sources: list[Callable[[], Iterable[Any]]]) -> None:
        self.sources = sources

    def collect(self) -> Iterable[Any]:
        for source in self.sources:
            for family in source():
                samples = []
                for sample in family.samples:
                    labels = dict(sample.labels)
                    if "pid" in labels:
                        labels["worker_id"] = labels.pop("pid")
                    samples.append(sample._replace(labels={**labels, **DEFAULT_LABELS}))
                family.samples = samples
                yield family
