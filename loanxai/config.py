"""Every setting of the services, read from the environment in this one place.

=============================== ================================================ =========
variable                        meaning                                          default
=============================== ================================================ =========
LOAN_ARTIFACTS_DIR              folder of the serving class's artifacts          ``artifacts`` beside the class
LOAN_MAX_BATCH_ROWS             most rows one prediction request may carry       1000
LOAN_CLASSIFIER_URL             the classifier's predictions endpoint,           http://127.0.0.1:9000/api/v1.0/predictions
                                called by the explainer
LOAN_CLASSIFIER_CONNECT_TIMEOUT seconds to open a connection to the classifier   1.0
LOAN_CLASSIFIER_READ_TIMEOUT    seconds to wait for the classifier's answer      10.0
LOAN_CLASSIFIER_RETRIES         retries of a request whose connection failed     2
LOAN_EXPLAIN_THRESHOLD          default anchor precision threshold               0.95
LOAN_PREDICTION_PATH            "auto": the exact fast path when its start-up     auto
                                parity check holds; "scikit-learn": always the
                                dill pipeline
LOAN_REASONS                    principal reasons per application when a request  4
                                asks for them with ``reasons: true``
LOAN_EXPLAIN_BUDGET             seconds an explanation (anchor or recourse) may   15
                                take; past it the explainer answers 504
LOAN_EXPLAIN_P95_BUDGET         seconds 95% of explanations should take; the     5
                                LoanExplanationSlow alert fires above it
LOAN_EXPLAIN_QUEUE              explanations that may wait, per worker, behind    2
                                the one running; more get 503 at once
LOAN_METRICS                    "on": count decisions, outcomes, explanations     on
                                and requests for Prometheus; "off": none (to
                                measure what monitoring costs)
=============================== ================================================ =========

The server (:mod:`loanxai.microservice`; ``ServerSettings``), with the wrapper's own names
where it has one:

=============================== ================================================ =========
PREDICTIVE_UNIT_HTTP_SERVICE_PORT, _GRPC_SERVICE_PORT, _METRICS_SERVICE_PORT       9000, 5000, 6000
LOAN_LISTEN_HOST                the address every server listens on (the local   0.0.0.0
                                runner and the tests: 127.0.0.1)
PREDICTIVE_UNIT_METRICS_ENDPOINT path of the metrics (read by the wrapper;         /metrics
                                the operator sets ``/prometheus``)
PREDICTIVE_UNIT_PARAMETERS      JSON list of the serving class's parameters      []
GUNICORN_WORKERS                REST worker processes                            1
GUNICORN_THREADS                threads per worker                               4
GUNICORN_KEEPALIVE              seconds an idle connection is kept (also the     5
                                wait for a new connection's first byte)
GRPC_WORKERS                    gRPC server processes (0: no gRPC)               0
GRPC_THREADS                    threads of the gRPC server                       4
SELDON_LOG_LEVEL                DEBUG, INFO, WARNING or ERROR                    INFO
LOAN_REQUEST_TIMEOUT            seconds a request may take to arrive, headers    10
                                and body, from its first byte (408 after)
LOAN_MAX_BODY_BYTES             largest request body (413 above)                 8388608
LOAN_DRAIN_SECONDS              seconds of serving after SIGTERM, readiness      2
                                failing (the load balancer takes it out)
LOAN_GRACEFUL_TIMEOUT           seconds to finish what is in flight after that   20
LOAN_CORS_ORIGINS               comma-separated origins allowed by CORS          none: no CORS
=============================== ================================================ =========
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


def _env_int(name: str, default: int) -> int:
    value = _env_float(name, default)
    if value != int(value) or value < 0:
        raise ValueError(f"{name}={value!r} is not a non-negative integer")
    return int(value)


@dataclass(frozen=True)
class Settings:
    """The services' configuration; build it with :meth:`from_env`."""

    artifacts_dir: Path | None = None
    max_batch_rows: int = 1000
    classifier_url: str = "http://127.0.0.1:9000/api/v1.0/predictions"
    classifier_connect_timeout: float = 1.0
    classifier_read_timeout: float = 10.0
    classifier_retries: int = 2
    explain_threshold: float = 0.95
    prediction_path: str = "auto"
    reasons: int = 4
    explain_budget: float = 15.0
    explain_p95_budget: float = 5.0
    explain_queue: int = 2
    metrics: bool = True

    @classmethod
    def from_env(cls) -> "Settings":
        defaults = cls()
        artifacts = os.environ.get("LOAN_ARTIFACTS_DIR")
        settings = cls(
            artifacts_dir=Path(artifacts) if artifacts else None,
            max_batch_rows=_env_int("LOAN_MAX_BATCH_ROWS", defaults.max_batch_rows),
            classifier_url=os.environ.get("LOAN_CLASSIFIER_URL") or defaults.classifier_url,
            classifier_connect_timeout=_env_float(
                "LOAN_CLASSIFIER_CONNECT_TIMEOUT", defaults.classifier_connect_timeout
            ),
            classifier_read_timeout=_env_float(
                "LOAN_CLASSIFIER_READ_TIMEOUT", defaults.classifier_read_timeout
            ),
            classifier_retries=_env_int("LOAN_CLASSIFIER_RETRIES", defaults.classifier_retries),
            explain_threshold=_env_float("LOAN_EXPLAIN_THRESHOLD", defaults.explain_threshold),
            prediction_path=os.environ.get("LOAN_PREDICTION_PATH") or defaults.prediction_path,
            reasons=_env_int("LOAN_REASONS", defaults.reasons),
            explain_budget=_env_float("LOAN_EXPLAIN_BUDGET", defaults.explain_budget),
            explain_p95_budget=_env_float("LOAN_EXPLAIN_P95_BUDGET", defaults.explain_p95_budget),
            explain_queue=_env_int("LOAN_EXPLAIN_QUEUE", defaults.explain_queue),
            metrics=(os.environ.get("LOAN_METRICS") or "on") == "on",
        )
        if (os.environ.get("LOAN_METRICS") or "on") not in ("on", "off"):
            raise ValueError("LOAN_METRICS must be 'on' or 'off'")
        if settings.max_batch_rows < 1:
            raise ValueError("LOAN_MAX_BATCH_ROWS must be at least 1")
        if settings.prediction_path not in ("auto", "scikit-learn"):
            raise ValueError("LOAN_PREDICTION_PATH must be 'auto' or 'scikit-learn'")
        if not 0.0 < settings.explain_threshold <= 1.0:
            raise ValueError("LOAN_EXPLAIN_THRESHOLD must be in (0, 1]")
        if settings.explain_budget <= 0 or settings.explain_p95_budget <= 0:
            raise ValueError("LOAN_EXPLAIN_BUDGET and LOAN_EXPLAIN_P95_BUDGET must be positive numbers of seconds")
        return settings


@dataclass(frozen=True)
class ServerSettings:
    """The microservice's configuration (ports, workers, timeouts, limits); :meth:`from_env`."""

    host: str = "0.0.0.0"
    http_port: int = 9000
    grpc_port: int = 5000
    metrics_port: int = 6000
    parameters: str = "[]"
    workers: int = 1
    threads: int = 4
    keepalive: int = 5
    grpc_workers: int = 0
    grpc_threads: int = 4
    log_level: str = "INFO"
    request_timeout: float = 10.0
    max_body_bytes: int = 8 * 1024 * 1024
    drain_seconds: float = 2.0
    graceful_timeout: float = 20.0
    cors_origins: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> "ServerSettings":
        d = cls()
        settings = cls(
            host=os.environ.get("LOAN_LISTEN_HOST") or d.host,
            http_port=_env_int("PREDICTIVE_UNIT_HTTP_SERVICE_PORT", d.http_port),
            grpc_port=_env_int("PREDICTIVE_UNIT_GRPC_SERVICE_PORT", d.grpc_port),
            metrics_port=_env_int("PREDICTIVE_UNIT_METRICS_SERVICE_PORT", d.metrics_port),
            parameters=os.environ.get("PREDICTIVE_UNIT_PARAMETERS") or d.parameters,
            workers=_env_int("GUNICORN_WORKERS", d.workers),
            threads=_env_int("GUNICORN_THREADS", d.threads),
            keepalive=_env_int("GUNICORN_KEEPALIVE", d.keepalive),
            grpc_workers=_env_int("GRPC_WORKERS", d.grpc_workers),
            grpc_threads=_env_int("GRPC_THREADS", d.grpc_threads),
            log_level=(os.environ.get("SELDON_LOG_LEVEL") or d.log_level).upper(),
            request_timeout=_env_float("LOAN_REQUEST_TIMEOUT", d.request_timeout),
            max_body_bytes=_env_int("LOAN_MAX_BODY_BYTES", d.max_body_bytes),
            drain_seconds=_env_float("LOAN_DRAIN_SECONDS", d.drain_seconds),
            graceful_timeout=_env_float("LOAN_GRACEFUL_TIMEOUT", d.graceful_timeout),
            cors_origins=tuple(o.strip() for o in os.environ.get("LOAN_CORS_ORIGINS", "").split(",") if o.strip()),
        )
        if settings.workers < 1 or settings.threads < 2:
            raise ValueError("GUNICORN_WORKERS must be at least 1 and GUNICORN_THREADS at least 2 "
                             "(one thread keeps health checks answered while another computes)")
        if settings.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"SELDON_LOG_LEVEL={settings.log_level!r} is not DEBUG, INFO, WARNING or ERROR")
        if settings.request_timeout <= 0 or settings.graceful_timeout < 0 or settings.drain_seconds < 0:
            raise ValueError("LOAN_REQUEST_TIMEOUT must be positive, LOAN_GRACEFUL_TIMEOUT and LOAN_DRAIN_SECONDS not negative")
        return settings
