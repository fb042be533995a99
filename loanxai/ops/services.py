"""Start, wait for and stop the two Seldon microservices, and the reviewer console, as local processes.

Each microservice runs ``loanxai-microservice`` (:mod:`loanxai.serving.server.supervisor`) in its
own folder, the console ``loanxai console`` in the checkout; each in its own process
group, its record migrated before it starts (``loanxai records upgrade``, as the deployments'
init containers do), and gets SIGTERM if the process that started it dies, however it dies. Locally there is
no load balancer to drain from: services stop after 0.2 s of draining; they listen on 127.0.0.1 only.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from loanxai.artifacts import CLASSIFIER_DIR, MODELS_DIR, REPO_ROOT
from loanxai.clients.http import PREDICTIONS_PATH
from loanxai.config import CHALLENGER, ServiceSettings
from loanxai.core.process import die_with_parent
from loanxai.records.store import absolute_url, open_store

__all__ = ["ConsoleService", "Service", "challenger_service", "classifier_service", "console_service", "explainer_service",
           "free_port", "stop_process_group", "wait_until_ready"]


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    """One microservice: its class, folder, ports and extra environment."""

    name: str
    class_name: str
    folder: Path
    http_port: int
    metrics_port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    #: the gRPC port (None: the service's own setting, ``PREDICTIVE_UNIT_GRPC_SERVICE_PORT``);
    #: served only when ``GRPC_WORKERS`` > 0
    grpc_port: int | None = None

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def predictions_url(self) -> str:
        """The predictions endpoint."""
        return self.url + PREDICTIONS_PATH

    @property
    def metrics_url(self) -> str:
        """The metrics endpoint."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def command(self) -> list[str]:
        """The command line that starts the service."""
        executable = Path(sys.executable).parent / "loanxai-microservice"
        grpc = ["--grpc-port", str(self.grpc_port)] if self.grpc_port is not None else []
        return [str(executable), self.class_name, "--http-port", str(self.http_port), "--metrics-port", str(self.metrics_port),
                *grpc]

    def start(self, log_path: Path) -> None:
        """Migrate its record, as the deployments' init containers do (a service only checks
        it), then start the service in a new process group, its output going to ``log_path``."""
        # the record the service will open: its own setting, else this process's, from its folder
        url = self.env.get("LOAN_RECORDS_URL") or ServiceSettings.from_env().records_url
        if url != "off":
            open_store(absolute_url(url, self.folder))
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # custom metrics go to the metrics endpoint only, not into every response; the graph
        # node's name labels the metrics (model_name), as the Seldon operator sets it
        env = {**os.environ, "INCLUDE_METRICS_IN_CLIENT_RESPONSE": "false", "LOAN_DRAIN_SECONDS": "0.2",
               "PREDICTIVE_UNIT_ID": self.name, "LOAN_LISTEN_HOST": "127.0.0.1", **self.env}
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=self.folder, env=env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=die_with_parent,
            )

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Block until GET /health/status answers 200; return the seconds waited."""
        return wait_until_ready(f"{self.url}/health/status", self.process, self.name, self.log_tail, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the service and everything it started (see :func:`stop_process_group`)."""
        if self.process is not None:
            stop_process_group(self.process, timeout)
            self.process = None

    def kill(self) -> None:
        """Kill the service's whole process group at once (SIGKILL)."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
            self.process = None

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` of the service's log."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_until_ready(
    url: str, process: subprocess.Popen | None, name: str, log_tail: Callable[[], str], timeout: float = 60.0
) -> float:
    """Poll GET ``url`` until it answers 200; return the seconds waited.

    Raises RuntimeError with ``log_tail()`` if ``process`` exits first or time runs out.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process is None or process.poll() is not None:
            raise RuntimeError(f"{name} exited before it was ready:\n{log_tail()}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} was not ready after {timeout:.0f} s:\n{log_tail()}")


def stop_process_group(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop ``process``, started with ``start_new_session=True``, and its whole process group.

    SIGTERM to the main process first (the microservice's supervisor drains, then stops its
    servers gracefully), then SIGTERM and, after ``timeout``, SIGKILL to whatever is left of
    the group.
    """
    pgid = process.pid
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        if _wait_group_gone(pgid, timeout):
            break
    process.wait()


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    """True once no process of group ``pgid`` is left, False if some still are after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def classifier_service(
    http_port: int = 9000, metrics_port: int = 6000, env: dict[str, str] | None = None, grpc_port: int | None = None
) -> Service:
    """The classifier, from its folder under ``models/``, recording at ``LOAN_RECORDS_URL`` (:func:`_recording`);
    give ``env`` the explainer's ``LOAN_SAMPLING_KEY_FILE`` for it to answer the explainer."""
    return Service("classifier", "LoanClassifier", MODELS_DIR / "loanclassifier", http_port, metrics_port,
                   _recording(env), grpc_port=grpc_port)


def challenger_service(
    artifacts_dir: Path, http_port: int = 9002, metrics_port: int = 6002, env: dict[str, str] | None = None,
    grpc_port: int | None = None,
) -> Service:
    """A classifier serving ``artifacts_dir`` as a challenger (``LOAN_MODEL_ROLE=challenger``):
    its decisions recorded apart, beside the champion's, at ``LOAN_RECORDS_URL``."""
    environment = {"LOAN_ARTIFACTS_DIR": str(artifacts_dir.resolve()), "LOAN_MODEL_ROLE": CHALLENGER, **(env or {})}
    return Service(CHALLENGER, "LoanClassifier", MODELS_DIR / "loanclassifier", http_port, metrics_port,
                   _recording(environment), grpc_port=grpc_port)


def explainer_service(
    classifier_url: str, http_port: int = 9001, metrics_port: int = 6001, env: dict[str, str] | None = None,
    grpc_port: int | None = None,
) -> Service:
    """The explainer, calling the classifier's predictions endpoint at ``classifier_url`` (with
    the ``LOAN_SAMPLING_KEY_FILE`` of ``env`` or this process) and recording the explanations
    asked for recorded decisions at ``LOAN_RECORDS_URL`` (:func:`_recording`)."""
    environment = {"LOAN_CLASSIFIER_URL": classifier_url, **_recording(env)}
    return Service("explainer", "LoanExplainer", MODELS_DIR / "explainer", http_port, metrics_port, environment,
                   grpc_port=grpc_port)


class ConsoleService(Service):
    """The reviewer console (:mod:`loanxai.console`): no serving class, no metrics port."""

    def command(self) -> list[str]:
        """The command line that starts the console."""
        return [sys.executable, "-m", "loanxai", "console", "--port", str(self.http_port)]


def console_service(http_port: int = 8000, env: dict[str, str] | None = None) -> ConsoleService:
    """The reviewer console on ``http_port``, over the record at ``LOAN_RECORDS_URL`` (:func:`_recording`),
    re-deciding with the champion's artifacts unless ``env`` gives ``LOAN_REVIEW_ARTIFACTS``."""
    environment = {"LOAN_REVIEW_ARTIFACTS": str(CLASSIFIER_DIR), **_recording(env)}
    return ConsoleService("console", "", REPO_ROOT, http_port, 0, environment)


def _recording(env: dict[str, str] | None) -> dict[str, str]:
    """``env`` with ``LOAN_RECORDS_URL`` (from ``env``, else this process's setting), a relative
    SQLite file read from this process's working directory (the checkout's ``records/`` by
    default, where the records command looks)."""
    env = dict(env or {})
    env["LOAN_RECORDS_URL"] = absolute_url(env.get("LOAN_RECORDS_URL") or ServiceSettings.from_env().records_url)
    return env
