"""Reading the Kubernetes documents ``deploy/`` renders: what Seldon's operator names, and the
small helpers the checks of :mod:`~loanxai.ops.deploycheck` and :mod:`~loanxai.ops.accesscheck` share."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["APP_LABEL", "METRICS_PATH", "METRICS_PORT", "METRICS_PORT_NAME", "deployments_of", "env_of", "name_of",
           "seldon_deployments_of", "selects"]

#: the name the operator gives every metrics port: ours (PREDICTIVE_UNIT_METRICS_PORT_NAME) and the executor's
METRICS_PORT_NAME = "metrics"
#: the first of the metrics ports the operator numbers, one per container of a SeldonDeployment (a
#: second predictor's classifier gets 6001: measured on the operator, tests/integration/test_kubernetes.py)
METRICS_PORT = 6000
#: where the operator has the metrics served (PREDICTIVE_UNIT_METRICS_ENDPOINT)
METRICS_PATH = "/prometheus"
#: the label naming the pods of our other workloads (the console, the record's database)
APP_LABEL = "app.kubernetes.io/name"


def env_of(container: dict[str, Any]) -> dict[str, str | None]:
    """A container's environment variables given by value (None: from a Secret or ConfigMap)."""
    return {v["name"]: v.get("value") for v in container.get("env", [])}


def seldon_deployments_of(documents: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The SeldonDeployments among ``documents``."""
    return (d for d in documents if d.get("kind") == "SeldonDeployment")


def deployments_of(documents: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Our Deployments among ``documents`` (the reviewer console's)."""
    return (d for d in documents if d.get("kind") == "Deployment")


def selects(labels: dict[str, str], template: dict[str, Any]) -> bool:
    """Whether the ``labels`` a selector matches are all on the pods of ``template``."""
    return labels.items() <= template["metadata"].get("labels", {}).items()


def name_of(doc: dict[str, Any]) -> str:
    """``Kind name``, as the problems name a document."""
    return f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
