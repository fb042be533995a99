"""The seldon-core wrapper's Flask app, with the guards a public endpoint needs.

:func:`harden` takes the app ``seldon_core.wrapper.get_rest_microservice`` builds (its routes,
payload handling and error shape stay as they are) and adds:

- routes by method: POST only for predictions and feedback (a GET of ``/predict?json=...``
  would run a whole explanation from a link), GET only for health, metadata and the OpenAPI
  spec; any other path is a 404, another method a 405 (with ``Allow``), not the wrapper's 500;
- a body size limit checked before the body is read (413), JSON parsed strictly: a duplicated
  key, nesting too deep for the parser, invalid JSON (also in a form's ``json=`` field) are a
  400 naming the problem;
- no CORS unless ``LOAN_CORS_ORIGINS`` lists the allowed origins;
- with ``LOAN_AUTH=on``, a bearer token whose role may call the service for every path but
  health (:mod:`loanxai.serving.auth`: 401, 403), checked before the body is read; the caller
  is :data:`~loanxai.serving.auth.current_caller` while the request is answered, and whether it
  carries the sampling key :data:`~loanxai.serving.auth.may_sample`;
- readiness (``/health/status``) answering 503 while the service drains for shutdown, and a
  ``Retry-After`` on every 503;
- every answer counted by endpoint and status, and timed (:class:`~loanxai.monitoring.counters.HttpMonitor`).

Every error answer keeps Seldon's shape: ``{"status": {"code": -1, "info": ..., "reason": ..., "status": 1}}``.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from seldon_core.flask_utils import SeldonMicroserviceException
from werkzeug.exceptions import HTTPException

from loanxai.errors import (
    InputError,
    LoanError,
    MethodNotAllowed,
    NotFound,
    RequestTimeout,
    RequestTooLarge,
    ShuttingDown,
)
from loanxai.monitoring.counters import HttpMonitor
from loanxai.serving.auth import SAMPLING_HEADER, SecretFile, TokenVerifier, current_caller, may_sample
from loanxai.serving.common import caller_present, connected, seldon_error

__all__ = ["GET_ONLY", "HEALTH", "POST_ONLY", "READINESS", "RETRY_AFTER_S", "StrictJSON", "error_answer", "harden", "loads",
           "without_cors"]

POST_ONLY = {"/predict", "/api/v1.0/predictions", "/api/v0.1/predictions", "/api/v1.0/feedback",
             "/api/v0.1/feedback", "/send-feedback"}
GET_ONLY = {"/health/ping", "/health/status", "/api/v1.0/health/status", "/metadata", "/api/v1.0/metadata",
            "/seldon.json"}
READINESS = {"/health/status", "/api/v1.0/health/status"}
#: what probes call: open to anyone whatever LOAN_AUTH says
HEALTH = {"/health/ping", *READINESS}
#: seconds a client is told to wait after a 503 (busy, draining, the classifier away)
RETRY_AFTER_S = 1


def without_cors(app: Flask) -> Flask:
    """``app`` without the wrapper's CORS, which allows any origin and any method on every answer
    and error: its after-request hook and its wrappers of the app's exception handlers."""
    app.after_request_funcs[None] = [f for f in app.after_request_funcs.get(None, [])
                                     if not f.__module__.startswith("flask_cors")]
    for wrapped in ("handle_exception", "handle_user_exception"):
        app.__dict__.pop(wrapped, None)
    return app


def harden(app: Flask, max_body_bytes: int, cors_origins: tuple[str, ...], draining: Callable[[], bool],
           metrics: bool = True, verifier: TokenVerifier | None = None, roles: frozenset[str] = frozenset(),
           sampling_key: SecretFile | None = None) -> Flask:
    """Add the module's guards to the wrapper's ``app``; ``draining()`` is true once shutdown
    began; ``metrics``: count and time every answer; ``verifier``: check every caller's token
    (None: LOAN_AUTH=off) for one of ``roles``; ``sampling_key``: what a request for sampled rows
    must carry (None: none may ask)."""
    # then CORS for the origins configured, if any
    without_cors(app)
    if cors_origins:
        from flask_cors import CORS

        CORS(app, origins=list(cors_origins), methods=["GET", "POST"])
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.json = StrictJSON(app)
    if metrics:
        _count_answers(app, HttpMonitor(POST_ONLY | GET_ONLY))

    @app.before_request
    def guard() -> Response | None:
        path, method = request.path, request.method
        if method == "OPTIONS" and cors_origins:
            return None  # a CORS preflight, answered by flask_cors
        allowed = "POST" if path in POST_ONLY else "GET" if path in GET_ONLY else None
        if allowed is None:
            raise NotFound(f"no such path: {path}")
        if method != allowed and not (method == "HEAD" and allowed == "GET"):
            raise MethodNotAllowed(f"{path} takes {allowed} only, not {method}", allow=allowed)
        if path in READINESS and draining():
            raise ShuttingDown("shutting down: no new work")
        # every request sets them: a thread of the pool never answers with its last request's caller
        current_caller.set(None if verifier is None or path in HEALTH
                           else verifier.caller(request.headers.get("Authorization"), roles, path))
        offered = request.headers.get(SAMPLING_HEADER)
        may_sample.set(offered is not None and sampling_key is not None and sampling_key.matches(offered))
        caller_present.set(partial(connected, request.environ.get("gunicorn.socket")))
        if request.content_length is not None and request.content_length > max_body_bytes:
            raise RequestTooLarge(f"request body of {request.content_length} bytes is larger than the limit of "
                                  f"{max_body_bytes} (LOAN_MAX_BODY_BYTES)")
        if method == "POST" and "json" in request.form:
            loads(request.form["json"], where="form field 'json'")  # the wrapper parses it without these checks
        return None

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        # werkzeug's own (a body over MAX_CONTENT_LENGTH, a malformed form); methods and paths the guard took
        return error_answer({413: RequestTooLarge, 404: NotFound}.get(error.code, InputError)(error.description))

    @app.errorhandler(TimeoutError)
    def slow_client(error: TimeoutError) -> Response:
        return error_answer(RequestTimeout("the request body did not arrive in time (LOAN_REQUEST_TIMEOUT)"))

    # ours, and the wrapper's own (what a serving class raises): in place of the wrapper's
    # handler, which sets no headers (``Allow``)
    app.register_error_handler(LoanError, error_answer)
    app.register_error_handler(SeldonMicroserviceException, _seldon_answer)

    @app.after_request
    def retry_later(response: Response) -> Response:
        if response.status_code == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    return app


def _count_answers(app: Flask, monitor: HttpMonitor) -> None:
    @app.before_request
    def start_clock() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def count(response: Response) -> Response:
        monitor.record(request.path, response.status_code, g.get("started", time.perf_counter()))
        return response


def loads(text: str | bytes, where: str = "request body") -> Any:
    """Parse JSON strictly; any problem is a 400 naming it."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply") from None
    except ValueError as error:
        raise InputError(f"{where}: invalid JSON: {error}") from None


class StrictJSON(DefaultJSONProvider):
    """Flask's JSON provider with :func:`loads` for request bodies."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse a request body strictly."""
        return loads(s)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [key for key, _ in pairs]
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise InputError(f"request body: key {duplicate!r} appears twice in one object")
    return result


def error_answer(error: LoanError) -> Response:
    """``error``'s answer: its status and headers, Seldon's error body."""
    return _seldon_answer(seldon_error(error))


def _seldon_answer(error: SeldonMicroserviceException) -> Response:
    # the headers of ours (Allow, Retry-After, WWW-Authenticate); the wrapper's own have none
    return Response(json.dumps(error.to_dict()), status=error.status_code, mimetype="application/json",
                    headers=getattr(error, "headers", None))
