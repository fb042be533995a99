"""A browser's session in the console, and what every page does with it.

With ``LOAN_AUTH=on`` a session is a token: pasted on the login page and kept in an HttpOnly,
SameSite=Strict cookie, or sent by an authenticating proxy in ``Authorization: Bearer``; it is
checked on every request, as the API checks it. Every form carries a CSRF token (an HMAC of the
session's token under a key the process makes at start); a form without it is refused 403.
Every page showing an application records that it was looked at (who, when, which page) as an
event of the decision (kind ``looked``).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import abort, redirect, render_template, request
from werkzeug.datastructures import MultiDict

from loanxai.console.api import NO_AUTH
from loanxai.core.roles import REVIEW_ROLES
from loanxai.errors import Forbidden, InputError
from loanxai.records.queries import utc
from loanxai.records.reviews import ReviewDesk
from loanxai.serving.auth import TokenVerifier

__all__ = ["CSRF_FIELD", "PAGE_ROLES", "SESSION_COOKIE", "SESSION_SECONDS", "Pages", "asked_moment"]

#: the cookie a pasted token is kept in
SESSION_COOKIE = "loanxai_session"
#: the hidden field every form carries its CSRF token in
CSRF_FIELD = "csrf"
#: who may read the pages: reviewers and auditors (auditors act on nothing)
PAGE_ROLES = REVIEW_ROLES | {"audit"}
#: how long a browser keeps the session cookie, in seconds (the token's own expiry ends it sooner)
SESSION_SECONDS = 8 * 3600


class Pages:
    """The session of the request being answered, and the rendering every page shares."""

    def __init__(self, desk: ReviewDesk, verifier: TokenVerifier | None) -> None:
        self.desk = desk
        self.verifier = verifier
        self._key = secrets.token_bytes(32)  # made before the workers fork: every worker checks the same tokens

    @staticmethod
    def token() -> str | None:
        """The session's token: a proxy's bearer header, else the cookie."""
        header = request.headers.get("Authorization", "")
        return header.partition(" ")[2].strip() if header.lower().startswith("bearer ") else \
            request.cookies.get(SESSION_COOKIE)

    def viewer(self, roles: frozenset[str] = PAGE_ROLES) -> dict[str, str]:
        """Who asks (subject, role); no session: to the login page; a role not in ``roles``: 403."""
        if self.verifier is None:
            return dict(NO_AUTH)
        token = self.token()
        if not token:
            abort(redirect("/login", 303))
        return self.verifier.caller(f"Bearer {token}", roles, request.path).to_dict()

    def csrf(self) -> str:
        """The session's CSRF token."""
        return hmac.new(self._key, (self.token() or "off").encode(), hashlib.sha256).hexdigest()

    def form(self, roles: frozenset[str] = REVIEW_ROLES) -> tuple[dict[str, str], MultiDict]:
        """Who sent the form, and its fields; 403 without this session's CSRF token."""
        by = self.viewer(roles)
        if not hmac.compare_digest(request.form.get(CSRF_FIELD, ""), self.csrf()):
            raise Forbidden("the form's CSRF token is missing or not this session's: reload the page and send it again")
        return by, request.form

    def page(self, template: str, by: Mapping[str, str], **values: Any) -> str:
        """``template`` rendered for ``by``."""
        return render_template(template, by=by, auth=self.verifier is not None, csrf=self.csrf(),
                               may_act=self.verifier is None or by["role"] in REVIEW_ROLES, **values)

    def looked(self, shown: list[Mapping[str, Any]], by: Mapping[str, str]) -> None:
        """Record that ``by`` was shown the decisions ``shown`` on this page."""
        self.desk.store.looked(shown, {"by": dict(by), "page": request.full_path.rstrip("?")}, datetime.now(UTC))


def asked_moment(name: str, asked: Mapping[str, str]) -> datetime | None:
    """A form's date or time ``name`` (ISO 8601, UTC when no offset is given); None when empty."""
    text = asked.get(name, "").strip()
    if not text:
        return None
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise InputError(f"{name} must be a date or time (ISO 8601: 2026-03-01 or 2026-03-01T14:00), not "
                         f"{text[:32]!r}") from None
