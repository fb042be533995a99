"""Every error the project raises: one root, :class:`LoanError`, that carries its HTTP status.

As in MLServer's ``errors`` module, the status and Seldon's ``reason`` code live on the
exception class; :func:`loanxai.serving.common.seldon_error` is the one place that turns an
error into Seldon's error body (``{"status": {"code": -1, "info": ..., "reason": ..., "status": 1}}``)
and status. Command-line tools print the message and exit non-zero. The messages name the
problem (the field, the file, the key or the row): they are what a user reads.

The docs' error reference (``docs/reference/errors.md``) is generated from this module.
"""
from __future__ import annotations

__all__ = [
    "ApplicationMismatch", "ArtifactError", "BudgetExceeded", "CallerGone", "CallerOverBudget", "ClassifierError",
    "ClassifierUnavailable", "ClusterError", "DataError", "DecisionConflict", "DecisionNotFound", "DescriptionError",
    "ExplainerBusy", "ExplainerUnavailable", "Forbidden", "GateError", "HeadersTooLarge", "InputError", "LoanError",
    "MethodNotAllowed",
    "ModelParityFailed", "NotFound", "NoticeUnavailable", "PrometheusError", "RecordError", "RecordInDoubt", "RecordUnavailable",
    "RequestLineTooLong", "RequestTimeout", "RequestTooLarge", "ReviewConflict", "ReviewNotFound", "ScoreError",
    "ServiceError", "SettingError",
    "ShuttingDown", "Unauthenticated", "UnknownCandidate",
]


class LoanError(Exception):
    """The root of every error here. ``status_code``: the HTTP status a service answers it with;
    ``reason``: Seldon's reason code in the error body; ``headers``: the HTTP headers its answer carries."""

    status_code: int = 500
    reason: str = "MICROSERVICE_INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = {}


# --- a client's request ------------------------------------------------------------------------------


class InputError(LoanError):
    """The request does not fit the schema or the API: a missing or unknown feature, a value of
    the wrong type or out of range, an unknown category, a malformed message, invalid JSON."""

    # not a ValueError: Flask's JSON loading turns a ValueError into "no JSON", and this
    # error's own message must reach the client

    status_code, reason = 400, "MICROSERVICE_BAD_DATA"


class Unauthenticated(LoanError):
    """With ``LOAN_AUTH=on``: the request carries no bearer token, or one that is not valid here
    (signature, issuer, audience, expiry, algorithm); the answer's ``WWW-Authenticate`` says which."""

    status_code, reason = 401, "UNAUTHENTICATED"

    def __init__(self, message: str, token_given: bool) -> None:
        super().__init__(message)
        # RFC 6750: the scheme, and "invalid_token" when a token came and was refused
        self.headers["WWW-Authenticate"] = 'Bearer realm="loanxai"' + (', error="invalid_token"' if token_given else "")


class Forbidden(LoanError):
    """With ``LOAN_AUTH=on``: the caller's token is valid, but none of its roles may call this
    endpoint of this service."""

    status_code, reason = 403, "FORBIDDEN"


class CallerOverBudget(LoanError):
    """The caller has used up its explanations, or the classifier rows asked on its behalf, for
    the window (``LOAN_CALLER_EXPLANATIONS``, ``LOAN_CALLER_MODEL_ROWS``, ``LOAN_CALLER_WINDOW``);
    ``Retry-After`` says when the window ends."""

    status_code, reason = 429, "CALLER_OVER_BUDGET"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers["Retry-After"] = str(retry_after)


class NotFound(LoanError):
    """No such path."""

    status_code, reason = 404, "NOT_FOUND"


class MethodNotAllowed(LoanError):
    """The path takes another HTTP method (the answer's ``Allow`` header names it)."""

    status_code, reason = 405, "METHOD_NOT_ALLOWED"

    def __init__(self, message: str, allow: str) -> None:
        super().__init__(message)
        self.headers["Allow"] = allow


class DecisionNotFound(LoanError):
    """An explanation names an application (``meta.tags.application_ids``) that has no decision on the record."""

    status_code, reason = 404, "DECISION_NOT_FOUND"


class ApplicationMismatch(LoanError):
    """An explanation names a recorded decision it would not explain: the recorded inputs differ
    from the application sent, or another model decided it. An explanation on the record explains
    the decision as it was made."""

    status_code, reason = 409, "APPLICATION_MISMATCH"


class DecisionConflict(LoanError):
    """The request's id (``meta.puid``) is already on the record for other applications: a retry
    must send the same applications, a new request a new id."""

    status_code, reason = 409, "DECISION_CONFLICT"


class ReviewNotFound(LoanError):
    """A review names an application with no decision on the record, or a review that does not exist."""

    status_code, reason = 404, "REVIEW_NOT_FOUND"


class ReviewConflict(LoanError):
    """A review step does not fit where the review stands: a contest of an approval, or of an
    application with a review open; a step on a closed review; an uphold the model's decision does
    not support; a reversal confirmed by the reviewer who proposed it."""

    status_code, reason = 409, "REVIEW_CONFLICT"


class CallerGone(LoanError):
    """The caller closed its connection while its explanation waited or ran: the work is
    abandoned, as nobody would read the answer (counted as an explanation answered 499)."""

    status_code, reason = 499, "CALLER_GONE"


class RequestTimeout(LoanError):
    """The request did not arrive whole within ``LOAN_REQUEST_TIMEOUT``."""

    status_code, reason = 408, "REQUEST_TIMEOUT"


class HeadersTooLarge(LoanError):
    """The request's headers are larger than the server takes (a header field of more than 8,190
    bytes, or more than 100 fields: gunicorn's limits)."""

    status_code, reason = 431, "REQUEST_HEADERS_TOO_LARGE"


class RequestLineTooLong(LoanError):
    """The request line (method, path and query) is longer than the server takes (4,094 bytes)."""

    status_code, reason = 414, "REQUEST_LINE_TOO_LONG"


class RequestTooLarge(LoanError):
    """The request body is larger than ``LOAN_MAX_BODY_BYTES``."""

    status_code, reason = 413, "REQUEST_TOO_LARGE"


# --- the service's state -----------------------------------------------------------------------------


class ModelParityFailed(LoanError):
    """Readiness: the loaded model no longer reproduces the reference answers recorded at training."""

    status_code, reason = 500, "MODEL_PARITY_FAILED"


class ClassifierError(LoanError):
    """The explainer's call to the classifier was answered, but not with probabilities."""

    status_code, reason = 502, "CLASSIFIER_ERROR"


class ShuttingDown(LoanError):
    """Readiness while the service drains for shutdown: no new work (``Retry-After``)."""

    status_code, reason = 503, "SHUTTING_DOWN"


class ExplainerBusy(LoanError):
    """Every explanation slot of the worker is taken (``LOAN_EXPLAIN_QUEUE``): retry in a moment."""

    status_code, reason = 503, "EXPLAINER_BUSY"


class ClassifierUnavailable(LoanError):
    """The explainer could not reach the classifier at ``LOAN_CLASSIFIER_URL`` (after its retries)."""

    status_code, reason = 503, "CLASSIFIER_UNAVAILABLE"


class ExplainerUnavailable(LoanError):
    """The console cannot have a decision explained: no explainer configured (``LOAN_REVIEW_EXPLAINER_URL``),
    or it cannot be reached, or it failed; the message says which."""

    status_code, reason = 503, "EXPLAINER_UNAVAILABLE"


class NoticeUnavailable(LoanError):
    """The console cannot render notices: the letterhead's settings (``LOAN_CREDITOR``, ...) are not set."""

    status_code, reason = 503, "NOTICE_UNAVAILABLE"


class RecordUnavailable(LoanError):
    """The decision could not be recorded (the database at ``LOAN_RECORDS_URL`` failed), so it is
    not answered: retry with the same ``meta.puid``."""

    status_code, reason = 503, "RECORD_UNAVAILABLE"


class RecordInDoubt(LoanError):
    """The database's answer to the commit holding the decision was lost (the connection broke
    during the commit) and the record could not be read to tell whether it holds it: it may be
    recorded. Retry with the same ``meta.puid``: a recorded decision is answered as recorded, one
    that is not is recorded once."""

    status_code, reason = 503, "RECORD_IN_DOUBT"


class BudgetExceeded(LoanError):
    """An explanation used up its time budget (``LOAN_EXPLAIN_BUDGET``)."""

    status_code, reason = 504, "EXPLANATION_TIMEOUT"


# --- training, start-up and tools (a message and a non-zero exit, never an answer) -------------------


class SettingError(LoanError, ValueError):
    """An environment variable holds a value its setting does not accept; the message names it."""


class DescriptionError(LoanError, ValueError):
    """The dataset description is missing, malformed or inconsistent; the message names the file and key."""


class DataError(LoanError, ValueError):
    """The data does not fit its description; the message names the file, the column and the rows."""


class UnknownCandidate(LoanError, ValueError):
    """Training was asked to serve a candidate the search does not have; the message lists them."""


class ArtifactError(LoanError):
    """Artifacts are missing, were changed since training, or need other library versions."""


class GateError(LoanError):
    """The model may not ship: the gate's screen flagged it without a recorded justification, or its search step
    failed; the message names the step and its checks."""


class PromotionRefused(LoanError):
    """A challenger may not replace the champion: its own gate, a check on the shadowed decisions
    without a recorded override, or tags in deploy/ that are not the models given; the message names it."""


class ServiceError(LoanError):
    """A service answered a client with an error: ``status_code`` is the answer's, the message its ``info``."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code


class ScoreError(LoanError):
    """A file cannot be decided: the classifier keeps failing, or the work folder is another run's."""


class RecordError(LoanError):
    """The decision record cannot do what was asked: no such decision, a database that is not at
    the code's migration (a service or command refuses to start on it), artifacts of another
    model, a notice for an approval."""


class ClusterError(LoanError):
    """The local cluster (``make cluster-up``, the Kubernetes tests) cannot start or be used: a tool not built
    (``make cluster-tools``), no root or ``ip``, a component that died (the message ends with its log)."""


class PrometheusError(LoanError):
    """Prometheus is missing, did not start, or answered a query with an error."""
