"""Explanations asked from the console: the explainer service called with the asker's own token.

A reviewer or auditor asks, on an application's page, for the anchor or the recourse of its
newest decision. The console sends the decision's inputs as recorded, with its application id,
to the explainer (``LOAN_REVIEW_EXPLAINER_URL``) over REST, in the asker's name: the explainer
checks their role and budget, explains and records the explanation with who asked, as for any
caller. The page then shows it from the record.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from loanxai.clients.api import bearer
from loanxai.clients.http import PREDICTIONS_PATH, answer, session
from loanxai.core.codecs import EXPLAIN_KINDS
from loanxai.errors import ExplainerUnavailable, InputError, ServiceError
from loanxai.records.reviews import named_inputs

__all__ = ["EXPLAIN_TIMEOUT", "ExplainerCalls"]

#: seconds the console waits for an explanation (the explainer's own budget, 15 s by default, ends it sooner)
EXPLAIN_TIMEOUT = 60.0


class ExplainerCalls:
    """Calls of the explainer at ``url`` (empty: the console offers no explanations)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._session = session(connect_retries=1, url=self.url or None)

    def ask(self, record: Mapping[str, Any], names: tuple[str, ...], kind: str, token: str | None) -> dict[str, Any]:
        """The explainer's ``kind`` (anchor or recourse) of ``record``, asked with ``token``; the
        explainer records it. Its refusals keep their status (403 for a role it does not take)."""
        if not self.url:
            raise ExplainerUnavailable("this console offers no explanations: set LOAN_REVIEW_EXPLAINER_URL to the "
                                    "explainer's base URL")
        if kind not in EXPLAIN_KINDS:
            raise InputError(f"kind must be {' or '.join(EXPLAIN_KINDS)}, not {kind[:16]!r}")
        message = {"jsonData": named_inputs(record["inputs"], names),
                   "meta": {"tags": {"application_ids": [record["application_id"]], "kind": kind}}}
        try:
            return answer(self._session.post(self.url + PREDICTIONS_PATH, json=message, headers=bearer(token),
                                             timeout=EXPLAIN_TIMEOUT))["jsonData"]
        except requests.RequestException as error:
            raise ExplainerUnavailable(f"the explainer at {self.url} cannot be reached: {type(error).__name__}") from None
        except ServiceError as error:
            if error.status_code >= 500:
                raise ExplainerUnavailable(f"the explainer failed: {error.message}") from None
            raise
