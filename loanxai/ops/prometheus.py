"""A real Prometheus on loopback, scraping the local services with the project's rules loaded.

:class:`LocalPrometheus` runs Debian's ``prometheus`` (``apt-get install prometheus``) with a
configuration written for it: one job per service (``classifier``, ``explainer``) scraping its
metrics port, the rules file of :mod:`loanxai.monitoring.rules`, fast scrapes and evaluations. ``make run``
and ``make replay`` start one; the monitoring tests too. :func:`query` and :func:`alerts` read
its HTTP API.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from loanxai.core.process import die_with_parent
from loanxai.errors import PrometheusError
from loanxai.ops.services import stop_process_group, wait_until_ready

__all__ = ["LocalPrometheus", "alerts", "query"]

@dataclass
class LocalPrometheus:
    """A Prometheus process on 127.0.0.1:``port`` keeping its data under ``folder``.

    ``targets`` maps a job name to the ``host:port`` of a metrics endpoint (path ``/metrics``),
    ``target_labels`` a job name to the labels its series get (``model_role``); ``rules`` is a
    rules file; scrapes and rule evaluations every ``interval``.
    """

    folder: Path
    port: int
    targets: dict[str, str]
    rules: Path
    interval: str = "2s"
    target_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        """The configuration file's content."""
        return {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": [str(self.rules)],
            "scrape_configs": [{"job_name": job, "metrics_path": "/metrics",
                                "static_configs": [{"targets": [target], "labels": self.target_labels.get(job, {})}]}
                               for job, target in self.targets.items()],
        }

    def start(self, timeout: float = 30.0) -> None:
        """Write the configuration, start Prometheus, and wait until it is ready and has scraped
        every target once: counters first seen after traffic arrived would hide that traffic
        from ``increase()``."""
        executable = shutil.which("prometheus")
        if executable is None:
            raise PrometheusError("prometheus is not installed: apt-get install prometheus (Debian's package)")
        # a fresh database: a previous run's series, and the alert states Prometheus restores from
        # them at start, would be judged with this run's traffic
        shutil.rmtree(self.folder / "data", ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        log = self.folder / "prometheus.log"
        with open(log, "ab") as handle:
            self.process = subprocess.Popen(
                [executable, f"--config.file={config}", f"--storage.tsdb.path={self.folder / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1d"],
                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=die_with_parent)
        tail = lambda: "\n".join(log.read_text(errors="replace").splitlines()[-20:])  # noqa: E731
        wait_until_ready(f"{self.url}/-/ready", self.process, "prometheus", tail, timeout)
        try:
            self.wait_for(f"count(up == 1) >= {len(self.targets)}", timeout)
        except PrometheusError:
            raise PrometheusError(f"prometheus could not scrape every target of {sorted(self.targets.values())} "
                                  f"within {timeout:.0f} s: see {self.url}/targets") from None

    def stop(self) -> None:
        """Stop the process and everything it started."""
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of ``expr`` now: a list of ``{"metric": labels, "value": [time, "value"]}``."""
        return query(self.url, expr)

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts pending or firing."""
        return alerts(self.url)

    def wait_for(self, expr: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Poll ``expr`` until it returns something; return it (PrometheusError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.5)
        raise PrometheusError(f"{expr} returned nothing for {timeout:.0f} s")


def query(url: str, expr: str) -> list[dict[str, Any]]:
    """The instant vector of ``expr`` from the Prometheus at ``url``."""
    answer = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    if answer.get("status") != "success":
        raise PrometheusError(f"{expr}: {answer.get('error', answer)}")
    return answer["data"]["result"]


def alerts(url: str) -> list[dict[str, Any]]:
    """The alerts pending or firing in the Prometheus at ``url``: ``{"labels", "annotations", "state", ...}``."""
    answer = requests.get(f"{url}/api/v1/alerts", timeout=10).json()
    return answer["data"]["alerts"]
