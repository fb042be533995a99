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
        )
        if settings.max_batch_rows < 1:
            raise ValueError("LOAN_MAX_BATCH_ROWS must be at least 1")
        if settings.prediction_path not in ("auto", "scikit-learn"):
            raise ValueError("LOAN_PREDICTION_PATH must be 'auto' or 'scikit-learn'")
        if not 0.0 < settings.explain_threshold <= 1.0:
            raise ValueError("LOAN_EXPLAIN_THRESHOLD must be in (0, 1]")
        if settings.explain_budget <= 0:
            raise ValueError("LOAN_EXPLAIN_BUDGET must be a positive number of seconds")
        return settings
