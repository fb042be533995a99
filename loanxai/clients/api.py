"""Calling the services from Python: plain REST with requests, or Seldon's ``SeldonClient``.

``loanxai client`` asks the classifier for its dataset's example application
(``GET /api/v1.0/metadata``), has it decided and explains that decision (by the application id
the classifier answered), both ways, and prints the answers readably. With ``LOAN_AUTH=on``
each service takes a bearer token: ``--classifier-token-file`` (role ``decide``) and
``--explainer-token-file`` (``explain`` or ``audit``).
"""
from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from loanxai.clients.http import (
    DEFAULT_CLASSIFIER_URL,
    DEFAULT_EXPLAINER_URL,
    METADATA_PATH,
    PREDICTIONS_PATH,
    answer,
    session,
)
from loanxai.config import ServiceSettings, Settings
from loanxai.core.cli import command_parser
from loanxai.errors import ServiceError

__all__ = ["LoanClient", "bearer", "describe_explanation", "describe_prediction", "parser", "predictions", "run",
           "seldon_client", "seldon_predict"]


class LoanClient:
    """REST client of the classifier and the explainer (base URLs, without the API path), with
    each service's bearer token when it checks them (``LOAN_AUTH=on``)."""

    def __init__(
        self,
        classifier_url: str = DEFAULT_CLASSIFIER_URL,
        explainer_url: str = DEFAULT_EXPLAINER_URL,
        timeout: float = 60.0,
        classifier_token: str | None = None,
        explainer_token: str | None = None,
    ) -> None:
        self.classifier_url = classifier_url.rstrip("/")
        self.explainer_url = explainer_url.rstrip("/")
        self.timeout = timeout
        self.headers = {self.classifier_url: bearer(classifier_token), self.explainer_url: bearer(explainer_token)}
        self.session = session()

    def metadata(self) -> dict[str, Any]:
        """The classifier's metadata: inputs (the feature schema), outputs, dataset, model version."""
        return answer(self.session.get(self.classifier_url + METADATA_PATH, timeout=self.timeout,
                                       headers=self.headers[self.classifier_url]))

    def example_application(self) -> dict[str, Any]:
        """An application of the classifier's dataset, from its metadata (what the demo sends)."""
        return json.loads(self.metadata()["custom"]["example_application"])

    def predict(self, applications: Mapping[str, Any] | list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """For each application, the classifier's ``decision`` (at its cutoff), its probabilities
        and the id its decision is recorded under: ``{"decision": "rejected", "rejected": p,
        "approved": 1 - p, "application_id": "..."}``."""
        return predictions(self._post(self.classifier_url, {"jsonData": applications}))

    def explain(self, application: Mapping[str, Any], application_id: str | None = None,
                **parameters: float) -> dict[str, Any]:
        """The anchor explanation of one application, of its recorded decision when
        ``application_id`` names it (``LOAN_AUTH=on`` needs it); ``parameters`` such as ``threshold=0.9``."""
        tags = {**parameters, **({"application_ids": [application_id]} if application_id else {})}
        message: dict[str, Any] = {"jsonData": application, **({"meta": {"tags": tags}} if tags else {})}
        return self._post(self.explainer_url, message)["jsonData"]

    def _post(self, service: str, message: dict[str, Any]) -> dict[str, Any]:
        return answer(self.session.post(service + PREDICTIONS_PATH, json=message, timeout=self.timeout,
                                        headers=self.headers[service]))


def bearer(token: str | None) -> dict[str, str] | None:
    """The Authorization header of ``token`` (None: no header)."""
    return {"Authorization": f"Bearer {token}"} if token else None


def seldon_client(url: str):
    """A ``SeldonClient`` for ``url``: a bare microservice (``http://host:port``) or a
    SeldonDeployment behind Seldon Core's Istio ingress (``http://host:port/seldon/<namespace>/<deployment>``)."""
    # seldon_core warns at import that tensorflow is missing; we never use tftensor
    logging.getLogger("seldon_core.imports_helper").setLevel(logging.ERROR)
    from seldon_core.seldon_client import SeldonClient

    parts = urlsplit(url)
    segments = parts.path.strip("/").split("/")
    if len(segments) == 3 and segments[0] == "seldon":
        return SeldonClient(gateway="istio", transport="rest", gateway_endpoint=parts.netloc,
                            namespace=segments[1], deployment_name=segments[2])
    return SeldonClient(gateway="seldon", transport="rest", gateway_endpoint=parts.netloc)


def seldon_predict(client, application: Mapping[str, Any], token: str | None = None,
                   **explain_parameters: Any) -> dict[str, Any]:
    """Send one application as a named ndarray with ``SeldonClient.predict`` (with ``token`` as
    its bearer token, if any); return the answer.

    To the explainer, ``explain_parameters`` travel as ``meta`` tags (``application_ids`` too).
    """
    names = list(application)
    row = np.array([[application[name] for name in names]], dtype=object)
    route = {}
    if token and client.config["gateway"] == "seldon":
        # SeldonClient 1.17 sends headers only through a gateway: the service's own address as
        # a gateway with an empty prefix is the same URL (/api/v1.0/predictions), with the token
        route = {"gateway": "istio", "gateway_prefix": "", "deployment_name": "microservice"}
    result = client.predict(data=row, names=names, payload_type="ndarray", meta=explain_parameters, headers=bearer(token),
                            **route)
    if not result.success:
        # msg is "<status>:<reason phrase>"; the service's own words are in the response body
        status, _, phrase = result.msg.partition(":")
        body = result.response if isinstance(result.response, dict) else {}
        raise ServiceError(int(status) if status.isdigit() else 0, body.get("status", {}).get("info", phrase))
    return result.response


def predictions(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each application's decision and probabilities from the classifier's answer."""
    names, tags = body["data"]["names"], body["meta"]["tags"]
    return [{"decision": decision, **dict(zip(names, row)), "application_id": application_id}
            for decision, row, application_id in zip(tags["decisions"], body["data"]["ndarray"], tags["application_ids"])]


def describe_prediction(prediction: Mapping[str, Any]) -> str:
    """A prediction in words: the decision and the probability of approval."""
    return f"{prediction['decision']} (probability of approval {prediction['approved']:.3f})"


def describe_explanation(explanation: Mapping[str, Any]) -> str:
    """An anchor explanation in words: the decision, its conditions, precision and coverage."""
    anchor = explanation["anchor_text"] or "(empty anchor: the model answers this for nearly everyone)"
    met = "met" if explanation["threshold_met"] else "NOT met"
    return (
        f"{explanation['prediction']} because {anchor}\n"
        f"  precision {explanation['precision']:.3f} (threshold {explanation['threshold']} {met}), "
        f"coverage {explanation['coverage']:.3f}, {explanation['model_calls']} model calls"
    )


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    parser = command_parser("Ask both services about the dataset's example application.")
    parser.add_argument("--classifier-url", default=DEFAULT_CLASSIFIER_URL, help="the classifier's base URL")
    parser.add_argument("--explainer-url", default=DEFAULT_EXPLAINER_URL, help="the explainer's base URL")
    parser.add_argument("--threshold", type=float, default=ServiceSettings().explain_threshold,
                        help="the anchor's precision threshold")
    parser.add_argument("--classifier-token-file", type=Path, help="a file holding the classifier's bearer token (decide)")
    parser.add_argument("--explainer-token-file", type=Path,
                        help="a file holding the explainer's bearer token (explain, review or audit)")
    return parser


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Ask both services about the example application, through requests and through SeldonClient
    (``loanxai client``)."""
    decide, explain = (path.read_text().strip() if path else None
                       for path in (args.classifier_token_file, args.explainer_token_file))
    client = LoanClient(args.classifier_url, args.explainer_url, classifier_token=decide, explainer_token=explain)
    application = client.example_application()
    print("Application: " + ", ".join(f"{k} {v}" for k, v in application.items()))
    [prediction] = client.predict(application)
    print("requests    prediction:  " + describe_prediction(prediction))
    explained = client.explain(application, prediction["application_id"], threshold=args.threshold)
    print("requests    explanation: " + describe_explanation(explained))
    [prediction] = predictions(seldon_predict(seldon_client(args.classifier_url), application, decide))
    print("SeldonClient prediction:  " + describe_prediction(prediction))
    body = seldon_predict(seldon_client(args.explainer_url), application, explain, threshold=args.threshold,
                          application_ids=[prediction["application_id"]])
    print("SeldonClient explanation: " + describe_explanation(body["jsonData"]))
