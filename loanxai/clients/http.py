"""The one HTTP client every caller of the services builds on: the Python client, the file
scorer, the replay, and the explainer's calls to the classifier.

A :func:`session` keeps connections alive and retries a request whose *connection* failed
(safe: it never reached the server), never one that was sent. :func:`answer` reads a
service's answer: the JSON body of a 200, or else :class:`~loanxai.errors.ServiceError`
with the status and the service's own words (Seldon's ``status.info``).
"""
from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from loanxai.errors import ServiceError

__all__ = ["DEFAULT_CLASSIFIER_URL", "DEFAULT_EXPLAINER_URL", "PREDICTIONS_PATH", "METADATA_PATH", "FEEDBACK_PATH",
           "answer", "error_info", "session"]

#: where make run serves the two services
DEFAULT_CLASSIFIER_URL = "http://127.0.0.1:9000"
DEFAULT_EXPLAINER_URL = "http://127.0.0.1:9001"
#: Seldon's REST paths, below a service's base URL
PREDICTIONS_PATH = "/api/v1.0/predictions"
METADATA_PATH = "/api/v1.0/metadata"
FEEDBACK_PATH = "/api/v1.0/feedback"
#: characters of a body that is not Seldon's error shape kept in an error message
_TEXT_SHOWN = 300


def session(connect_retries: int = 0, pool: int = 4, url: str | None = None) -> requests.Session:
    """A keep-alive session retrying failed connections ``connect_retries`` times with a short
    backoff; ``pool``: connections kept per host (the concurrency it serves). Given the ``url``
    of the one service it calls, what requests takes from the environment for it (a proxy unless
    ``NO_PROXY`` names its host, ``REQUESTS_CA_BUNDLE``, a ``.netrc`` login) is read once, here:
    requests reads it again on every call, a few percent of an explainer's call (docs: Performance)."""
    retry = Retry(total=connect_retries, connect=connect_retries, read=0, status=0, other=0, redirect=0,
                  backoff_factor=0.05, raise_on_status=False)
    http = requests.Session()
    for prefix in ("http://", "https://"):
        http.mount(prefix, HTTPAdapter(max_retries=retry, pool_maxsize=pool))
    if url is not None:
        found = http.merge_environment_settings(url, {}, None, None, None)
        http.proxies, http.verify = found["proxies"], found["verify"]
        http.auth = requests.utils.get_netrc_auth(url)
        http.trust_env = False
    return http


def error_info(response: requests.Response) -> str:
    """A service's reason for an error answer: Seldon's ``status.info``, else the start of the body."""
    try:
        return str(response.json()["status"]["info"])
    except (ValueError, KeyError, TypeError):
        return response.text[:_TEXT_SHOWN]


def answer(response: requests.Response) -> Any:
    """The JSON body of a 200 answer; :class:`~loanxai.errors.ServiceError` for any other status."""
    if response.status_code != 200:
        raise ServiceError(response.status_code, error_info(response))
    return response.json()
