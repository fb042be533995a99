"""Who may reach and call what in ``deploy/``, checked without a cluster (part of
:func:`loanxai.ops.deploycheck.project_problems`).

- the NetworkPolicies: one per SeldonDeployment and one per other workload (the console, the
  record's database), callers that exist, metrics ports reachable only from the monitoring
  namespace, by their name;
- the mesh and the services: every container with ``LOAN_AUTH=on`` and its sampling key from the
  Secret :data:`SAMPLING_KEY_SECRET`, a RequestAuthentication that forwards the token, an
  AuthorizationPolicy per SeldonDeployment letting through its service's roles
  (:mod:`loanxai.core.roles`) and, without a token, only probes and metrics;
- the reviewer console: the mesh reading a browser's session cookie as well as the bearer
  header, and letting through exactly what the console takes (:data:`CONSOLE_REQUESTS`, every
  role and no token, evaluated as Istio matches methods, paths and the role claim).

Each function returns a list of problems (empty: all good).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from loanxai.config import ServiceSettings
from loanxai.console.api import REVIEWS_PATH
from loanxai.console.session import PAGE_ROLES, SESSION_COOKIE
from loanxai.core.roles import CONTEST_ROLES, DECIDE_ROLES, EXPLAIN_ROLES, READ_REVIEW_ROLES, REVIEW_ROLES, ROLES
from loanxai.ops.kubedocs import (
    APP_LABEL,
    METRICS_PATH,
    METRICS_PORT,
    METRICS_PORT_NAME,
    deployments_of,
    env_of,
    name_of,
    selects,
)

__all__ = ["CONSOLE_REQUESTS", "SAMPLING_KEY_SECRET", "access_problems"]

#: container name -> the roles its service lets through (LOAN_AUTH=on and the mesh's policy)
SERVICE_ROLES = {"classifier": DECIDE_ROLES, "explainer": EXPLAIN_ROLES}
#: the Secret holding the sampling key the explainer and the classifier share (``LOAN_SAMPLING_KEY_FILE``)
SAMPLING_KEY_SECRET = "loan-sampling-key"
#: what a caller without a token may reach: the probes and the metrics
OPEN_PATHS = {"/health/ping", "/health/status", "/api/v1.0/health/status", METRICS_PATH, "/metrics"}
MONITORING_NAMESPACE = "monitoring"
#: every kind of request the console answers (a path of each), and the roles it takes (None: anyone, with a token
#: or without: the console checks the login form's token itself); the mesh must let through these and no more
CONSOLE_REQUESTS: dict[tuple[str, str], frozenset[str] | None] = {
    ("GET", "/login"): None, ("POST", "/login"): None, ("GET", "/health/ping"): None, ("GET", "/health/status"): None,
    ("GET", "/"): PAGE_ROLES, ("GET", "/search"): PAGE_ROLES, ("GET", "/decisions"): PAGE_ROLES,
    ("GET", "/notice"): PAGE_ROLES, ("GET", "/monitoring"): PAGE_ROLES, ("GET", "/models"): PAGE_ROLES,
    ("GET", "/reviews/7"): PAGE_ROLES, ("POST", "/decisions/explanations"): PAGE_ROLES, ("POST", "/logout"): PAGE_ROLES,
    ("POST", "/reviews"): REVIEW_ROLES, ("POST", "/reviews/7/corrections"): REVIEW_ROLES,
    ("POST", "/reviews/7/actions"): REVIEW_ROLES,
    ("POST", REVIEWS_PATH): CONTEST_ROLES, ("GET", REVIEWS_PATH): REVIEW_ROLES | {"audit"},
    ("GET", f"{REVIEWS_PATH}/7"): READ_REVIEW_ROLES, ("POST", f"{REVIEWS_PATH}/7/corrections"): CONTEST_ROLES,
    ("POST", f"{REVIEWS_PATH}/7/actions"): REVIEW_ROLES, ("DELETE", f"{REVIEWS_PATH}/7"): frozenset(),
}


def access_problems(documents: list[dict[str, Any]], deployments: list[dict[str, Any]]) -> list[str]:
    """What the NetworkPolicies, the mesh and the services' own checks let through, against what
    each service and the console take; ``deployments``: the SeldonDeployments among ``documents``."""
    return (_network_policy_problems(documents, deployments) + _auth_problems(documents, deployments)
            + _console_auth_problems(documents))


def _network_policy_problems(documents: list[dict[str, Any]], deployments: list[dict[str, Any]]) -> list[str]:
    names = {d["metadata"]["name"] for d in deployments}
    # the other workloads, by their pods' APP_LABEL: the console, the decision record's database (records.yaml)
    workloads = {d["spec"]["template"]["metadata"]["labels"].get(APP_LABEL): name_of(d)
                 for d in documents if d.get("kind") in ("Deployment", "StatefulSet")}
    problems = []
    covered = set()
    for policy in (d for d in documents if d.get("kind") == "NetworkPolicy"):
        where = f"NetworkPolicy {policy['metadata']['name']}"
        labels = policy["spec"]["podSelector"].get("matchLabels", {})
        selected = labels.get("seldon-deployment-id")
        covered |= {selected, labels.get(APP_LABEL)}
        if selected not in names and labels.get(APP_LABEL) not in workloads:
            problems.append(f"{where}: selects no SeldonDeployment, Deployment or StatefulSet ({selected!r})")
        for rule in policy["spec"].get("ingress", []):
            ports = {port.get("port") for port in rule.get("ports", [])}
            peers = rule.get("from", [])
            for peer in peers:
                caller = peer.get("podSelector", {}).get("matchLabels", {})
                if "seldon-deployment-id" in caller and caller["seldon-deployment-id"] not in names:
                    problems.append(f"{where}: admits unknown caller {caller['seldon-deployment-id']!r}")
                if APP_LABEL in caller and caller[APP_LABEL] not in workloads:
                    problems.append(f"{where}: admits unknown caller {caller[APP_LABEL]!r}")
            monitoring_only = peers and all(
                peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                == MONITORING_NAMESPACE
                and "podSelector" not in peer
                for peer in peers
            )
            metrics = not ports or METRICS_PORT_NAME in ports or any(
                isinstance(port, int) and METRICS_PORT <= port < METRICS_PORT + 100 for port in ports)
            if metrics and not monitoring_only:
                problems.append(
                    f"{where}: the metrics ports are open to more than the namespace {MONITORING_NAMESPACE}")
            if monitoring_only and METRICS_PORT_NAME not in ports:
                problems.append(f"{where}: admit the metrics ports by their name {METRICS_PORT_NAME!r} (the operator "
                                f"numbers them {METRICS_PORT}, {METRICS_PORT + 1}, ... per container)")
    for name in sorted(names - covered):
        problems.append(f"SeldonDeployment {name}: no NetworkPolicy selects its pods")
    for app in sorted(set(workloads) - covered):
        problems.append(f"{workloads[app]}: no NetworkPolicy selects its pods")
    return problems


def _auth_problems(documents: list[dict[str, Any]], deployments: list[dict[str, Any]]) -> list[str]:
    """Every service checks tokens, and the mesh lets each service's roles through and nothing else."""
    problems = []
    authentications = [d for d in documents if d.get("kind") == "RequestAuthentication"]
    if not authentications:
        problems.append("no RequestAuthentication: the mesh checks no token")
    for authentication in authentications:
        for rule in authentication["spec"].get("jwtRules", []):
            if rule.get("forwardOriginalToken") is not True:
                problems.append(f"{name_of(authentication)}: forwardOriginalToken must be true (the services check "
                                "the token again and record who asked)")
    for namespace in (d for d in documents if d.get("kind") == "Namespace"):
        if namespace["metadata"].get("labels", {}).get("istio-injection") != "enabled":
            problems.append(f"{name_of(namespace)}: label istio-injection must be enabled (no sidecar enforces the "
                            "AuthorizationPolicies otherwise)")
    policies = [d for d in documents if d.get("kind") == "AuthorizationPolicy"]
    claim = f"request.auth.claims[{ServiceSettings().auth_roles_claim}]"
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        pods = [spec["spec"] for p in deployment["spec"]["predictors"] for spec in p.get("componentSpecs", [])]
        containers = [c for pod in pods for c in pod["containers"]]
        for pod in pods:
            for container in pod["containers"]:
                if env_of(container).get("LOAN_AUTH") != "on":
                    problems.append(f"{name}: container {container['name']!r} must set LOAN_AUTH=on")
                problems += _sampling_key_problems(name, pod, container)
        selecting = [p for p in policies if p["spec"].get("selector", {}).get("matchLabels", {})
                     .get("seldon-deployment-id") == name]
        if not selecting:
            problems.append(f"SeldonDeployment {name}: no AuthorizationPolicy selects its pods")
        roles = set().union(*(SERVICE_ROLES.get(c["name"], set()) for c in containers))
        for policy in selecting:
            where = name_of(policy)
            if policy["spec"].get("action", "ALLOW") != "ALLOW":
                problems.append(f"{where}: the action must be ALLOW (everything not allowed is refused)")
            for rule in policy["spec"].get("rules", []):
                granted = {value for condition in rule.get("when", []) if condition["key"] == claim
                           for value in condition.get("values", [])}
                if granted and granted != roles:
                    problems.append(f"{where}: lets roles {sorted(granted)} through; the service takes {sorted(roles)}")
                if not granted and (rule.get("from") or _opened(rule) - OPEN_PATHS):
                    problems.append(f"{where}: a rule without the role claim ({claim}) opens "
                                    f"{sorted(_opened(rule) - OPEN_PATHS) or 'more than probes and metrics'}")
    return problems


def _console_auth_problems(documents: list[dict[str, Any]]) -> list[str]:
    """The console checks tokens, the mesh reads them where the console does (the bearer header, a browser's
    session cookie) and lets through exactly what the console takes (:data:`CONSOLE_REQUESTS`)."""
    problems = []
    claim = f"request.auth.claims[{ServiceSettings().auth_roles_claim}]"
    for deployment in deployments_of(documents):
        name, template = name_of(deployment), deployment["spec"]["template"]
        for container in template["spec"]["containers"]:
            if env_of(container).get("LOAN_AUTH") != "on":
                problems.append(f"{name}: container {container['name']!r} must set LOAN_AUTH=on")
        rules = [rule for authentication in _selecting(documents, "RequestAuthentication", template)
                 for rule in authentication["spec"].get("jwtRules", [])]
        if not any(_reads_bearer_header(rule) for rule in rules):
            problems.append(f"{name}: no RequestAuthentication reads the Authorization header for its pods")
        if not any(SESSION_COOKIE in rule.get("fromCookies", []) for rule in rules):
            problems.append(f"{name}: no RequestAuthentication reads the session cookie {SESSION_COOKIE} for its pods "
                            "(a browser's session would reach them with no role)")
        policies = _selecting(documents, "AuthorizationPolicy", template)
        if not policies:
            problems.append(f"{name}: no AuthorizationPolicy selects its pods")
        for policy in policies:
            if policy["spec"].get("action", "ALLOW") != "ALLOW":
                problems.append(f"{name_of(policy)}: the action must be ALLOW (everything not allowed is refused)")
        for (method, path), roles in CONSOLE_REQUESTS.items():
            for role in (*ROLES, None):
                allowed, taken = _allows(policies, method, path, role, claim), roles is None or role in roles
                if allowed != taken:
                    who = f"role {role}" if role else "a caller without a token"
                    problems.append(f"{name}: the mesh {'lets through' if allowed else 'refuses'} {method} {path} from "
                                    f"{who}, which the console {'refuses' if allowed else 'takes'}")
    return problems


def _selecting(documents: list[dict[str, Any]], kind: str, template: dict[str, Any]) -> list[dict[str, Any]]:
    """The Istio objects of ``kind`` applying to the pods of ``template`` (no selector: the whole namespace)."""
    return [d for d in documents if d.get("kind") == kind
            and selects(d["spec"].get("selector", {}).get("matchLabels", {}), template)]


def _reads_bearer_header(rule: dict[str, Any]) -> bool:
    """Whether a jwtRule reads ``Authorization: Bearer``: Istio's default when it names no place to read."""
    if not any(rule.get(place) for place in ("fromHeaders", "fromParams", "fromCookies")):
        return True
    return any(h["name"].lower() == "authorization" and h.get("prefix") == "Bearer " for h in rule.get("fromHeaders", []))


def _allows(policies: Iterable[dict[str, Any]], method: str, path: str, role: str | None, claim: str) -> bool:
    """Whether Istio's ALLOW ``policies`` let ``method path`` through from a token of ``role`` (None: no token).
    Sources, negations and conditions on other keys are taken as met: the check errs on letting through."""
    for rule in (rule for policy in policies for rule in policy["spec"].get("rules", [])):
        roles_met = all(role in condition.get("values", []) for condition in rule.get("when", [])
                        if condition["key"] == claim)
        operations = [target.get("operation", {}) for target in rule.get("to", [])]
        if roles_met and (not operations or any(_operation_matches(o, method, path) for o in operations)):
            return True
    return False


def _operation_matches(operation: dict[str, Any], method: str, path: str) -> bool:
    return (not operation.get("methods") or method in operation["methods"]) and (
        not operation.get("paths") or any(_path_matches(pattern, path) for pattern in operation["paths"]))


def _path_matches(pattern: str, path: str) -> bool:
    """Istio's path match: exact, a prefix (``/a*``), a suffix (``*/a``), any (``*``), or a template
    (Istio 1.22: ``{*}`` one segment, ``{**}`` any number)."""
    if "{" in pattern:
        template = re.escape(pattern).replace(re.escape("{**}"), ".*").replace(re.escape("{*}"), "[^/]+")
        return re.fullmatch(template, path) is not None
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return path.endswith(pattern[1:])
    return path == pattern


def _sampling_key_problems(name: str, pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """A container must read its sampling key from the Secret :data:`SAMPLING_KEY_SECRET`, mounted."""
    key_file = env_of(container).get("LOAN_SAMPLING_KEY_FILE")
    where = f"{name}: container {container['name']!r}"
    if not key_file:
        return [f"{where} must set LOAN_SAMPLING_KEY_FILE (the explainer's samples need the key, no caller has it)"]
    secrets = {v["name"] for v in pod.get("volumes", []) if v.get("secret", {}).get("secretName") == SAMPLING_KEY_SECRET}
    mounted = [m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in secrets]
    if not any(key_file.startswith(path.rstrip("/") + "/") for path in mounted):
        return [f"{where}: LOAN_SAMPLING_KEY_FILE {key_file} is not in a mount of the Secret {SAMPLING_KEY_SECRET}"]
    return []


def _opened(rule: dict[str, Any]) -> set[str]:
    """The paths a rule's operations allow (``*`` for an operation naming none)."""
    return {path for target in rule.get("to", [{}]) for path in target.get("operation", {}).get("paths", ["*"])}
