"""Seldon Core's operator as its own ``config/`` runs it: RBAC, the validating webhook, its arguments and environment."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import yaml

from loanxai.errors import ClusterError
from loanxai.ops.cluster.network import WEBHOOK_PORT

__all__ = ["OPERATOR_NAMESPACE", "OPERATOR_PREFIX", "PROBE", "WEBHOOK_REFUSAL", "operator_command", "operator_objects"]

#: where the operator's objects live; ``config/default`` of the operator names them ``seldon-*`` there
OPERATOR_NAMESPACE, OPERATOR_PREFIX = "seldon-system", "seldon-"
#: a SeldonDeployment the operator's webhook must refuse, and its message: what readiness waits for
WEBHOOK_REFUSAL = "Can't find container for Predictive Unit"
PROBE = {"apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
         "metadata": {"name": "loanxai-webhook-probe", "namespace": "default"},
         "spec": {"predictors": [{"name": "p", "graph": {"name": "nothing"},
                                  "componentSpecs": [{"spec": {"containers": [{"name": "c", "image": "probe:0"}]}}]}]}}


def _prefixed(doc: dict) -> dict:
    """``doc`` as the operator's ``config/default`` kustomization names it: ``seldon-`` prefix, ``seldon-system``."""
    doc["metadata"]["name"] = OPERATOR_PREFIX + doc["metadata"]["name"]
    if doc["kind"] in ("Role", "RoleBinding"):
        doc["metadata"]["namespace"] = OPERATOR_NAMESPACE
    if "roleRef" in doc:
        doc["roleRef"]["name"] = OPERATOR_PREFIX + doc["roleRef"]["name"]
    for subject in doc.get("subjects", []):
        subject.update(name=OPERATOR_PREFIX + subject["name"], namespace=OPERATOR_NAMESPACE)
    return doc


def operator_objects(config: Path, webhook_url: str, ca_bundle: bytes) -> list[dict]:
    """The operator's namespace, ServiceAccount, RBAC (``config/rbac``) and webhooks (``config/webhook``).

    The ValidatingWebhookConfiguration is ``manifests.yaml`` with ``patch_webhook.yaml``'s selectors,
    its Service reference replaced by ``webhook_url`` + the path, and ``ca_bundle`` (PEM) as caBundle.
    ``config/`` declares no MutatingWebhookConfiguration (the operator serves ``/mutate-…`` paths, but
    defaults in its reconciler), so none is made.
    """
    objects: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
                           {"apiVersion": "v1", "kind": "ServiceAccount",
                            "metadata": {"name": OPERATOR_PREFIX + "manager", "namespace": OPERATOR_NAMESPACE}}]
    for name in yaml.safe_load((config / "rbac" / "kustomization.yaml").read_text())["resources"]:
        objects += [_prefixed(doc) for doc in yaml.safe_load_all((config / "rbac" / name).read_text()) if doc]
    hooks = next(doc for doc in yaml.safe_load_all((config / "webhook" / "manifests.yaml").read_text()) if doc)
    for patch in yaml.safe_load((config / "webhook" / "patch_webhook.yaml").read_text()):
        _, _, index, key = patch["path"].split("/")  # "add /webhooks/<i>/<key>": all the patch does
        hooks["webhooks"][int(index)][key] = patch["value"]
    for hook in hooks["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {"url": webhook_url + path, "caBundle": base64.b64encode(ca_bundle).decode()}
    return objects + [_prefixed(hooks)]


def operator_command(config: Path, bin_dir: Path, kubeconfig: Path) -> tuple[list[str], dict[str, str]]:
    """The operator's arguments and environment as ``config/manager/manager.yaml`` gives them, for a process here.

    Changed: ``--enable-leader-election`` dropped (out of a cluster it needs a namespace the operator
    cannot be given), ``--metrics-addr`` on 127.0.0.1, arguments whose ``$(VAR)`` is empty dropped
    (``--leader-election-retry-period-secs=`` does not parse), ``POD_NAMESPACE`` (a fieldRef) set to
    ``seldon-system``, ``--kubeconfig`` added. Every ``env`` value is kept as the file has it.
    """
    manifest = next(doc for doc in yaml.safe_load_all((config / "manager" / "manager.yaml").read_text())
                    if doc and doc["kind"] == "Deployment")
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: str(item["value"]) if "value" in item else OPERATOR_NAMESPACE for item in container["env"]}
    args = [re.sub(r"\$\((\w+)\)", lambda match: env.get(match[1], match[0]), arg) for arg in container["args"]]
    args = [arg for arg in args if arg != "--enable-leader-election" and not arg.endswith("=")]
    args = ["--metrics-addr=127.0.0.1:8080" if arg.startswith("--metrics-addr=") else arg for arg in args]
    if f"--webhook-port={WEBHOOK_PORT}" not in args:
        raise ClusterError(f"{config / 'manager' / 'manager.yaml'}: expected --webhook-port={WEBHOOK_PORT} in the args")
    return [str(bin_dir / "seldon-manager"), *args, f"--kubeconfig={kubeconfig}"], env
