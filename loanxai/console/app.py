"""The console's Flask app: the API and the pages on one app, one error handler for both.

An error on an API path (``/api/``, ``/health/``) is answered in the services' JSON shape; on a
page, as a page saying what was wrong, with the same status. A failing database, or a record
the console's settings cannot serve (a model's artifacts not given), is a 503 (the console's log
says why).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, Response, render_template, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from loanxai.console.api import register_api
from loanxai.console.explanations import ExplainerCalls
from loanxai.console.figures import register_figures
from loanxai.console.pages import register_pages
from loanxai.console.session import Pages
from loanxai.errors import (
    InputError,
    LoanError,
    MethodNotAllowed,
    NotFound,
    RecordError,
    RecordUnavailable,
    RequestTooLarge,
    SettingError,
)
from loanxai.records.notices import Letterhead
from loanxai.records.reviews import ReviewDesk
from loanxai.serving.auth import TokenVerifier
from loanxai.serving.server.guards import StrictJSON, error_answer

__all__ = ["console_app"]

logger = logging.getLogger(__name__)


def console_app(desk: ReviewDesk, verifier: TokenVerifier | None, max_body_bytes: int,
                letterhead: Letterhead | SettingError, explainer: ExplainerCalls) -> Flask:
    """The console over ``desk``: its API and pages; ``verifier`` checks every caller's token (None:
    LOAN_AUTH=off); ``letterhead``: who sends notices, or why the console cannot send any;
    ``explainer``: where explanations are asked."""
    app = Flask(__name__)
    app.json = StrictJSON(app)
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    register_api(app, desk, verifier)
    pages = Pages(desk, verifier)
    register_pages(app, pages, letterhead, explainer)
    register_figures(app, pages)

    @app.errorhandler(LoanError)
    def refused(error: LoanError) -> Response:
        if request.path.startswith(("/api/", "/health/")):
            return error_answer(error)
        page = render_template("error.html", error=error, auth=verifier is not None)
        return Response(page, status=error.status_code, headers=error.headers, mimetype="text/html")

    @app.errorhandler(RecordError)
    def record_refused(error: RecordError) -> Response:
        # the record or the console's settings cannot serve it (a model's artifacts missing): not the caller's doing
        logger.error("%s", error.message)
        return refused(RecordUnavailable(error.message))

    @app.errorhandler(SQLAlchemyError)
    def record_failed(error: SQLAlchemyError) -> Response:
        logger.error("the record at %s cannot be read: %s", desk.store.shown_url, error)
        return refused(RecordUnavailable("the record cannot be read (its database failed; the console's log says "
                                         "why): retry in a moment"))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        known: dict[int | None, Callable[[], LoanError]] = {
            404: lambda: NotFound(f"no such path: {request.path}"),
            405: lambda: MethodNotAllowed(f"{request.path} does not take {request.method}",
                                          allow=", ".join(sorted(error.valid_methods or ()))),  # type: ignore[attr-defined]
            413: lambda: RequestTooLarge(f"request body larger than {max_body_bytes} bytes (LOAN_MAX_BODY_BYTES)"),
        }
        return refused(known.get(error.code, lambda: InputError(error.description or "bad request"))())

    return app
