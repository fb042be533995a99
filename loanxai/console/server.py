"""``loanxai console``: the reviewer console's process.

It reads its settings once (``LOAN_RECORDS_URL`` and ``LOAN_AUTH*`` as the services do,
``LOAN_REVIEW_*`` and ``LOAN_CONSOLE_PORT``, the server's limits), checks the record is at the
newest migration (``loanxai records upgrade`` migrates it), loads every model whose
decisions may be contested, and serves with gunicorn's threaded workers behind the same request
deadlines as the services (:func:`~loanxai.serving.server.workers.serve_http`).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from loanxai.config import ReviewSettings, Settings
from loanxai.console.app import console_app
from loanxai.console.explanations import ExplainerCalls
from loanxai.core.cli import command_parser
from loanxai.errors import SettingError
from loanxai.records.notices import Letterhead
from loanxai.records.reviews import Redeciders, ReviewDesk
from loanxai.records.store import reading_store
from loanxai.serving.auth import verifier_of

__all__ = ["parser", "run"]

logger = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    root = command_parser(__doc__.splitlines()[0])
    root.add_argument("--port", type=int,
                      help=f"the HTTP port (default: LOAN_CONSOLE_PORT, else {ReviewSettings().console_port})")
    return root


def _letterhead(settings: Settings) -> Letterhead | SettingError:
    """Who sends notices; without LOAN_CREDITOR and the rest the console serves everything but notices."""
    try:
        return Letterhead.from_settings(settings.tool)
    except SettingError as error:
        logger.warning("no notices in the console: %s", error.message)
        return error


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Serve the console until a signal (``loanxai console``)."""
    server, service, review = settings.server, settings.service, settings.review
    port = review.console_port if args.port is None else args.port
    store = reading_store(None, service)
    desk = ReviewDesk(store, Redeciders([Path(folder) for folder in review.artifacts]), review.days,
                      review.second_reviewer)
    app = console_app(desk, verifier_of(service), server.max_body_bytes, _letterhead(settings),
                      ExplainerCalls(review.explainer_url))
    store.engine.dispose()  # each worker opens its own connections
    logger.info("reviewer console on %s:%d: %d models may be re-decided, contests due in %d days, a second "
                "reviewer %s", server.host, port, len(desk.redeciders.by_manifest), review.days,
                "required to reverse a rejection" if review.second_reviewer else "not required")
    from loanxai.serving.server.workers import serve_http  # gunicorn: not for --help

    serve_http(app, None, server, port, server.workers, counted=False)
