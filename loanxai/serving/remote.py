"""The classifier as the explainer sees it: a predict function over REST, asking for sampled rows with the sampling key."""
from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import urllib3

from loanxai.clients.http import METADATA_PATH, PREDICTIONS_PATH, pool, reason
from loanxai.config import ServiceSettings
from loanxai.core.schema import CLASS_NAMES
from loanxai.errors import BudgetExceeded, CallerGone, ClassifierError, ClassifierUnavailable, LoanError, SettingError
from loanxai.serving.auth import SAMPLING_HEADER, SecretFile

__all__ = ["RemoteClassifier"]

logger = logging.getLogger(__name__)


class RemoteClassifier:
    """Calls the classifier's predictions endpoint with encoded rows.

    One pool of keep-alive connections (:func:`loanxai.clients.http.pool`); connection errors
    are retried ``retries`` times with a short backoff (safe: the request never reached the
    server); read timeouts are not retried. Within an explanation (:meth:`budget`) each distinct
    row is asked once, in whichever call first has it: an anchor's samples repeat rows within a
    call and across calls. Rows are sent in batches of at most the classifier's
    ``max_batch_rows`` (from its metadata, read on the first call). Every call carries the
    sampling key of ``sampling_key_file`` (the classifier answers sampled rows only with it) and,
    with ``token_file``, the bearer token it holds (both read again when their file changes: they
    are rotated). Messages never name the classifier's URL (they reach callers): the log does.
    """

    def __init__(self, url: str, connect_timeout: float, read_timeout: float, retries: int,
                 sampling_key_file: Path, token_file: Path | None = None) -> None:
        self.url = url
        self.sampling_key = SecretFile(sampling_key_file, "LOAN_SAMPLING_KEY_FILE")
        self.token = None if token_file is None else SecretFile(token_file, "LOAN_CLASSIFIER_TOKEN_FILE")
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.calls = 0
        self.rows = 0
        self.deadline = math.inf
        self.budget_s = math.inf
        self.present: Callable[[], bool] = lambda: True
        self.reserve: Callable[[int], None] = lambda rows: None
        self.batch_rows: int | None = None
        #: within an explanation, each row's answer (approval probability, approved) by its bytes
        self.answered: dict[bytes, tuple[float, bool]] | None = None
        self.http = pool(url, connect_retries=retries)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> RemoteClassifier:
        """The classifier the settings name, with their timeouts, retries and secrets (the sampling key is needed)."""
        if settings.sampling_key_file is None:
            raise SettingError("LOAN_SAMPLING_KEY_FILE is needed: the classifier answers the rows an explanation "
                               "samples only to requests carrying the sampling key it shares with the explainer")
        return cls(settings.classifier_url, settings.classifier_connect_timeout, settings.classifier_read_timeout,
                   settings.classifier_retries, settings.sampling_key_file, settings.classifier_token_file)

    @contextlib.contextmanager
    def budget(self, seconds: float, since: float | None = None, present: Callable[[], bool] | None = None,
               reserve: Callable[[int], None] | None = None) -> Iterator[None]:
        """Within the block, a call to the classifier ``seconds`` after ``since`` (a
        ``time.monotonic()``; default: now) raises :class:`~loanxai.errors.BudgetExceeded` (and
        no call waits beyond the deadline), and one after ``present()`` turned false raises
        :class:`~loanxai.errors.CallerGone`: how an explanation is stopped, as alibi and DiCE
        call the classifier every few milliseconds. ``reserve(rows)`` is called before each call
        (it raises to refuse it: the caller's budget of rows)."""
        self.deadline = (time.monotonic() if since is None else since) + seconds
        self.budget_s, self.present = seconds, present or (lambda: True)
        self.reserve = reserve or (lambda rows: None)
        self.answered = {}
        try:
            yield
        finally:
            self.deadline, self.budget_s, self.present = math.inf, math.inf, lambda: True
            self.reserve = lambda rows: None
            # another explanation may be of another model: a rollout changes the classifier's answers
            self.answered = None

    def classify(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The classifier's answer for encoded rows, shape (n, n_features): the probabilities of
        approval, shape (n,), and its decisions (True: approved, at its cutoff), shape (n,)."""
        self._check_budget()  # here too: a call whose rows were all answered before asks nothing
        if self.batch_rows is None:
            self.batch_rows = int(self._get_metadata()["custom"]["max_batch_rows"])
        # An anchor's samples repeat rows (a few features drawn from few bins): each distinct row
        # is asked once and its answer given to every copy (the classifier answers a row alike).
        distinct, copies = np.unique(np.asarray(X, dtype=float), axis=0, return_inverse=True)
        keys = [row.tobytes() for row in distinct]
        answered = {} if self.answered is None else self.answered
        new = [i for i, key in enumerate(keys) if key not in answered]
        for start in range(0, len(new), self.batch_rows):
            asked = new[start:start + self.batch_rows]
            approval, approved = self._post(distinct[asked])
            answered.update(zip((keys[i] for i in asked), zip(approval.tolist(), approved.tolist())))
        answers = [answered[key] for key in keys]
        copies = copies.reshape(-1)
        return (np.array([a for a, _ in answers], dtype=float)[copies],
                np.array([d for _, d in answers], dtype=bool)[copies])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The classifier's decisions as class codes (0 rejected, 1 approved), shape (n,): the anchors' predictor."""
        return self.classify(X)[1].astype(np.intp)

    def _get_metadata(self) -> dict:
        url = self.url.removesuffix(PREDICTIONS_PATH) + METADATA_PATH
        try:
            response = self.http.request("GET", url, headers=self._headers(), redirect=False,
                                         timeout=urllib3.Timeout(connect=self.connect_timeout, read=self.read_timeout))
        except urllib3.exceptions.HTTPError as error:
            raise self._unreachable(error) from error
        if response.status != 200:
            raise ClassifierError(f"the classifier's metadata answered {response.status}: {reason(response.data)}")
        return json.loads(response.data)

    def _unreachable(self, error: Exception) -> ClassifierUnavailable:
        logger.error("the classifier at %s is unreachable: %s", self.url, error)
        return ClassifierUnavailable(f"the classifier is unreachable ({type(error).__name__}; LOAN_CLASSIFIER_URL, the "
                                     "explainer's log names it)")

    def _headers(self) -> dict[str, str]:
        """The sampling key's header, and the Authorization header of the token file's token (if any)."""
        try:
            # the pool's own headers (a .netrc login) too: urllib3 sends a request's headers alone;
            # the token's, when there is one, in place of that login
            headers = {**self.http.headers, SAMPLING_HEADER: self.sampling_key.value()}
            if self.token is not None:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                headers["Authorization"] = f"Bearer {self.token.value()}"
        except LoanError as error:
            logger.error("%s", error.message)
            raise ClassifierUnavailable("the explainer cannot read its secrets for the classifier (its log says "
                                        "which)") from None
        return headers

    def _check_budget(self) -> float:
        """The seconds left of the explanation's budget; BudgetExceeded or CallerGone to stop it."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise BudgetExceeded(f"the explanation used up its time budget of {self.budget_s:g} s (LOAN_EXPLAIN_BUDGET)")
        if not self.present():
            raise CallerGone("the caller left while its explanation ran: abandoned")
        return remaining

    def _post(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        remaining = self._check_budget()
        headers = {**self._headers(), "Content-Type": "application/json"}
        self.reserve(len(X))  # the rows are the caller's before they are asked
        # perturbed samples, not applicants: never recorded, never counted as decisions
        body = json.dumps({"data": {"ndarray": X.tolist()}, "meta": {"tags": {"purpose": "explanation"}}})
        try:
            # a redirect is an answer like any other: the classifier never sends one
            response = self.http.request("POST", self.url, body=body.encode(), headers=headers, redirect=False,
                                         timeout=urllib3.Timeout(connect=self.connect_timeout,
                                                                 read=min(self.read_timeout, remaining)))
        except urllib3.exceptions.HTTPError as error:
            if time.monotonic() >= self.deadline:
                raise BudgetExceeded(f"the explanation used up its time budget of {self.budget_s:g} s "
                                     "(LOAN_EXPLAIN_BUDGET)") from error
            raise self._unreachable(error) from error
        finally:
            self.calls += 1
            self.rows += len(X)
        if response.status != 200:
            raise ClassifierError(f"the classifier answered {response.status}: {reason(response.data)}")
        answer = json.loads(response.data)
        approved = np.array([d == CLASS_NAMES[1] for d in answer["meta"]["tags"]["decisions"]], dtype=bool)
        return np.asarray(answer["data"]["ndarray"], dtype=float)[:, 1], approved
