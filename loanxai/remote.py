"""The classifier as the explainer sees it: a predict function over REST."""
from __future__ import annotations

import logging

import numpy as np
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from loanxai.config import Settings

logger = logging.getLogger(__name__)


class ClassifierUnavailable(RuntimeError):
    """The classifier could not be reached or did not answer in time."""


class ClassifierError(RuntimeError):
    """The classifier answered, but not with probabilities."""


class RemoteClassifier:
    """Calls the classifier's predictions endpoint with encoded rows.

    One HTTP session with keep-alive; connection errors are retried ``retries`` times with a
    short backoff (safe: the request never reached the server); read timeouts are not retried.
    """

    def __init__(self, url: str, connect_timeout: float, read_timeout: float, retries: int) -> None:
        self.url = url
        self.timeout = (connect_timeout, read_timeout)
        self.calls = 0
        self.rows = 0
        retry = Retry(
            total=retries, connect=retries, read=0, status=0, other=0, redirect=0,
            backoff_factor=0.05, raise_on_status=False,
        )
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=4))
        self.session.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=4))

    @classmethod
    def from_settings(cls, settings: Settings) -> "RemoteClassifier":
        return cls(
            settings.classifier_url,
            settings.classifier_connect_timeout,
            settings.classifier_read_timeout,
            settings.classifier_retries,
        )

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities of (rejected, approved) for encoded rows, shape (n, n_features) -> (n, 2)."""
        try:
            response = self.session.post(
                self.url, json={"data": {"ndarray": np.asarray(X, dtype=float).tolist()}}, timeout=self.timeout
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            raise ClassifierUnavailable(
                f"the classifier at {self.url} is unreachable ({type(error).__name__})"
            ) from error
        if response.status_code != 200:
            raise ClassifierError(
                f"the classifier at {self.url} answered {response.status_code}: {response.text[:300]}"
            )
        self.calls += 1
        self.rows += len(X)
        return np.asarray(response.json()["data"]["ndarray"], dtype=float)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class codes (0 rejected, 1 approved), shape (n,): alibi's predictor."""
        return self.predict_proba(X).argmax(axis=1)
