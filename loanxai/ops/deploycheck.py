"""Checks of the Kubernetes manifests in ``deploy/``, without a cluster.

- :func:`crd_schema` turns a CRD's openAPIV3Schema into a strict JSON Schema (a misspelled
  field fails, as it would not on the API server, which prunes it): the SeldonDeployments in
  ``deploy/``, the PodMonitor and PrometheusRule in ``deploy/monitoring/``, Istio's
  RequestAuthentication and AuthorizationPolicy in ``deploy/base/auth.yaml``;
- :func:`project_problems` checks what no schema can: graph types, graph names equal to
  container names, images equal to what ``scripts/build-images.sh`` tags, the explainer's
  classifier URL against the classifier's Service, the timeout annotation Seldon reads,
  probes and their timeouts, resources, the pods' prometheus.io annotations, the containers' hardening (no privilege escalation,
  read-only root with a writable /tmp, all capabilities dropped, the runtime's seccomp
  profile), the predictors as Seldon's admission webhook checks them (one shadow at most, never
  alone, traffic of the others summing to 100) with each classifier's model role (the champion
  in a predictor that answers, the challenger in the shadow: ``LOAN_MODEL_ROLE`` and the pod
  label :data:`MODEL_ROLE_POD_LABEL` agree), and the NetworkPolicies (one per SeldonDeployment and one for the record's
  database, metrics ports reachable only from the monitoring namespace), and who may call what
  (every container with ``LOAN_AUTH=on``, an AuthorizationPolicy per SeldonDeployment letting
  through its service's roles, :mod:`loanxai.core.roles`, and without a token only probes and
  metrics; the token kept on the request for the services to check again), and the sampling key
  (every container reads ``LOAN_SAMPLING_KEY_FILE`` from the Secret :data:`SAMPLING_KEY_SECRET`),
  every variable a container is given being a setting its process reads, and every pod writing the
  record migrating it first (an init container of the same image running :data:`MIGRATE_COMMAND`);
- the reviewer console's Deployment (:func:`project_problems` too): the console's command in its
  image of the champion's build, its artifacts listed, one replica, hardened and
  probed as the services are, the port it listens on declared, probed and targeted by its
  Service; its NetworkPolicy; the mesh reading a browser's session cookie as well as the bearer
  header, and its AuthorizationPolicy letting through exactly what the console takes
  (:data:`CONSOLE_REQUESTS`, every role and no token, evaluated as Istio matches methods, paths
  and the role claim).

Each function returns a list of problems (empty: all good).
"""
from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft7Validator

from loanxai.artifacts import DEPLOY_DIR, SHARED_DIR
from loanxai.config import (
    CHALLENGER,
    CHAMPION,
    SELDON_VARIABLES,
    ReviewSettings,
    ServerSettings,
    ServiceSettings,
    ToolSettings,
)
from loanxai.console.api import REVIEWS_PATH
from loanxai.console.session import PAGE_ROLES, SESSION_COOKIE
from loanxai.core.roles import CONTEST_ROLES, DECIDE_ROLES, EXPLAIN_ROLES, READ_REVIEW_ROLES, REVIEW_ROLES, ROLES

__all__ = ["CONSOLE_REQUESTS", "CRD_FILES", "CRD_PATH", "MODEL_ROLE_POD_LABEL", "SAMPLING_KEY_SECRET", "crd_schema",
           "explainer_timeout_ms", "project_problems", "render", "schema_problems"]

CRD_PATH = SHARED_DIR / "seldon-core-v1.17.1" / "seldondeployment-crd.yaml"
PROMETHEUS_OPERATOR_DIR = SHARED_DIR / "prometheus-operator-v0.93.0"
#: Istio's security CRDs, of the version scripts/kind-up.sh installs
ISTIO_CRDS = SHARED_DIR / "istio-1.22.8" / "security.istio.io-crds.yaml"
#: kind -> the CRD file defining it
CRD_FILES = {
    "SeldonDeployment": CRD_PATH,
    "PodMonitor": PROMETHEUS_OPERATOR_DIR / "monitoring.coreos.com_podmonitors.yaml",
    "PrometheusRule": PROMETHEUS_OPERATOR_DIR / "monitoring.coreos.com_prometheusrules.yaml",
    "RequestAuthentication": ISTIO_CRDS,
    "AuthorizationPolicy": ISTIO_CRDS,
}

# what Seldon's admission webhook accepts (the CRD schema does not enumerate them)
GRAPH_TYPES = {"MODEL", "ROUTER", "COMBINER", "TRANSFORMER", "OUTPUT_TRANSFORMER"}
ENDPOINT_TYPES = {"REST", "GRPC"}
PROTOCOLS = {"seldon", "tensorflow", "kfserving", "v2"}
EXECUTOR_REST_PORT = 8000
#: the name the operator gives every metrics port: ours (PREDICTIVE_UNIT_METRICS_PORT_NAME) and the executor's
METRICS_PORT_NAME = "metrics"
#: the first of the metrics ports the operator numbers, one per container of a SeldonDeployment (a
#: second predictor's classifier gets 6001: measured on the operator, tests/integration/test_kubernetes.py)
METRICS_PORT = 6000
#: where the operator has the metrics served (PREDICTIVE_UNIT_METRICS_ENDPOINT)
METRICS_PATH = "/prometheus"
#: container name -> the roles its service lets through (LOAN_AUTH=on and the mesh's policy)
SERVICE_ROLES = {"classifier": DECIDE_ROLES, "explainer": EXPLAIN_ROLES}
#: the Secret holding the sampling key the explainer and the classifier share (``LOAN_SAMPLING_KEY_FILE``)
SAMPLING_KEY_SECRET = "loan-sampling-key"
#: what a caller without a token may reach: the probes and the metrics
OPEN_PATHS = {"/health/ping", "/health/status", "/api/v1.0/health/status", METRICS_PATH, "/metrics"}
MONITORING_NAMESPACE = "monitoring"
#: the probes' timeout must leave room above the health latency measured under load (README)
MIN_PROBE_TIMEOUT_S = 2
# Seldon Core 1.x reads only these; seldon.io/rest-read-timeout and -connection-timeout are ignored
TIMEOUT_ANNOTATIONS = {"seldon.io/rest-timeout", "seldon.io/grpc-timeout"}
IGNORED_TIMEOUT_ANNOTATIONS = {"seldon.io/rest-read-timeout", "seldon.io/rest-connection-timeout"}
#: the classifier pods' label the PodMonitor copies onto their series as ``model_role``
MODEL_ROLE_POD_LABEL = "loanxai.io/model-role"
#: the label naming the pods of our other workloads (the console, the record's database)
APP_LABEL = "app.kubernetes.io/name"
#: the variables the services' processes read: a variable they do not read is ignored, so a misspelled one goes unnoticed
SERVICE_VARIABLES = frozenset({f.metadata["setting"].env for cls in (ServiceSettings, ServerSettings) for f in fields(cls)}
                              | {name for name, _, _ in SELDON_VARIABLES})
#: the variables the console's process reads (python -m loanxai console; the notices' letterhead: ToolSettings)
CONSOLE_VARIABLES = frozenset({f.metadata["setting"].env
                               for cls in (ServiceSettings, ServerSettings, ReviewSettings, ToolSettings) for f in fields(cls)})
#: what the init container of a pod writing the record runs: the record at its code's migrations before the service starts
MIGRATE_COMMAND = ["python", "-m", "loanxai", "records", "upgrade"]
#: what our one Deployment runs: the reviewer console
CONSOLE_COMMAND = ["python", "-m", "loanxai", "console"]
#: the built image the console runs in (models/console/: the wheel, the champion's artifacts)
CONSOLE_IMAGE = "console"
#: where that image holds the champion's artifacts (models/console/Dockerfile: its LOAN_REVIEW_ARTIFACTS)
IMAGE_ARTIFACTS = "/console/artifacts"
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


def render(deploy_dir: Path = DEPLOY_DIR) -> list[dict[str, Any]]:
    """The documents ``kubectl apply -k deploy_dir`` would apply (``kubectl kustomize``)."""
    output = subprocess.run(["kubectl", "kustomize", str(deploy_dir)], check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]


def crd_schema(crd_path: Path = CRD_PATH, kind: str | None = None) -> dict[str, Any]:
    """The v1 openAPIV3Schema of the CRD of ``kind`` in ``crd_path`` (None: its only one) as a
    strict JSON Schema: ``x-kubernetes-*`` keys dropped and ``additionalProperties: false``
    wherever properties are listed and unknown fields are not preserved."""
    crds = [doc for doc in yaml.safe_load_all(crd_path.read_text()) if doc]
    [crd] = [c for c in crds if kind is None or c["spec"]["names"]["kind"] == kind]
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = _strict(version["schema"]["openAPIV3Schema"])
    # every object has these, whether its CRD lists them (Seldon's does, Istio's does not)
    for field, kind in (("apiVersion", "string"), ("kind", "string"), ("metadata", "object")):
        schema["properties"].setdefault(field, {"type": kind})
    return schema


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    strict = {key: _strict(value) for key, value in node.items() if not key.startswith("x-kubernetes-")}
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in node:
        strict["additionalProperties"] = False
    return strict


def schema_problems(documents: list[dict[str, Any]], schema: dict[str, Any], kind: str = "SeldonDeployment") -> list[str]:
    """Schema violations of every document of ``kind`` in ``documents``."""
    validator = Draft7Validator(schema)
    return [
        f"{_name(doc)}: {'.'.join(map(str, error.path)) or '(top)'}: {error.message}"
        for doc in documents if doc.get("kind") == kind
        for error in validator.iter_errors(doc)
    ]


def project_problems(documents: list[dict[str, Any]], images: dict[str, str],
                     shadow_images: dict[str, str] | None = None) -> list[str]:
    """What the schema leaves out. ``images``: container name -> image reference built;
    ``shadow_images``: the same for a shadow predictor's containers (the challenger's build)."""
    problems: list[str] = []
    deployments = list(_seldon_deployments(documents))
    services = {f"{d['metadata']['name']}-{p['name']}" for d in deployments for p in d["spec"]["predictors"]}
    namespace = deployments[0]["metadata"].get("namespace", "default") if deployments else "default"
    for deployment in deployments:
        name = _name(deployment)
        if deployment["spec"].get("protocol", "seldon") not in PROTOCOLS:
            problems.append(f"{name}: unknown protocol {deployment['spec']['protocol']!r}")
        annotations = {**deployment["metadata"].get("annotations", {}), **deployment["spec"].get("annotations", {})}
        for key in IGNORED_TIMEOUT_ANNOTATIONS & set(annotations):
            problems.append(f"{name}: annotation {key} is ignored by Seldon Core 1.x; use seldon.io/rest-timeout")
        for key in TIMEOUT_ANNOTATIONS & set(annotations):
            if not str(annotations[key]).isdigit():
                problems.append(f"{name}: {key} must be milliseconds, got {annotations[key]!r}")
        problems += _predictors_problems(name, deployment["spec"]["predictors"])
        for predictor in deployment["spec"]["predictors"]:
            containers = {c["name"]: c for spec in predictor.get("componentSpecs", []) for c in spec["spec"]["containers"]}
            built = shadow_images if predictor.get("shadow") else images
            if built is None:
                problems.append(f"{name}: predictor {predictor['name']!r} is a shadow: give the challenger's images to "
                                "check its containers' images against")
            problems += _role_problems(name, predictor)
            for node in _graph_nodes(predictor["graph"]):
                if node.get("type", "MODEL") not in GRAPH_TYPES and "implementation" not in node:
                    problems.append(f"{name}: graph node {node['name']!r} has unknown type {node.get('type')!r}")
                if node.get("endpoint", {}).get("type", "REST") not in ENDPOINT_TYPES:
                    problems.append(f"{name}: graph node {node['name']!r} has unknown endpoint type")
                if "implementation" not in node and node["name"] not in containers:
                    problems.append(f"{name}: graph node {node['name']!r} names no container ({', '.join(containers)})")
            for component in predictor.get("componentSpecs", []):
                problems += _pod_problems(name, component["spec"])
                problems += _migration_problems(name, component["spec"])
                problems += _scrape_problems(name, component.get("metadata", {}).get("annotations", {}))
            for container_name, container in containers.items():
                problems += _container_problems(name, container_name, container, built, services, namespace)
                problems += _variable_problems(f"{name}: container {container_name!r}", container, SERVICE_VARIABLES)
    explainers = {f"{d['metadata']['name']}-{p['name']}" for d in deployments for p in d["spec"]["predictors"]
                  if any(c["name"] == "explainer" for s in p.get("componentSpecs", []) for c in s["spec"]["containers"])}
    problems += _console_problems(documents, images, explainers, namespace)
    problems += _service_problems(documents)
    problems += _network_policy_problems(documents, deployments)
    problems += _auth_problems(documents, deployments)
    problems += _console_auth_problems(documents)
    return problems


def explainer_timeout_ms(documents: list[dict[str, Any]], deployment: str) -> int | None:
    """The seldon.io/rest-timeout of ``deployment``, if set."""
    for doc in _seldon_deployments(documents):
        if doc["metadata"]["name"] == deployment:
            value = doc["spec"].get("annotations", {}).get("seldon.io/rest-timeout")
            return int(value) if value is not None else None
    return None


def _predictors_problems(deployment: str, predictors: list[dict[str, Any]]) -> list[str]:
    """What Seldon's admission webhook refuses in the predictors (its checkTraffic and validateShadow)."""
    problems = []
    names = [p["name"] for p in predictors]
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{deployment}: duplicate predictor name {duplicate!r}")
    shadows = [p for p in predictors if p.get("shadow")]
    answering = [p for p in predictors if not p.get("shadow")]
    if len(shadows) > 1:
        problems.append(f"{deployment}: {len(shadows)} shadow predictors; Seldon allows one")
    if shadows and not answering:
        problems.append(f"{deployment}: a shadow predictor cannot be the only one")
    if len(answering) > 1 and sum(p.get("traffic", 0) for p in answering) != 100:
        problems.append(f"{deployment}: the traffic of predictors {', '.join(p['name'] for p in answering)} must sum to 100")
    return problems


def _role_problems(deployment: str, predictor: dict[str, Any]) -> list[str]:
    """A classifier's model role: the challenger's in a shadow predictor, else the champion's, said
    alike by ``LOAN_MODEL_ROLE`` (the record) and the pod label (the metrics)."""
    role = CHALLENGER if predictor.get("shadow") else CHAMPION
    where = f"{deployment}: predictor {predictor['name']!r}"
    problems = []
    for component in predictor.get("componentSpecs", []):
        classifiers = [c for c in component["spec"]["containers"] if c["name"] == "classifier"]
        if not classifiers:
            continue
        label = component.get("metadata", {}).get("labels", {}).get(MODEL_ROLE_POD_LABEL)
        if label != role:
            problems.append(f"{where}: the pod label {MODEL_ROLE_POD_LABEL} must be {role!r}, not {label!r}")
        for container in classifiers:
            env = _env(container)
            if env.get("LOAN_MODEL_ROLE", CHAMPION) != role:
                problems.append(f"{where}: container {container['name']!r} must serve as the {role} "
                                f"(LOAN_MODEL_ROLE: {env.get('LOAN_MODEL_ROLE') or 'not set'})")
    return problems


def _container_problems(deployment: str, name: str, container: dict, images: dict[str, str] | None,
                        services: set[str], namespace: str) -> list[str]:
    problems = []
    where = f"{deployment}: container {name!r}"
    expected = None if images is None else images.get(name)
    if images is not None and expected is None:
        problems.append(f"{where}: no image is built for it (built: {', '.join(images)})")
    elif expected is not None and _normal_image(container.get("image", "")) != _normal_image(expected):
        problems.append(f"{where}: image {container.get('image')!r} is not the built {expected!r}")
    for probe, path in (("readinessProbe", "/health/status"), ("livenessProbe", "/health/ping")):
        if container.get(probe, {}).get("httpGet", {}).get("path") != path:
            problems.append(f"{where}: {probe} must GET {path}")
        if container.get(probe, {}).get("timeoutSeconds", 1) < MIN_PROBE_TIMEOUT_S:
            problems.append(f"{where}: {probe} timeoutSeconds must be at least {MIN_PROBE_TIMEOUT_S} "
                            "(the default 1 s is too short under load)")
    problems += _hardening_problems(where, container)
    if not any(mount.get("mountPath") == "/tmp" for mount in container.get("volumeMounts", [])):
        problems.append(f"{where}: a writable volume must be mounted at /tmp (gunicorn and the metrics files need one)")
    problems += _resource_problems(where, container)
    for variable in container.get("env", []):
        if variable["name"] == "LOAN_CLASSIFIER_URL":
            problems += _classifier_url_problems(where, variable.get("value", ""), services, namespace)
    return problems


def _hardening_problems(where: str, container: dict[str, Any]) -> list[str]:
    """A container's own securityContext: no privilege escalation, read-only root, no capabilities, not root."""
    problems = []
    security = container.get("securityContext", {})
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: securityContext.readOnlyRootFilesystem must be true")
    if "ALL" not in security.get("capabilities", {}).get("drop", []):
        problems.append(f"{where}: securityContext.capabilities must drop ALL")
    # on the container too: Seldon's operator v1.16 replaces the pod's securityContext (measured on the
    # operator, tests/integration/test_kubernetes.py; v1.17 keeps it), and the container's wins
    if security.get("runAsNonRoot") is not True:
        problems.append(f"{where}: securityContext.runAsNonRoot must be true (the operator may replace the pod's)")
    if security.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{where}: securityContext.seccompProfile must be RuntimeDefault or Localhost (the operator "
                        "may replace the pod's)")
    return problems


def _migration_problems(where: str, pod: dict[str, Any]) -> list[str]:
    """A pod whose container writes the record (``LOAN_RECORDS_URL``) migrates that record first,
    with a hardened init container of the same image (its code's migrations): the service only checks it."""
    problems = []
    upgrades = [c for c in pod.get("initContainers", []) if c.get("command") == MIGRATE_COMMAND]
    for container in pod["containers"]:
        record = next((v for v in container.get("env", []) if v["name"] == "LOAN_RECORDS_URL"), None)
        if record is None:
            problems.append(f"{where}: container {container['name']!r} gives no LOAN_RECORDS_URL: it would write its "
                            "image's default record, on a volume nothing migrates or keeps")
            continue
        if record.get("value") == "off":
            continue
        if not upgrades:
            problems.append(f"{where}: container {container['name']!r} writes the record (LOAN_RECORDS_URL) and no init "
                            f"container migrates it first ({' '.join(MIGRATE_COMMAND)}): the service refuses a record "
                            "not at its code's migrations")
        for init in upgrades:
            name = f"{where}: init container {init['name']!r}"
            if _normal_image(init.get("image", "")) != _normal_image(container.get("image", "")):
                problems.append(f"{name}: image {init.get('image')!r} is not that of container {container['name']!r}, "
                                f"{container.get('image')!r} (the migrations must be its code's)")
            if record not in init.get("env", []):
                problems.append(f"{name}: migrates another record than {container['name']!r} writes (LOAN_RECORDS_URL)")
    for init in upgrades:
        problems += _hardening_problems(f"{where}: init container {init['name']!r}", init)
        problems += _resource_problems(f"{where}: init container {init['name']!r}", init)
    return problems


def _resource_problems(where: str, container: dict[str, Any]) -> list[str]:
    resources = container.get("resources", {})
    if resources.get("requests") and resources.get("limits"):
        return []
    return [f"{where}: resource requests and limits are required"]


def _variable_problems(where: str, container: dict[str, Any], read: frozenset[str]) -> list[str]:
    return [f"{where}: {v['name']} is not a setting its process reads (misspelled?)"
            for v in container.get("env", []) if v["name"] not in read]


def _console_problems(documents: list[dict[str, Any]], images: dict[str, str], explainers: set[str],
                      namespace: str) -> list[str]:
    """Our Deployments: the reviewer console, as hardened and probed as the services, calling the explainer's
    executor Service (one of ``explainers`` in ``namespace``)."""
    problems = []
    for deployment in _deployments(documents):
        name = _name(deployment)
        pod = deployment["spec"]["template"]["spec"]
        problems += _pod_problems(name, pod)
        problems += _migration_problems(name, pod)
        if deployment["spec"].get("replicas", 1) != 1:
            problems.append(f"{name}: replicas must be 1 (each console process signs its forms' CSRF tokens with a key "
                            "of its own: another replica would refuse them)")
        for container in pod["containers"]:
            where = f"{name}: container {container['name']!r}"
            command = container.get("command", [])
            if command[:len(CONSOLE_COMMAND)] != CONSOLE_COMMAND:
                runs = " ".join(command) or "its image's command"
                problems.append(f"{where}: runs {runs}, not the console ({' '.join(CONSOLE_COMMAND)})")
                continue
            built = {container["name"]: images[CONSOLE_IMAGE]} if CONSOLE_IMAGE in images else {}
            problems += _container_problems(name, container["name"], container, built, set(), "")
            problems += _variable_problems(where, container, CONSOLE_VARIABLES)
            problems += _console_port_problems(where, container)
            explainer = urlsplit(_env(container).get("LOAN_REVIEW_EXPLAINER_URL") or "")
            host = (explainer.hostname or "").split(".")
            if explainer.hostname and (host[0] not in explainers or (host[1:2] or [namespace]) != [namespace]
                                       or explainer.port != EXECUTOR_REST_PORT or explainer.path.strip("/")):
                problems.append(f"{where}: LOAN_REVIEW_EXPLAINER_URL {explainer.geturl()!r} is not the base URL of an "
                                f"explainer's executor Service ({', '.join(sorted(explainers))}.{namespace}:"
                                f"{EXECUTOR_REST_PORT})")
            listed = [folder.strip() for folder in (_env(container).get("LOAN_REVIEW_ARTIFACTS") or IMAGE_ARTIFACTS).split(",")]
            if IMAGE_ARTIFACTS not in listed:
                problems.append(f"{where}: LOAN_REVIEW_ARTIFACTS must list {IMAGE_ARTIFACTS}, the artifacts of the "
                                "champion its image holds")
    return problems


def _console_port_problems(where: str, container: dict[str, Any]) -> list[str]:
    """The console listens where its ports and probes say."""
    command = container["command"]
    given = command[command.index("--port") + 1] if "--port" in command else _env(container).get("LOAN_CONSOLE_PORT")
    port = int(given or ReviewSettings().console_port)
    declared = {p["containerPort"]: p.get("name") for p in container.get("ports", [])}
    if port not in declared:
        return [f"{where}: listens on {port} (--port), a port it does not declare"]
    return [f"{where}: {probe} must reach the port it listens on ({port})" for probe in ("readinessProbe", "livenessProbe")
            if container.get(probe, {}).get("httpGet", {}).get("port") not in (port, declared[port])]


def _service_problems(documents: list[dict[str, Any]]) -> list[str]:
    """Each Service of ours selects the pods of one workload, on ports its containers declare."""
    templates = {_name(d): d["spec"]["template"] for d in documents if d.get("kind") in ("Deployment", "StatefulSet")}
    problems = []
    for service in (d for d in documents if d.get("kind") == "Service"):
        selector = service["spec"].get("selector") or {}
        selected = [name for name, template in templates.items() if selector and _selects(selector, template)]
        if len(selected) != 1:
            problems.append(f"{_name(service)}: selects the pods of {', '.join(selected) or 'no workload'}; one expected")
            continue
        containers = templates[selected[0]]["spec"]["containers"]
        ports = {value for c in containers for p in c.get("ports", []) for value in (p["containerPort"], p.get("name"))}
        for port in service["spec"].get("ports", []):
            if port.get("targetPort", port["port"]) not in ports:
                problems.append(f"{_name(service)}: port {port['port']} targets {port.get('targetPort', port['port'])!r}, "
                                f"which no container of {selected[0]} declares")
    return problems


def _pod_problems(deployment: str, pod: dict[str, Any]) -> list[str]:
    security = pod.get("securityContext", {})
    problems = []
    if security.get("runAsNonRoot") is not True:
        problems.append(f"{deployment}: the pod's securityContext.runAsNonRoot must be true")
    if security.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{deployment}: the pod's securityContext.seccompProfile must be RuntimeDefault (or Localhost)")
    return problems


def _scrape_problems(deployment: str, annotations: dict[str, str]) -> list[str]:
    """seldon-core-analytics' Prometheus scrapes pods annotated so, at the path the operator serves."""
    expected = {"prometheus.io/scrape": "true", "prometheus.io/path": METRICS_PATH}
    return [
        f"{deployment}: the pod annotation {key} must be {value!r} (seldon-core-analytics scrapes by it)"
        for key, value in expected.items()
        if annotations.get(key) != value
    ]


def _classifier_url_problems(where: str, url: str, services: set[str], namespace: str) -> list[str]:
    parts = urlsplit(url)
    host = (parts.hostname or "").split(".")
    service, host_namespace = host[0], (host[1] if len(host) > 1 else namespace)
    problems = []
    if service not in services or host_namespace != namespace:
        problems.append(
            f"{where}: LOAN_CLASSIFIER_URL host {parts.hostname!r} is no executor Service "
            f"of this deployment ({', '.join(sorted(services))} in {namespace})"
        )
    if parts.port != EXECUTOR_REST_PORT:
        problems.append(f"{where}: LOAN_CLASSIFIER_URL port {parts.port} is not the executor's REST port {EXECUTOR_REST_PORT}")
    if parts.path != "/api/v1.0/predictions":
        problems.append(f"{where}: LOAN_CLASSIFIER_URL path {parts.path!r} is not /api/v1.0/predictions")
    return problems


def _network_policy_problems(documents: list[dict[str, Any]], deployments: list[dict[str, Any]]) -> list[str]:
    names = {d["metadata"]["name"] for d in deployments}
    # the other workloads, by their pods' APP_LABEL: the console, the decision record's database (records.yaml)
    workloads = {d["spec"]["template"]["metadata"]["labels"].get(APP_LABEL): _name(d)
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
                problems.append(f"{_name(authentication)}: forwardOriginalToken must be true (the services check "
                                "the token again and record who asked)")
    for namespace in (d for d in documents if d.get("kind") == "Namespace"):
        if namespace["metadata"].get("labels", {}).get("istio-injection") != "enabled":
            problems.append(f"{_name(namespace)}: label istio-injection must be enabled (no sidecar enforces the "
                            "AuthorizationPolicies otherwise)")
    policies = [d for d in documents if d.get("kind") == "AuthorizationPolicy"]
    claim = f"request.auth.claims[{ServiceSettings().auth_roles_claim}]"
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        pods = [spec["spec"] for p in deployment["spec"]["predictors"] for spec in p.get("componentSpecs", [])]
        containers = [c for pod in pods for c in pod["containers"]]
        for pod in pods:
            for container in pod["containers"]:
                if _env(container).get("LOAN_AUTH") != "on":
                    problems.append(f"{name}: container {container['name']!r} must set LOAN_AUTH=on")
                problems += _sampling_key_problems(name, pod, container)
        selecting = [p for p in policies if p["spec"].get("selector", {}).get("matchLabels", {})
                     .get("seldon-deployment-id") == name]
        if not selecting:
            problems.append(f"SeldonDeployment {name}: no AuthorizationPolicy selects its pods")
        roles = set().union(*(SERVICE_ROLES.get(c["name"], set()) for c in containers))
        for policy in selecting:
            where = _name(policy)
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
    for deployment in _deployments(documents):
        name, template = _name(deployment), deployment["spec"]["template"]
        for container in template["spec"]["containers"]:
            if _env(container).get("LOAN_AUTH") != "on":
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
                problems.append(f"{_name(policy)}: the action must be ALLOW (everything not allowed is refused)")
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
            and _selects(d["spec"].get("selector", {}).get("matchLabels", {}), template)]


def _selects(labels: dict[str, str], template: dict[str, Any]) -> bool:
    return labels.items() <= template["metadata"].get("labels", {}).items()


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
    key_file = _env(container).get("LOAN_SAMPLING_KEY_FILE")
    where = f"{name}: container {container['name']!r}"
    if not key_file:
        return [f"{where} must set LOAN_SAMPLING_KEY_FILE (the explainer's samples need the key, no caller has it)"]
    secrets = {v["name"] for v in pod.get("volumes", []) if v.get("secret", {}).get("secretName") == SAMPLING_KEY_SECRET}
    mounted = [m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in secrets]
    if not any(key_file.startswith(path.rstrip("/") + "/") for path in mounted):
        return [f"{where}: LOAN_SAMPLING_KEY_FILE {key_file} is not in a mount of the Secret {SAMPLING_KEY_SECRET}"]
    return []


def _env(container: dict[str, Any]) -> dict[str, str | None]:
    """A container's environment variables given by value (None: from a Secret or ConfigMap)."""
    return {v["name"]: v.get("value") for v in container.get("env", [])}


def _opened(rule: dict[str, Any]) -> set[str]:
    """The paths a rule's operations allow (``*`` for an operation naming none)."""
    return {path for target in rule.get("to", [{}]) for path in target.get("operation", {}).get("paths", ["*"])}


def _seldon_deployments(documents: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (d for d in documents if d.get("kind") == "SeldonDeployment")


def _deployments(documents: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (d for d in documents if d.get("kind") == "Deployment")


def _graph_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children", []):
        yield from _graph_nodes(child)


def _name(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"


def _normal_image(reference: str) -> str:
    """docker.io/x/y:t and x/y:t name the same image."""
    return reference.removeprefix("docker.io/")
