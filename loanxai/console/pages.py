"""The console's pages for people: the queue, search, an application's decisions and notice, a review.

The pages: the queue (``/``), a search of decisions by date range, decision, model version and
group (``/search``), an application's decisions with the timeline of everything that followed
them (``/decisions``), its newest action's notice in HTML or PDF (``/notice``), a review and its
forms (``/reviews/<id>``). Server-rendered (Jinja, autoescaped: what callers and applicants
wrote is shown as text, never run). Pages take ``review`` and ``audit``; only ``review`` may
act. Sessions, CSRF and the record of who looked: :mod:`~loanxai.console.session`. With
``LOAN_AUTH=off`` every page says it is for local use only.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import jwt
from flask import Flask, Response, redirect, render_template, request

from loanxai.console.explanations import ExplainerCalls
from loanxai.console.session import PAGE_ROLES, SESSION_COOKIE, SESSION_SECONDS, Pages, asked_moment
from loanxai.core.codecs import EXPLAIN_KINDS
from loanxai.core.schema import CLASS_NAMES
from loanxai.errors import InputError, NotFound, NoticeUnavailable, RecordError, SettingError
from loanxai.records.notices import Letterhead, action_notice, notice_file_name, notice_pdf_bytes
from loanxai.records.queries import Selection, event_text, select_decisions, utc
from loanxai.records.reviews import ACTIONS, OPEN, PROPOSED, named_inputs

__all__ = ["NOTICE_MEDIA", "register_pages"]

#: most decisions one search shows, the newest first
SEARCH_LIMIT = 200
#: a notice's formats, and what each is served as
NOTICE_MEDIA = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}


def register_pages(app: Flask, pages: Pages, letterhead: Letterhead | SettingError, explainer: ExplainerCalls) -> None:
    """Add the pages to the console's ``app``; ``letterhead``: who sends notices (or why no notice can be
    sent); ``explainer``: where explanations are asked."""
    desk = pages.desk

    @app.get("/login")
    def login_form() -> str:
        return render_template("login.html", auth=pages.verifier is not None, by=None)

    @app.post("/login")
    def login_page() -> Response:
        token = request.form.get("token", "").strip()
        kept = SESSION_SECONDS
        if pages.verifier is not None:
            pages.verifier.caller(f"Bearer {token}", PAGE_ROLES, "the console")
            # the cookie ends with its token: a mesh refuses an expired one on every page, the login page included
            expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
            kept = SESSION_SECONDS if expires is None else max(0, min(SESSION_SECONDS, int(expires - time.time())))
        answer = redirect("/", 303)
        answer.set_cookie(SESSION_COOKIE, token, max_age=kept, httponly=True, samesite="Strict",
                          secure=request.is_secure)
        return answer

    @app.post("/logout")
    def logout_page() -> Response:
        pages.form(PAGE_ROLES)
        answer = redirect("/login", 303)
        answer.delete_cookie(SESSION_COOKIE)
        return answer

    @app.get("/")
    def queue_page() -> str:
        by = pages.viewer()
        return pages.page("queue.html", by, reviews=desk.queue((OPEN, PROPOSED), 500), now=datetime.now(UTC))

    @app.get("/decisions")
    def decisions_page() -> str:
        by = pages.viewer()
        application_id = request.args.get("application_id", "")
        found = _decisions_of(pages, application_id) if application_id else []
        pages.looked(found, by)
        reviews = desk.reviews_of(application_id) if application_id else []
        explained = [e for e in desk.store.events_of(found[-1]["request_id"], found[-1]["row"])
                     if e["kind"] in EXPLAIN_KINDS] if found else []
        return pages.page("decision.html", by, application_id=application_id, decisions=found, reviews=reviews,
                          timeline=_timeline(pages, found, reviews), explained=explained,
                          may_explain=bool(explainer.url))

    @app.post("/decisions/explanations")
    def explain_page() -> Response:
        pages.form(PAGE_ROLES)
        application_id = request.form.get("application_id", "")
        newest = _decisions_of(pages, application_id)[-1]
        explainer.ask(newest, desk.redeciders.of(newest).schema.feature_names, request.form.get("kind", ""),
                      pages.token())
        return redirect(f"/decisions?application_id={quote(application_id, safe='')}#explanations", 303)

    @app.get("/notice")
    def notice_page() -> Response:
        by = pages.viewer()
        application_id, kind = request.args.get("application_id", ""), request.args.get("format", "html")
        if kind not in NOTICE_MEDIA:
            raise InputError(f"format must be {' or '.join(NOTICE_MEDIA)}, not {kind[:16]!r}")
        found = _decisions_of(pages, application_id)
        if isinstance(letterhead, SettingError):
            raise NoticeUnavailable(f"this console renders no notice: {letterhead.message}")
        try:
            record, html = action_notice(found, desk.redeciders.of, letterhead)
        except RecordError as error:
            if not any(r["decision"] == "rejected" for r in found):
                raise NotFound(error.message) from None
            raise
        pages.looked([record], by)
        content = html.encode() if kind == "html" else notice_pdf_bytes(html, record["decided_at"])
        name = notice_file_name(application_id, f".{kind}")
        return Response(content, mimetype=NOTICE_MEDIA[kind],
                        headers={"Content-Disposition": f"inline; filename*=UTF-8''{name}"})

    @app.get("/search")
    def search_page() -> str:
        by = pages.viewer()
        selection = _selection(request.args)
        found = list(select_decisions(desk.store, selection, SEARCH_LIMIT, newest_first=True)) if request.args else []
        pages.looked(found, by)
        return pages.page("search.html", by, found=found, asked=request.args, limit=SEARCH_LIMIT,
                          class_names=CLASS_NAMES)

    @app.post("/reviews")
    def open_review_page() -> Response:
        by, fields = pages.form()
        review_id = desk.open(fields.get("application_id", ""), fields.get("grounds", ""), by)
        return redirect(f"/reviews/{review_id}", 303)

    @app.get("/reviews/<int:review_id>")
    def review_page(review_id: int) -> str:
        by = pages.viewer()
        shown = desk.review(review_id)
        pages.looked(shown["decisions"][:1], by)
        standing = desk.standing(review_id)
        schema = desk.redeciders.of(standing).schema
        contested = shown["decisions"][0]
        looks = [{"at": utc(e["at"]), "kind": "looked", "by": e["content"]["by"], "content": {"page": e["content"]["page"]}}
                 for e in desk.store.events_of(contested["request_id"], contested["row"]) if e["kind"] == "looked"]
        timeline = sorted([*shown["events"], *looks], key=lambda e: e["at"])
        return pages.page("review.html", by, review=shown, standing=standing, schema=schema, actions=ACTIONS,
                          timeline=timeline, inputs=named_inputs(standing["inputs"], schema.feature_names),
                          is_open=shown["status"] in (OPEN, PROPOSED))

    @app.post("/reviews/<int:review_id>/corrections")
    def correct_page(review_id: int) -> Response:
        by, fields = pages.form()
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
        by, fields = pages.form()
        desk.act(review_id, fields.get("action", ""), fields.get("reason", ""), by)
        return redirect(f"/reviews/{review_id}", 303)


def _decisions_of(pages: Pages, application_id: str) -> list[dict[str, Any]]:
    """An application's decisions, oldest first; 404 when the record has none."""
    found = pages.desk.store.decisions_of_application(application_id)
    if not found:
        raise NotFound(f"application {application_id[:64]!r} has no decision on the record")
    return found


def _timeline(pages: Pages, found: list[Mapping[str, Any]], reviews: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Everything that happened to an application, oldest first: each decision, what followed it
    (outcomes, explanations, who looked), each step of its reviews; each ``at``, ``what``, ``by``."""
    moments: list[dict[str, Any]] = []
    for record in found:
        who = ", ".join(r["subject"] for r in record["decided_by"] or []) or "the model"
        moments.append({"at": utc(record["decided_at"]), "what": f"{record['decision']} (request {record['request_id']}, "
                        f"row {record['row']}, model {record['model_version']})", "by": who})
        for event in pages.desk.store.events_of(record["request_id"], record["row"]):
            if event["kind"] == "looked":
                by = event["content"]["by"]
                moments.append({"at": utc(event["at"]), "what": f"shown in the console, page {event['content']['page']}",
                                "by": f"{by['subject']} ({by['role']})"})
            else:
                moments.append({"at": utc(event["at"]), "what": event_text(event), "by": ""})
    for review in reviews:
        for event in pages.desk.review(review["id"])["events"]:
            said = "; ".join(f"{k}: {v}" for k, v in event["content"].items() if k != "by" and v is not None)
            moments.append({"at": utc(event["at"]), "what": f"review {review['id']} {event['kind']}: {said}",
                            "by": f"{event['by']['subject']} ({event['by']['role']})"})
    return sorted(moments, key=lambda m: m["at"])


def _selection(asked: Mapping[str, str]) -> Selection:
    """The search form's selection: dates (ISO 8601, UTC), a decision, a model version, a group (attribute=group)."""
    decision = asked.get("decision") or None
    if decision not in (None, *CLASS_NAMES):
        raise InputError(f"decision must be {' or '.join(CLASS_NAMES)}, not {decision[:16]!r}")
    group = None
    if asked.get("group", "").strip():
        attribute, equals, value = asked["group"].strip().partition("=")
        if not equals or not attribute or not value:
            raise InputError(f"group must be attribute=group (gender=Female), not {asked['group'][:64]!r}")
        group = (attribute, value)
    return Selection(asked_moment("since", asked), asked_moment("until", asked), decision,
                     asked.get("model", "").strip() or None, group)


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
