"""The console's pages: the queue, an application's decisions, a review and its forms, for people.

The pages: the queue (``/``), a search of decisions by date range, decision, model version and
group (``/search``), an application's decisions (``/decisions``), a review (``/reviews/<id>``).
Server-rendered (Jinja, autoescaped: what callers and applicants wrote is shown as text, never
run). With ``LOAN_AUTH=on`` a browser session starts from a token: pasted on the login page, or
sent by an authenticating proxy in ``Authorization: Bearer``; a pasted token is kept in an
HttpOnly, SameSite=Strict cookie and checked on every request, as the API checks it. Every form
carries a CSRF token (an HMAC of the session's token under a key the process makes at start), and a
form without it is refused 403. Pages take ``review`` and ``audit``; only ``review`` may act.
Every page showing an application records that it was looked at (who, when, which page) on the
record, as an event of the decision (kind ``looked``). With ``LOAN_AUTH=off`` every page says it is
for local use only.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, abort, redirect, render_template, request
from werkzeug.datastructures import MultiDict

from loanxai.console.api import NO_AUTH
from loanxai.core.roles import REVIEW_ROLES
from loanxai.core.schema import CLASS_NAMES
from loanxai.errors import Forbidden, InputError
from loanxai.records.queries import Selection, select_decisions, utc
from loanxai.records.reviews import ACTIONS, OPEN, PROPOSED, ReviewDesk, named_inputs
from loanxai.serving.auth import TokenVerifier

__all__ = ["CSRF_FIELD", "PAGE_ROLES", "SESSION_COOKIE", "register_pages"]

#: the cookie a pasted token is kept in
SESSION_COOKIE = "loanxai_session"
#: the hidden field every form carries its CSRF token in
CSRF_FIELD = "csrf"
#: who may read the pages: reviewers and auditors (auditors act on nothing)
PAGE_ROLES = REVIEW_ROLES | {"audit"}
#: most decisions one search shows, the newest first
SEARCH_LIMIT = 200
#: how long a browser keeps the session cookie, in seconds (the token's own expiry ends it sooner)
SESSION_SECONDS = 8 * 3600


def register_pages(app: Flask, desk: ReviewDesk, verifier: TokenVerifier | None) -> None:
    """Add the pages to the console's ``app``."""
    key = secrets.token_bytes(32)  # made before the workers fork: every worker checks the same tokens

    def session_token() -> str | None:
        header = request.headers.get("Authorization", "")
        return header.partition(" ")[2].strip() if header.lower().startswith("bearer ") else \
            request.cookies.get(SESSION_COOKIE)

    def viewer(roles: frozenset[str] = PAGE_ROLES) -> dict[str, str]:
        if verifier is None:
            return dict(NO_AUTH)
        token = session_token()
        if not token:
            abort(redirect("/login", 303))
        return verifier.caller(f"Bearer {token}", roles, request.path).to_dict()

    def csrf() -> str:
        return hmac.new(key, (session_token() or "off").encode(), hashlib.sha256).hexdigest()

    def form(roles: frozenset[str] = REVIEW_ROLES) -> tuple[dict[str, str], MultiDict]:
        by = viewer(roles)
        if not hmac.compare_digest(request.form.get(CSRF_FIELD, ""), csrf()):
            raise Forbidden("the form's CSRF token is missing or not this session's: reload the page and send it again")
        return by, request.form

    def page(template: str, by: Mapping[str, str], **values: Any) -> str:
        return render_template(template, by=by, auth=verifier is not None, csrf=csrf(),
                               may_act=verifier is None or by["role"] in REVIEW_ROLES, **values)

    def looked(shown: list[Mapping[str, Any]], by: Mapping[str, str]) -> None:
        desk.store.looked(shown, {"by": dict(by), "page": request.full_path.rstrip("?")}, datetime.now(UTC))

    @app.get("/login")
    def login_form() -> str:
        return render_template("login.html", auth=verifier is not None, by=None)

    @app.post("/login")
    def login_page() -> Response:
        token = request.form.get("token", "").strip()
        if verifier is not None:
            verifier.caller(f"Bearer {token}", PAGE_ROLES, "the console")
        answer = redirect("/", 303)
        answer.set_cookie(SESSION_COOKIE, token, max_age=SESSION_SECONDS, httponly=True, samesite="Strict",
                          secure=request.is_secure)
        return answer

    @app.post("/logout")
    def logout_page() -> Response:
        form(PAGE_ROLES)
        answer = redirect("/login", 303)
        answer.delete_cookie(SESSION_COOKIE)
        return answer

    @app.get("/")
    def queue_page() -> str:
        by = viewer()
        return page("queue.html", by, reviews=desk.queue((OPEN, PROPOSED), 500), now=datetime.now(UTC))

    @app.get("/decisions")
    def decisions_page() -> str:
        by = viewer()
        application_id = request.args.get("application_id", "")
        found = desk.store.decisions_of_application(application_id) if application_id else []
        if application_id and not found:
            raise InputError(f"application {application_id[:64]!r} has no decision on the record")
        looked(found, by)
        return page("decision.html", by, application_id=application_id, decisions=found,
                    reviews=desk.reviews_of(application_id) if application_id else [])

    @app.get("/search")
    def search_page() -> str:
        by = viewer()
        selection = _selection(request.args)
        found = list(select_decisions(desk.store, selection, SEARCH_LIMIT, newest_first=True)) if request.args else []
        looked(found, by)
        return page("search.html", by, found=found, asked=request.args, limit=SEARCH_LIMIT, class_names=CLASS_NAMES)

    @app.post("/reviews")
    def open_review_page() -> Response:
        by, fields = form()
        review_id = desk.open(fields.get("application_id", ""), fields.get("grounds", ""), by)
        return redirect(f"/reviews/{review_id}", 303)

    @app.get("/reviews/<int:review_id>")
    def review_page(review_id: int) -> str:
        by = viewer()
        shown = desk.review(review_id)
        looked(shown["decisions"][:1], by)
        standing = desk.standing(review_id)
        schema = desk.redeciders.of(standing).schema
        contested = shown["decisions"][0]
        looks = [{"at": utc(e["at"]), "kind": "looked", "by": e["content"]["by"], "content": {"page": e["content"]["page"]}}
                 for e in desk.store.events_of(contested["request_id"], contested["row"]) if e["kind"] == "looked"]
        timeline = sorted([*shown["events"], *looks], key=lambda e: e["at"])
        return page("review.html", by, review=shown, standing=standing, schema=schema, actions=ACTIONS, timeline=timeline,
                    inputs=named_inputs(standing["inputs"], schema.feature_names), is_open=shown["status"] in (OPEN, PROPOSED))

    @app.post("/reviews/<int:review_id>/corrections")
    def correct_page(review_id: int) -> Response:
        by, fields = form()
        standing = desk.standing(review_id)
        schema = desk.redeciders.of(standing).schema
        before = named_inputs(standing["inputs"], schema.feature_names)
        corrections = {}
        for name in schema.feature_names:
            given = fields.get(f"input:{name}")
            if given is not None:
                value = _value(given, name in schema.numeric_features)
                if value != before.get(name):
                    corrections[name] = value
        desk.correct(review_id, corrections, by, fields.get("note") or None)
        return redirect(f"/reviews/{review_id}", 303)

    @app.post("/reviews/<int:review_id>/actions")
    def act_page(review_id: int) -> Response:
        by, fields = form()
        desk.act(review_id, fields.get("action", ""), fields.get("reason", ""), by)
        return redirect(f"/reviews/{review_id}", 303)


def _selection(asked: Mapping[str, str]) -> Selection:
    """The search form's selection: dates (ISO 8601, UTC), a decision, a model version, a group (attribute=group)."""
    def moment(name: str) -> datetime | None:
        text = asked.get(name, "").strip()
        if not text:
            return None
        try:
            return utc(datetime.fromisoformat(text))
        except ValueError:
            raise InputError(f"{name} must be a date or time (ISO 8601: 2026-03-01 or 2026-03-01T14:00), not "
                             f"{text[:32]!r}") from None

    decision = asked.get("decision") or None
    if decision not in (None, *CLASS_NAMES):
        raise InputError(f"decision must be {' or '.join(CLASS_NAMES)}, not {decision[:16]!r}")
    group = None
    if asked.get("group", "").strip():
        attribute, equals, value = asked["group"].strip().partition("=")
        if not equals or not attribute or not value:
            raise InputError(f"group must be attribute=group (gender=Female), not {asked['group'][:64]!r}")
        group = (attribute, value)
    return Selection(moment("since"), moment("until"), decision, asked.get("model", "").strip() or None, group)


def _value(text: str, numeric: bool) -> Any:
    """A form's value as the record holds one: empty is missing; a numeric input's a number when it reads as one."""
    text = text.strip()
    if not text:
        return None
    if numeric:
        try:
            number = float(text)
        except ValueError:
            return text  # refused by the schema's rule, which names the input
        return int(number) if number.is_integer() else number
    return text
