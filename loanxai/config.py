"""Every setting, declared once: its environment variable, default, meaning and rule.

A settings class is a frozen dataclass whose fields are declared with :func:`setting`:
:meth:`EnvSettings.from_env` reads each field's variable (an unset or empty variable keeps
the default), and construction checks every value, from the environment or passed in code,
raising :class:`~loanxai.errors.SettingError` naming the variable. The configuration
reference (``docs/reference/configuration.md``) is generated from these declarations
(:mod:`loanxai.ops.reference`); a test fails when the two disagree.

Values are read by one rule per type: numbers as decimal numbers (an integer setting refuses
a fraction), switches as ``on``/``off`` (also ``true``/``false``, ``1``/``0``), lists as
comma-separated items, paths as given.

- :class:`ServiceSettings`: the two serving classes (``LoanClassifier``, ``LoanExplainer``);
- :class:`ServerSettings`: ``loanxai-microservice``, the server that runs them, with the
  seldon-core wrapper's own names where it has one;
- :class:`ToolSettings`: the command-line tools and test suites;
- :class:`ReviewSettings`: reviews of decisions, in the reviewer console and its API;
- :class:`Settings`: all four, read once at a process's entry point and passed in;
- :data:`SCRIPT_SETTINGS`: what the shell scripts read (declared here for the reference; a
  test checks each script's default against it);
- :data:`SELDON_VARIABLES`: variables the seldon-core wrapper reads itself.
"""
from __future__ import annotations

import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from loanxai.errors import SettingError

__all__ = ["CHALLENGER", "CHAMPION", "LEGAL_MINIMUM_MONTHS", "MODEL_ROLES", "SCRIPT_SETTINGS", "SELDON_VARIABLES",
           "SQLITE_PREFIX", "EnvSettings",
           "ReviewSettings", "ScriptSetting", "ServerSettings", "ServiceSettings", "Setting", "Settings", "ToolSettings",
           "setting"]

#: the model role of the live classifier: its decisions are answered, noticed and explained
CHAMPION = "champion"
#: the model role of a retrained classifier shadowing the champion: its decisions are only recorded
CHALLENGER = "challenger"
#: the model roles a classifier serves in (``LOAN_MODEL_ROLE``)
MODEL_ROLES = (CHAMPION, CHALLENGER)
#: the shortest retention of a decision the law allows: 25 months after the notice of action (12 CFR 1002.12(b)(1))
LEGAL_MINIMUM_MONTHS = 25

_TRUE, _FALSE = ("on", "true", "1"), ("off", "false", "0")
#: how a SQLite URL starts (a file path follows: relative, or absolute with a fourth slash)
SQLITE_PREFIX = "sqlite:///"
S = TypeVar("S", bound="EnvSettings")


@dataclass(frozen=True)
class Setting:
    """How one field is configured: its variable, what it means, the rule a value must follow
    (``valid``, worded by ``rule``) and, where the default is not a plain value, how the
    reference shows it."""

    env: str
    meaning: str
    rule: str = ""
    valid: Callable[[Any], bool] | None = None
    choices: tuple[str, ...] = ()
    shown_default: str | None = None


def setting(env: str, default: Any, meaning: str, *, rule: str = "", valid: Callable[[Any], bool] | None = None,
            choices: tuple[str, ...] = (), shown_default: str | None = None) -> Any:
    """A dataclass field configured by the environment variable ``env``."""
    return field(default=default, metadata={"setting": Setting(env, meaning, rule, valid, choices, shown_default)})


class EnvSettings:
    """What every settings class shares: reading from the environment and checking values."""

    @classmethod
    def from_env(cls: type[S], environ: Mapping[str, str] | None = None) -> S:
        """The settings the environment gives (``os.environ`` by default); the rest keep their defaults."""
        environ = os.environ if environ is None else environ
        hints = typing.get_type_hints(cls)
        values = {}
        for f in fields(cls):  # type: ignore[arg-type]
            declared: Setting = f.metadata["setting"]
            raw = environ.get(declared.env, "").strip()
            if raw:
                values[f.name] = _parse(hints[f.name], raw, declared)
        return cls(**values)

    def __post_init__(self) -> None:
        """Check every value against its declaration."""
        for f in fields(self):  # type: ignore[arg-type]
            declared: Setting = f.metadata["setting"]
            value = getattr(self, f.name)
            if declared.choices and value not in declared.choices:
                raise SettingError(f"{declared.env}={value!r} is not one of: {', '.join(declared.choices)}")
            if declared.valid is not None and not declared.valid(value):
                raise SettingError(f"{declared.env}={value!r}: {declared.rule}")


def _parse(kind: Any, raw: str, declared: Setting) -> Any:
    """``raw`` as a value of the field's type (see the module's rules)."""
    if kind is bool:
        if raw.lower() not in _TRUE + _FALSE:
            raise SettingError(f"{declared.env}={raw!r} is not on or off")
        return raw.lower() in _TRUE
    if kind in (int, float):
        try:
            number = float(raw)
        except ValueError:
            raise SettingError(f"{declared.env}={raw!r} is not a number") from None
        if kind is int:
            if not number.is_integer():
                raise SettingError(f"{declared.env}={raw!r} is not an integer")
            return int(number)
        return number
    if kind == tuple[str, ...]:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if kind in (Path, Path | None):
        return Path(raw)
    return raw.upper() if declared.choices and all(c.isupper() for c in declared.choices) else raw


def _at_least(low: float) -> Callable[[float], bool]:
    return lambda value: value >= low


def _positive(value: float) -> bool:
    return value > 0


@dataclass(frozen=True)
class ServiceSettings(EnvSettings):
    """The serving classes' settings."""

    artifacts_dir: Path | None = setting(
        "LOAN_ARTIFACTS_DIR", None, "the folder of the serving class's artifacts",
        shown_default="`artifacts/` beside the serving class")
    max_batch_rows: int = setting("LOAN_MAX_BATCH_ROWS", 1000, "most applications one prediction request may carry",
                                  rule="at least 1", valid=_at_least(1))
    classifier_url: str = setting("LOAN_CLASSIFIER_URL", "http://127.0.0.1:9000/api/v1.0/predictions",
                                  "the classifier's predictions endpoint, called by the explainer")
    classifier_connect_timeout: float = setting(
        "LOAN_CLASSIFIER_CONNECT_TIMEOUT", 1.0, "seconds to open a connection to the classifier",
        rule="a positive number of seconds", valid=_positive)
    classifier_read_timeout: float = setting(
        "LOAN_CLASSIFIER_READ_TIMEOUT", 10.0, "seconds to wait for the classifier's answer",
        rule="a positive number of seconds", valid=_positive)
    classifier_retries: int = setting(
        "LOAN_CLASSIFIER_RETRIES", 2, "retries of a classifier call whose connection failed (never of a sent request)",
        rule="0 or more", valid=_at_least(0))
    explain_threshold: float = setting("LOAN_EXPLAIN_THRESHOLD", 0.95, "the default anchor precision threshold",
                                       rule="a number in (0, 1]", valid=lambda v: 0 < v <= 1)
    prediction_path: str = setting(
        "LOAN_PREDICTION_PATH", "auto", "`auto`: the exact fast path when its start-up parity check holds; "
        "`scikit-learn`: always the dill pipeline", choices=("auto", "scikit-learn"))
    reasons: int = setting("LOAN_REASONS", 4, "principal reasons per application when a request asks `reasons: true`",
                           rule="0 or more", valid=_at_least(0))
    explain_budget: float = setting(
        "LOAN_EXPLAIN_BUDGET", 15.0, "seconds an explanation (anchor or recourse) may take; past it the explainer "
        "answers 504", rule="a positive number of seconds", valid=_positive)
    explain_p95_budget: float = setting(
        "LOAN_EXPLAIN_P95_BUDGET", 5.0, "seconds 95% of explanations should take; the `LoanExplanationSlow` alert "
        "fires above it", rule="a positive number of seconds", valid=_positive)
    explain_queue: int = setting(
        "LOAN_EXPLAIN_QUEUE", 2, "explanations that may wait, per worker, behind the one running; more get 503 "
        "`EXPLAINER_BUSY` at once", rule="0 or more", valid=_at_least(0))
    records_url: str = setting(
        "LOAN_RECORDS_URL", f"{SQLITE_PREFIX}records/decisions.sqlite", "where the classifier records every decision "
        "before answering it, and the explainer the explanations asked for recorded decisions (the same database for "
        "both; a SQLAlchemy URL: `sqlite:///<file>`, relative to the working directory, or "
        "`postgresql+psycopg://user:password@host/database`); `off`: nothing is recorded (to measure what recording "
        "costs; never in production)", rule="a sqlite:/// or postgresql+psycopg:// URL, or off",
        valid=lambda v: v == "off" or v.startswith((SQLITE_PREFIX, "postgresql+psycopg://")))
    record_timeout: float = setting(
        "LOAN_RECORD_TIMEOUT", 5.0, "seconds a statement on the record may take (a commit, a read, readiness's "
        "write); past it a PostgreSQL connection is cut and replaced (a silent network path, a frozen server) and the "
        "request answered 503; a decision waits at most twice this for its commit", rule="a positive number of "
        "seconds", valid=_positive)
    model_role: str = setting(
        "LOAN_MODEL_ROLE", CHAMPION, "`champion`: the classifier's decisions are the ones answered, recorded in the "
        "record's `decisions`; `challenger`: it shadows the champion (mirrored requests, its answers discarded), its "
        "decisions recorded in `challenger_decisions` for `loanxai compare` (docs: Retrain with a "
        "challenger)", choices=MODEL_ROLES)
    metrics: bool = setting("LOAN_METRICS", True, "`on`: count decisions, outcomes, explanations and requests for "
                            "Prometheus; `off`: count nothing (to measure what monitoring costs)", shown_default="`on`")
    auth: bool = setting(
        "LOAN_AUTH", False, "`on`: predictions, feedback and metadata need a bearer token (a JWT) whose role may call "
        "them (401 without a valid one, 403 for another role; health stays open), and each explanation goes on the "
        "record with who asked; `off`: anyone who reaches the service may call it (`make demo`; never in production)",
        shown_default="`off`")
    auth_keys: Path | None = setting(
        "LOAN_AUTH_KEYS", None, "the keys tokens are signed with: a JWKS file (JSON, as an identity provider "
        "publishes it) or one PEM public key", shown_default="none (needed with `LOAN_AUTH=on`)")
    auth_issuer: str = setting("LOAN_AUTH_ISSUER", "", "the `iss` every token must carry",
                               shown_default="none (needed with `LOAN_AUTH=on`)")
    auth_audience: str = setting("LOAN_AUTH_AUDIENCE", "loanxai", "the `aud` every token must carry")
    auth_roles_claim: str = setting("LOAN_AUTH_ROLES_CLAIM", "roles", "the claim holding the caller's roles (`decide`, "
                                    "`explain`, `audit`, `review`): a list of strings or one string")
    classifier_token_file: Path | None = setting(
        "LOAN_CLASSIFIER_TOKEN_FILE", None, "a file holding the bearer token (role `decide`) the explainer sends the "
        "classifier; read again when it changes", shown_default="none: no token sent")
    auth_max_lifetime: float = setting(
        "LOAN_AUTH_MAX_LIFETIME", 86400.0, "the longest a token may be valid, `exp` less `iat` (or less now, without "
        "`iat`), in seconds: a longer-lived token is refused 401", rule="a positive number of seconds", valid=_positive)
    sampling_key_file: Path | None = setting(
        "LOAN_SAMPLING_KEY_FILE", None, "a file holding the sampling key, a secret the explainer and the classifier "
        "share: the classifier answers rows an explainer made up (`meta.tags.purpose: explanation`, never recorded) "
        "only to a request carrying it (header `X-Loan-Sampling-Key`), so no caller gets an unrecorded decision; read "
        "again when it changes; `loanxai tokens sampling-key` makes one",
        shown_default="none: the classifier answers no sampled rows, the explainer refuses to start")
    caller_explanations: int = setting(
        "LOAN_CALLER_EXPLANATIONS", 100, "explanations (anchors and recourse) one caller may ask per window, with "
        "`LOAN_AUTH=on`; more get 429 `CALLER_OVER_BUDGET` with `Retry-After`", rule="at least 1", valid=_at_least(1))
    caller_model_rows: int = setting(
        "LOAN_CALLER_MODEL_ROWS", 200_000, "classifier rows the explainer may ask on one caller's behalf per window "
        "(2,000 for each of the 100 explanations: the median anchor asks about 800, a hard one a few thousand; "
        "`make bench` measures them)", rule="at least 1", valid=_at_least(1))
    caller_window: float = setting("LOAN_CALLER_WINDOW", 3600.0, "seconds of a caller's budget window",
                                   rule="a positive number of seconds", valid=_positive)

    def __post_init__(self) -> None:
        """Check every value, and that ``LOAN_AUTH=on`` has its keys and issuer."""
        super().__post_init__()
        if self.auth and (self.auth_keys is None or not self.auth_issuer):
            missing = "LOAN_AUTH_KEYS" if self.auth_keys is None else "LOAN_AUTH_ISSUER"
            raise SettingError(f"LOAN_AUTH=on needs {missing}: the tokens are checked against the keys and issuer")


@dataclass(frozen=True)
class ServerSettings(EnvSettings):
    """``loanxai-microservice``'s settings: addresses, workers, timeouts and limits."""

    host: str = setting("LOAN_LISTEN_HOST", "0.0.0.0", "the address every server listens on (the local runner and "
                        "the tests: 127.0.0.1)")
    http_port: int = setting("PREDICTIVE_UNIT_HTTP_SERVICE_PORT", 9000, "the REST port (or `--http-port`)",
                             rule="a port", valid=lambda p: 0 < p < 65536)
    grpc_port: int = setting("PREDICTIVE_UNIT_GRPC_SERVICE_PORT", 5000, "the gRPC port (or `--grpc-port`)",
                             rule="a port", valid=lambda p: 0 < p < 65536)
    metrics_port: int = setting("PREDICTIVE_UNIT_METRICS_SERVICE_PORT", 6000, "the metrics port (or "
                                "`--metrics-port`)", rule="a port", valid=lambda p: 0 < p < 65536)
    parameters: str = setting("PREDICTIVE_UNIT_PARAMETERS", "[]", "JSON list of the serving class's parameters "
                              "(`{name, value, type}`), as the wrapper reads it")
    workers: int = setting("GUNICORN_WORKERS", 1, "REST worker processes", rule="at least 1", valid=_at_least(1))
    threads: int = setting("GUNICORN_THREADS", 4, "threads per worker (one keeps health checks answered while "
                           "another computes)", rule="at least 2", valid=_at_least(2))
    keepalive: int = setting("GUNICORN_KEEPALIVE", 5, "seconds an idle connection is kept (also the wait for a new "
                             "connection's first byte)", rule="0 or more", valid=_at_least(0))
    grpc_workers: int = setting("GRPC_WORKERS", 0, "gRPC server processes (0: no gRPC)", rule="0 or more",
                                valid=_at_least(0))
    grpc_threads: int = setting("GRPC_THREADS", 4, "threads of the gRPC server", rule="at least 1", valid=_at_least(1))
    log_level: str = setting("SELDON_LOG_LEVEL", "INFO", "the log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    request_timeout: float = setting(
        "LOAN_REQUEST_TIMEOUT", 10.0, "seconds a request may take to arrive, headers and body, from its first byte "
        "(408 after)", rule="a positive number of seconds", valid=_positive)
    max_connections: int = setting(
        "LOAN_MAX_CONNECTIONS", 1000, "connections a REST worker holds; a new one to a full worker closes the held "
        "connection that has waited longest (408 if its request had begun)", rule="at least 16", valid=_at_least(16))
    max_body_bytes: int = setting("LOAN_MAX_BODY_BYTES", 8 * 1024 * 1024, "largest request body (413 above, before "
                                  "it is read)", rule="at least 1", valid=_at_least(1))
    drain_seconds: float = setting(
        "LOAN_DRAIN_SECONDS", 2.0, "seconds of serving after SIGTERM with readiness failing (the load balancer takes "
        "the pod out)", rule="0 or more seconds", valid=_at_least(0))
    graceful_timeout: float = setting("LOAN_GRACEFUL_TIMEOUT", 20.0, "seconds to finish what is in flight after that",
                                      rule="0 or more seconds", valid=_at_least(0))
    cors_origins: tuple[str, ...] = setting("LOAN_CORS_ORIGINS", (), "comma-separated origins allowed by CORS",
                                            shown_default="none: no CORS")


@dataclass(frozen=True)
class ReviewSettings(EnvSettings):
    """Reviews of decisions: contests, corrections and reviewers' actions (the reviewer console and its API)."""

    days: int = setting("LOAN_REVIEW_DAYS", 30, "days a contest must be answered within, from when it was opened "
                        "(its deadline, shown in the queue)", rule="at least 1", valid=_at_least(1))
    second_reviewer: bool = setting(
        "LOAN_REVIEW_SECOND_REVIEWER", False, "`on`: reversing an automated rejection takes two reviewers, the "
        "second confirming the first's reversal; `off`: one", shown_default="`off`")
    artifacts: tuple[str, ...] = setting(
        "LOAN_REVIEW_ARTIFACTS", ("models/loanclassifier/artifacts",), "the classifier artifact folders of every "
        "model whose decisions may be contested (comma-separated): corrected inputs are decided again by the model "
        "that made the contested decision", rule="at least one folder", valid=bool)
    console_port: int = setting("LOAN_CONSOLE_PORT", 8000, "the reviewer console's HTTP port (pages and API)",
                                rule="a port", valid=lambda p: 0 < p < 65536)
    explainer_url: str = setting(
        "LOAN_REVIEW_EXPLAINER_URL", "", "the explainer's base URL (`http://host:port`), which the console asks for "
        "an anchor or recourse when a reviewer or auditor asks on a decision's page, with their own token",
        shown_default="none: the console offers no explanations")


@dataclass(frozen=True)
class ToolSettings(EnvSettings):
    """What the command-line tools and the test suites read."""

    library_logs: bool = setting("LOAN_LIBRARY_LOGS", False, "`on`: the libraries' own warnings and notices "
                                 "(alibi's anchor search, fairlearn's grid sizes, WeasyPrint's CSS and fonts, "
                                 "deprecations) reach the terminal", shown_default="`off`: only their errors")
    score_progress: bool = setting("LOAN_SCORE_PROGRESS", False, "`on`: the file scorer draws its progress bar even "
                                   "when its output is not a terminal", shown_default="`off` (drawn on a terminal)")
    creditor: str = setting("LOAN_CREDITOR", "", "the creditor's name and address as an adverse action notice "
                            "gives them (lines separated by `|`)", shown_default="none: notices refuse to render")
    creditor_phone: str = setting("LOAN_CREDITOR_PHONE", "", "the creditor's telephone number as an adverse action "
                                  "notice gives it", shown_default="none: notices refuse to render")
    agency: str = setting("LOAN_AGENCY", "", "the name and address of the federal agency that supervises the "
                          "creditor, for the ECOA notice (lines separated by `|`)",
                          shown_default="none: notices refuse to render")
    retention_months: int = setting(
        "LOAN_RETENTION_MONTHS", LEGAL_MINIMUM_MONTHS, "months a decision is kept after it was made (12 CFR "
        "1002.12(b)); `records purge` deletes older ones (a shorter retention only by `records purge --months N "
        "--override REASON`, recorded)", rule=f"at least {LEGAL_MINIMUM_MONTHS}", valid=_at_least(LEGAL_MINIMUM_MONTHS))
    review_retention_months: int = setting(
        "LOAN_REVIEW_RETENTION_MONTHS", LEGAL_MINIMUM_MONTHS, "months a review (a contest, its events) is kept after it "
        "was opened; the decisions it contested and made are kept as long; `records purge` deletes older ones "
        "(Colorado's law on automated decisions asks for three years: 36)", rule=f"at least {LEGAL_MINIMUM_MONTHS}",
        valid=_at_least(LEGAL_MINIMUM_MONTHS))
    promote_air_tolerance: float = setting(
        "LOAN_PROMOTE_AIR_TOLERANCE", 0.02, "how far below the champion's a challenger's adverse impact ratio of any "
        "protected attribute may be on the applications both decided (`make promote`; the alert "
        "LoanChallengerAdverseImpactBelowChampion)", rule="from 0 to 1", valid=lambda value: 0 <= value <= 1)
    promote_recall_tolerance: float = setting(
        "LOAN_PROMOTE_RECALL_TOLERANCE", 0.02, "how far below the champion's a challenger's recall on the outcomes of "
        "the applications both decided may be (`make promote`)", rule="from 0 to 1", valid=lambda value: 0 <= value <= 1)
    promote_min_outcomes: int = setting(
        "LOAN_PROMOTE_MIN_OUTCOMES", 50, "approved outcomes (true positives and false negatives) among the applications "
        "both decided before `make promote` judges recall", rule="at least 1", valid=_at_least(1))
    reliability_report: Path | None = setting(
        "LOAN_RELIABILITY_REPORT", None, "where the reliability suite writes its figures (JSON)",
        shown_default="none; `make reliability`: `bench/results/reliability.json`")


class Settings:
    """Every setting of one process, read from its environment once, at its entry point (the command
    line's :func:`~loanxai.core.cli.main`), and passed in from there: nothing below reads the
    environment. The environment is copied when this is made; each group is checked when first
    used, so a command is stopped only by a bad value of a setting it reads."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)

    @cached_property
    def service(self) -> ServiceSettings:
        """The serving classes' settings (``LOAN_RECORDS_URL``, ``LOAN_AUTH*``, ...)."""
        return ServiceSettings.from_env(self._environ)

    @cached_property
    def server(self) -> ServerSettings:
        """The server's settings (ports, workers, timeouts, ``SELDON_LOG_LEVEL``)."""
        return ServerSettings.from_env(self._environ)

    @cached_property
    def review(self) -> ReviewSettings:
        """The reviewer console's settings."""
        return ReviewSettings.from_env(self._environ)

    @cached_property
    def tool(self) -> ToolSettings:
        """The command-line tools' settings (notices' letterhead, retention, promotion)."""
        return ToolSettings.from_env(self._environ)


@dataclass(frozen=True)
class ScriptSetting:
    """A variable the shell scripts read: its default as the scripts give it (paths relative to
    the checkout), and its meaning."""

    env: str
    default: str
    meaning: str
    scripts: tuple[str, ...]


#: what ``scripts/*.sh`` read (a test checks each script's ``${NAME:-default}`` against ``default``)
SCRIPT_SETTINGS: tuple[ScriptSetting, ...] = (
    ScriptSetting("KIND_CLUSTER", "loanxai", "the kind cluster's name", ("kind-up.sh", "deploy.sh", "kind-down.sh")),
    ScriptSetting("KIND_NODE_IMAGE", "kindest/node:v1.29.4", "the kind node image (the Kubernetes version)",
                  ("kind-up.sh",)),
    ScriptSetting("ISTIO_VERSION", "1.22.8", "the Istio release `kind-up.sh` installs", ("kind-up.sh",)),
    ScriptSetting("INGRESS_PORT", "8080", "the local port the smoke test forwards the ingress gateway to",
                  ("smoke.sh",)),
    ScriptSetting("BASE_IMAGE", "python:3.11-slim (build-images.sh, s2i-images.sh); localhost/python-base:bookworm "
                  "(base-image.sh, container-smoke.sh)", "the image both Dockerfiles and the s2i builder build on; the "
                  "local one is built with debootstrap",
                  ("build-images.sh", "s2i-images.sh", "base-image.sh", "container-smoke.sh")),
    ScriptSetting("DEBIAN_MIRROR", "the configured apt mirror", "where `base-image.sh` debootstraps from",
                  ("base-image.sh",)),
    ScriptSetting("LOANXAI_PYTHON", ".venv/bin/python", "the Python the scripts run the package with",
                  ("build-images.sh", "s2i-images.sh", "smoke.sh")),
    ScriptSetting("LOANXAI_MODELS_DIR", "models", "the folder of the images' build contexts (the services' and the "
                  "console's)",
                  ("build-images.sh", "s2i-images.sh")),
    ScriptSetting("LOANXAI_BUILD_ARGS", "", "extra options for `build` (podman-sandbox.sh sets "
                  "`--isolation chroot --network host --layers=false`)", ("build-images.sh", "s2i-images.sh")),
    ScriptSetting("S2I", "s2i (on PATH, else the one scripts/cluster-tools.sh built)", "the s2i binary",
                  ("s2i-images.sh",)),
    ScriptSetting("S2I_BUILDER", "localhost/loanxai/s2i-python311", "the s2i builder image's repository (its tag: "
                  "a digest of s2i/ and the base image)", ("s2i-images.sh",)),
    ScriptSetting("IMAGE_BUILDER", "dockerfile", "how `container-smoke.sh` builds the images: dockerfile "
                  "(`build-images.sh`) or s2i (`s2i-images.sh`)", ("container-smoke.sh",)),
    ScriptSetting("LOANXAI_PODMAN_ROOT", ".podman", "podman's storage and configuration without a Docker engine",
                  ("podman-sandbox.sh",)),
)

#: variables the seldon-core wrapper reads itself (documented for the services' users)
SELDON_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("PREDICTIVE_UNIT_METRICS_ENDPOINT", "/metrics", "the metrics path (the Seldon operator sets `/prometheus`)"),
    ("INCLUDE_METRICS_IN_CLIENT_RESPONSE", "true", "custom metrics in every answer's `meta.metrics` "
     "(the images and the local runner: `false`)"),
    ("PREDICTIVE_UNIT_ID", "", "the graph node's name: the `model_name` label of the metrics (the operator sets it)"),
)
