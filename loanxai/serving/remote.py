"""The classifier as the explainer sees it: a predict function over REST."""
from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import requests

from loanxai.clients.http import METADATA_PATH, PREDICTIONS_PATH, error_info, session
from loanxai.config import ServiceSettings
from loanxai.core.schema import CLASS_NAMES
from loanxai.errors import BudgetExceeded, CallerGone, ClassifierError, ClassifierUnavailable

__all__ = ["RemoteClassifier"]

logger = logging.getLogger(__name__)


class RemoteClassifier:
    """Calls the classifier's predictions endpoint with encoded rows.

    One HTTP session with keep-alive (:func:`loanxai.clients.http.session`); connection errors
    are retried ``retries`` times with a short backoff (safe: the request never reached the
    server); read timeouts are not retried. Rows are sent in batches of at most the classifier's
    ``max_batch_rows`` (from its metadata, read on the first call). With ``token_file``, every
    call carries the bearer token it holds (read again when the file changes: tokens expire and
    are replaced).
    """

    def __init__(self, url: str, connect_timeout: float, read_timeout: float, retries: int,
                 token_file: Path | None = None) -> None:
        self.url = url
        self.token_file = token_file
        self._token: tuple[float, str] | None = None
        self.timeout = (connect_timeout, read_timeout)
        self.calls = 0
        self.rows = 0
        self.deadline = math.inf
        self.budget_s = math.inf
        self.present: Callable[[], bool] = lambda: True
        self.batch_rows: int | None = None
        self.session = session(connect_retries=retries)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> RemoteClassifier:
        """The classifier the settings name, with their timeouts and retries."""
        return cls(settings.classifier_url, settings.classifier_connect_timeout, settings.classifier_read_timeout,
                   settings.classifier_retries, settings.classifier_token_file)

    @contextlib.contextmanager
    def budget(self, seconds: float, since: float | None = None,
               present: Callable[[], bool] | None = None) -> Iterator[None]:
        """Within the block, a call to the classifier ``seconds`` after ``since`` (a
        ``time.monotonic()``; default: now) raises :class:`~loanxai.errors.BudgetExceeded` (and
        no call waits beyond the deadline), and one after ``present()`` turned false raises
        :class:`~loanxai.errors.CallerGone`: how an explanation is stopped, as alibi and DiCE
        call the classifier every few milliseconds."""
        self.deadline = (time.monotonic() if since is None else since) + seconds
        self.budget_s, self.present = seconds, present or (lambda: True)
        try:
            yield
        finally:
            self.deadline, self.budget_s, self.present = math.inf, math.inf, lambda: True

    def classify(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The classifier's answer for encoded rows, shape (n, n_features): the probabilities of
        approval, shape (n,), and its decisions (True: approved, at its cutoff), shape (n,)."""
        if self.batch_rows is None:
            self.batch_rows = int(self._get_metadata()["custom"]["max_batch_rows"])
        X = np.asarray(X, dtype=float)
        answers = [self._post(X[i:i + self.batch_rows]) for i in range(0, max(len(X), 1), self.batch_rows)]
        return np.concatenate([a for a, _ in answers]), np.concatenate([d for _, d in answers])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The classifier's decisions as class codes (0 rejected, 1 approved), shape (n,): the anchors' predictor."""
        return self.classify(X)[1].astype(np.intp)

    def _get_metadata(self) -> dict:
        url = self.url.removesuffix(PREDICTIONS_PATH) + METADATA_PATH
        try:
            response = self.session.get(url, timeout=self.timeout, headers=self._headers())
        except (requests.ConnectionError, requests.Timeout) as error:
            raise ClassifierUnavailable(f"the classifier at {self.url} is unreachable ({type(error).__name__})") from error
        if response.status_code != 200:
            raise ClassifierError(f"the classifier's metadata at {url} answered {response.status_code}: {error_info(response)}")
        return response.json()

    def _headers(self) -> dict[str, str] | None:
        """The Authorization header of the token file's token (None without a token file)."""
        if self.token_file is None:
            return None
        try:
            changed = self.token_file.stat().st_mtime
            if self._token is None or self._token[0] != changed:
                self._token = (changed, self.token_file.read_text().strip())
        except OSError as error:
            raise ClassifierUnavailable(f"cannot read the classifier's token from {self.token_file} "
                                        f"(LOAN_CLASSIFIER_TOKEN_FILE): {error.strerror}") from None
        return {"Authorization": f"Bearer {self._token[1]}"}

    def _post(self, X: np.ndarray) -> np.ndarray:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise BudgetExceeded(f"the explanation used up its time budget of {self.budget_s:g} s (LOAN_EXPLAIN_BUDGET)")
        if not self.present():
            raise CallerGone("the caller left while its explanation ran: abandoned")
        try:
            response = self.session.post(
                # perturbed samples, not applicants: the classifier does not count them as decisions
                self.url, json={"data": {"ndarray": X.tolist()}, "meta": {"tags": {"purpose": "explanation"}}},
                timeout=(self.timeout[0], min(self.timeout[1], remaining)), headers=self._headers(),
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            if time.monotonic() >= self.deadline:
                raise BudgetExceeded(f"the explanation used up its time budget of {self.budget_s:g} s "
                                     "(LOAN_EXPLAIN_BUDGET)") from error
            raise ClassifierUnavailable(f"the classifier at {self.url} is unreachable ({type(error).__name__})") from error
        if response.status_code != 200:
            raise ClassifierError(f"the classifier at {self.url} answered {response.status_code}: {error_info(response)}")
        self.calls += 1
        self.rows += len(X)
        answer = response.json()
        approved = np.array([d == CLASS_NAMES[1] for d in answer["meta"]["tags"]["decisions"]], dtype=bool)
        return np.asarray(answer["data"]["ndarray"], dtype=float)[:, 1], approved
