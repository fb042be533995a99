"""The console's HTTP API: contests opened, corrected, acted on and read, over JSON.

=======  ===================================  ==========================  =================================
method   path                                 roles (``LOAN_AUTH=on``)    body
=======  ===================================  ==========================  =================================
POST     ``/api/v1/reviews``                  decide, review              ``application_id``, ``grounds``,
                                                                          ``corrections`` (optional)
GET      ``/api/v1/reviews?status=open``      review, audit               (the queue, soonest due first)
GET      ``/api/v1/reviews/<id>``             decide, review, audit
POST     ``/api/v1/reviews/<id>/corrections`` decide, review              ``corrections``, ``note`` (optional)
POST     ``/api/v1/reviews/<id>/actions``     review                      ``action``, ``reason``
GET      ``/health/ping``                     anyone
GET      ``/health/status``                   anyone                      (ready: the record answers)
=======  ===================================  ==========================  =================================

A review is answered whole (:func:`review_json`). Errors have the services' shape and status
(:class:`~loanxai.errors.LoanError`): 400 naming the field, 401/403, 404 for an unknown review or
application, 409 for a step that does not fit where the review stands, 503 when the record's
database fails (nothing of the step recorded). With ``LOAN_AUTH=off`` every caller is
:data:`NO_AUTH` (local use only).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Flask, Response, jsonify, request

from loanxai.core.roles import CONTEST_ROLES, READ_REVIEW_ROLES, REVIEW_ROLES
from loanxai.errors import InputError
from loanxai.records.reviews import OPEN, PROPOSED, ReviewDesk
from loanxai.serving.auth import TokenVerifier

__all__ = ["NO_AUTH", "REVIEWS_PATH", "register_api", "review_json"]

#: who acts with ``LOAN_AUTH=off``: nobody known (local use only)
NO_AUTH = {"subject": "nobody (LOAN_AUTH=off)", "role": "off"}
#: where the reviews are
REVIEWS_PATH = "/api/v1/reviews"
#: most reviews one queue answer lists
MAX_QUEUE = 1000


def register_api(app: Flask, desk: ReviewDesk, verifier: TokenVerifier | None) -> None:
    """Add the API's routes to the console's ``app``; ``verifier``: every caller's token checked (None: LOAN_AUTH=off)."""

    def caller(roles: frozenset[str]) -> dict[str, str]:
        if verifier is None:
            return dict(NO_AUTH)
        return verifier.caller(request.headers.get("Authorization"), roles, request.path).to_dict()

    @app.get("/health/ping")
    def ping() -> str:
        return "pong"

    @app.get("/health/status")
    def ready() -> str:
        desk.queue((OPEN,), 1)
        return "ready"

    @app.post(REVIEWS_PATH)
    def open_review() -> tuple[Response, int]:
        by = caller(CONTEST_ROLES)
        body = _body(("application_id", "grounds"), ("corrections",))
        review_id = desk.open(body["application_id"], body["grounds"], by, body.get("corrections"))
        return jsonify(review_json(desk.review(review_id))), 201

    @app.get(REVIEWS_PATH)
    def queue() -> Response:
        caller(REVIEW_ROLES | {"audit"})
        statuses = [s for s in request.args.get("status", f"{OPEN},{PROPOSED}").split(",") if s]
        limit = _count(request.args.get("limit", "100"), "limit", MAX_QUEUE)
        return jsonify({"reviews": [_summary(r) for r in desk.queue(statuses, limit)]})

    @app.get(f"{REVIEWS_PATH}/<int:review_id>")
    def read(review_id: int) -> Response:
        caller(READ_REVIEW_ROLES)
        return jsonify(review_json(desk.review(review_id)))

    @app.post(f"{REVIEWS_PATH}/<int:review_id>/corrections")
    def correct(review_id: int) -> Response:
        by = caller(CONTEST_ROLES)
        body = _body(("corrections",), ("note",))
        desk.correct(review_id, body["corrections"], by, body.get("note"))
        return jsonify(review_json(desk.review(review_id)))

    @app.post(f"{REVIEWS_PATH}/<int:review_id>/actions")
    def act(review_id: int) -> Response:
        by = caller(REVIEW_ROLES)
        body = _body(("action", "reason"), ())
        desk.act(review_id, body["action"], body["reason"], by)
        return jsonify(review_json(desk.review(review_id)))


def review_json(review: Mapping[str, Any]) -> dict[str, Any]:
    """A review as the API answers it: the review, its deadline, the decisions (the contested
    first, then those the review made) and every event, times in ISO 8601 UTC."""
    return {**_summary(review), "grounds": review["grounds"], "opened_by": review["opened_by"],
            "decisions": [{key: _iso(d[key]) for key in ("request_id", "row", "application_id", "decided_at",
                                                          "decision", "probability", "cutoff", "model_version",
                                                          "inputs", "reasons", "review_id", "decided_by")}
                          for d in review["decisions"]],
            "events": [{"kind": e["kind"], "at": _iso(e["at"]), "by": e["by"], "content": e["content"]}
                       for e in review["events"]]}


def _summary(review: Mapping[str, Any]) -> dict[str, Any]:
    summary = {key: _iso(review[key]) for key in ("id", "application_id", "status", "opened_at", "due_at")}
    if "overdue" in review:
        summary["overdue"] = review["overdue"]
    return summary


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _body(required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, Any]:
    """The request's JSON object with ``required`` keys and maybe ``optional`` ones; a 400 naming what is wrong."""
    if not request.is_json:
        raise InputError("the request body must be JSON (Content-Type: application/json)")
    body = request.get_json()
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    missing = [key for key in required if key not in body]
    if missing:
        raise InputError(f"the request body has no {missing[0]!r}")
    unknown = [key for key in body if key not in required + optional]
    if unknown:
        raise InputError(f"the request body's key {str(unknown[0])[:64]!r} is not one of "
                         f"{', '.join(required + optional)}")
    return body


def _count(text: str, name: str, most: int) -> int:
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise InputError(f"{name} must be a whole number from 1 to {most}, not {text[:16]!r}")
    return int(text)
