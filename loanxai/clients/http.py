"""The one HTTP client every caller of the services builds on: the Python client, the file
scorer, the replay, and the explainer's calls to the classifier.

A :func:`session` keeps connections alive and retries a request whose *connection* failed
(safe: it never reached the server), never one that was sent. :func:`pool` does the same with
urllib3 alone, for the explainer's calls: requests' own work (preparing each request, its
hooks and cookies) was 0.3 ms of each 3.5 ms call, alternated by hand on 2026-12-08 (docs: Performance). :func:`answer` reads a
service's answer: the JSON body of a 200, or else :class:`~loanxai.errors.ServiceError`
with the status and the service's own words (Seldon's ``status.info``).
"""
from __future__ import annotations

import json
import os
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from loanxai.errors import ServiceError, SettingError

__all__ = ["DEFAULT_CLASSIFIER_URL", "DEFAULT_EXPLAINER_URL", "PREDICTIONS_PATH", "METADATA_PATH", "FEEDBACK_PATH",
           "answer", "error_info", "pool", "reason", "session"]

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
    http = requests.Session()
    for prefix in ("http://", "https://"):
        http.mount(prefix, HTTPAdapter(max_retries=_connect_retries(connect_retries), pool_maxsize=pool))
    if url is not None:
        http.proxies, http.verify, http.auth = _environment(url)
        http.trust_env = False
    return http


def pool(url: str, connect_retries: int = 0, size: int = 4) -> urllib3.PoolManager:
    """What :func:`session` is for the one service at ``url``, as a urllib3 pool: keep-alive,
    ``size`` connections, failed connections retried ``connect_retries`` times, and what requests
    would take from the environment for ``url`` (its proxy, ``REQUESTS_CA_BUNDLE``, a ``.netrc``
    login) read once, here."""
    proxies, verify, login = _environment(url)
    headers = urllib3.make_headers(basic_auth=":".join(login)) if login else {}
    options = {"num_pools": 1, "maxsize": size, "retries": _connect_retries(connect_retries), "headers": headers,
               **_verified_by(verify)}
    proxy = requests.utils.select_proxy(url, proxies)
    if not proxy:
        return urllib3.PoolManager(**options)
    # as requests' adapter takes a proxy: "host:port" is plain HTTP, a login in its URL is sent to it
    proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")
    if not proxy.lower().startswith(("http://", "https://")):
        raise SettingError(f"the proxy the environment names for {url} ({urllib3.util.parse_url(proxy).scheme}://..., "
                           "HTTP_PROXY or HTTPS_PROXY) is not an HTTP proxy: name the service in NO_PROXY")
    user, password = requests.utils.get_auth_from_url(proxy)
    proxy_headers = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}") if user else None
    return urllib3.ProxyManager(proxy, proxy_headers=proxy_headers, **options)


def _environment(url: str) -> tuple[dict[str, str], bool | str, tuple[str, str] | None]:
    """What requests takes from the environment for ``url``: its proxies, its ``verify`` (a CA
    bundle from ``REQUESTS_CA_BUNDLE``, or True) and its ``.netrc`` login (None without one)."""
    found = requests.Session().merge_environment_settings(url, {}, None, None, None)
    return found["proxies"], found["verify"], requests.utils.get_netrc_auth(url)


def _verified_by(verify: bool | str) -> dict[str, str]:
    """urllib3's TLS options for requests' ``verify``: off, a CA bundle or folder, or certifi's bundle."""
    if verify is False:
        return {"cert_reqs": "CERT_NONE"}
    where = requests.utils.DEFAULT_CA_BUNDLE_PATH if verify is True else verify
    return {"cert_reqs": "CERT_REQUIRED", ("ca_cert_dir" if os.path.isdir(where) else "ca_certs"): where}


def _connect_retries(times: int) -> Retry:
    """Retry a failed connection ``times`` times with a short backoff; never a request that was sent."""
    return Retry(total=times, connect=times, read=0, status=0, other=0, redirect=0, backoff_factor=0.05,
                 raise_on_status=False)


def error_info(response: requests.Response) -> str:
    """A service's reason for an error answer: Seldon's ``status.info``, else the start of the body."""
    return reason(response.content)


def reason(body: bytes) -> str:
    """A service's reason in an error answer's ``body``: Seldon's ``status.info``, else its start."""
    try:
        return str(json.loads(body)["status"]["info"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace")[:_TEXT_SHOWN]


def answer(response: requests.Response) -> Any:
    """The JSON body of a 200 answer; :class:`~loanxai.errors.ServiceError` for any other status."""
    if response.status_code != 200:
        raise ServiceError(response.status_code, error_info(response))
    return response.json()
