"""Checks of the Kubernetes manifests in ``deploy/``, without a cluster.

- :func:`crd_schema` turns a CRD's openAPIV3Schema into a strict JSON Schema (a misspelled
  field fails, as it would not on the API server, which prunes it): the SeldonDeployments in
  ``deploy/``, the PodMonitor and PrometheusRule in ``deploy/monitoring/``, Istio's
  RequestAuthentication and AuthorizationPolicy in ``deploy/base/auth.yaml``;
- :func:`project_problems` checks what no schema can: graph types, graph names equal to
  container names, images equal to what ``scripts/build-images.sh`` tags, the explainer's
  classifier URL against the classifier's Service, the timeout annotation Seldon reads,
  probes and their timeouts, resources, the pods' prometheus.io annotations, the containers'
  hardening (no privilege escalation, read-only root with a writable /tmp, all capabilities
  dropped, the runtime's seccomp profile), the predictors as Seldon's admission webhook checks
  them (one shadow at most, never alone, traffic of the others summing to 100) with each
  classifier's model role (the champion in a predictor that answers, the challenger in the
  shadow: ``LOAN_MODEL_ROLE`` and the pod label :data:`MODEL_ROLE_POD_LABEL` agree), every
  variable a container is given being a setting its process reads, every pod writing the record
  migrating it first (an init container of the same image running :data:`MIGRATE_COMMAND`), the
  reviewer console's Deployment (its command in its image of the champion's build, its
  artifacts listed, one replica, hardened and probed as the services are, the port it listens
  on declared, probed and targeted by its Service), and who may reach and call what
  (:mod:`loanxai.ops.accesscheck`: the NetworkPolicies, the mesh's token checks and policies,
  ``LOAN_AUTH=on`` and the sampling key).

Each function returns a list of problems (empty: all good).
"""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
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
from loanxai.ops.accesscheck import access_problems
from loanxai.ops.kubedocs import METRICS_PATH, deployments_of, env_of, name_of, seldon_deployments_of, selects

__all__ = ["CRD_FILES", "CRD_PATH", "EXECUTOR_REST_PORT", "MIGRATE_COMMAND", "MODEL_ROLE_POD_LABEL", "crd_schema",
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
#: the probes' timeout must leave room above the health latency measured under load (README)
MIN_PROBE_TIMEOUT_S = 2
# Seldon Core 1.x reads only these; seldon.io/rest-read-timeout and -connection-timeout are ignored
TIMEOUT_ANNOTATIONS = {"seldon.io/rest-timeout", "seldon.io/grpc-timeout"}
IGNORED_TIMEOUT_ANNOTATIONS = {"seldon.io/rest-read-timeout", "seldon.io/rest-connection-timeout"}
#: the classifier pods' label the PodMonitor copies onto their series as ``model_role``
MODEL_ROLE_POD_LABEL = "loanxai.io/model-role"
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
        f"{name_of(doc)}: {'.'.join(map(str, error.path)) or '(top)'}: {error.message}"
        for doc in documents if doc.get("kind") == kind
        for error in validator.iter_errors(doc)
    ]


def project_problems(documents: list[dict[str, Any]], images: dict[str, str],
                     shadow_images: dict[str, str] | None = None) -> list[str]:
    """What the schema leaves out. ``images``: container name -> image reference built;
    ``shadow_images``: the same for a shadow predictor's containers (the challenger's build)."""
    problems: list[str] = []
    deployments = list(seldon_deployments_of(documents))
    services = {f"{d['metadata']['name']}-{p['name']}" for d in deployments for p in d["spec"]["predictors"]}
    namespace = deployments[0]["metadata"].get("namespace", "default") if deployments else "default"
    for deployment in deployments:
        name = name_of(deployment)
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
    problems += access_problems(documents, deployments)
    return problems


def explainer_timeout_ms(documents: list[dict[str, Any]], deployment: str) -> int | None:
    """The seldon.io/rest-timeout of ``deployment``, if set."""
    for doc in seldon_deployments_of(documents):
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
            env = env_of(container)
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
    for deployment in deployments_of(documents):
        name = name_of(deployment)
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
            explainer = urlsplit(env_of(container).get("LOAN_REVIEW_EXPLAINER_URL") or "")
            host = (explainer.hostname or "").split(".")
            if explainer.hostname and (host[0] not in explainers or (host[1:2] or [namespace]) != [namespace]
                                       or explainer.port != EXECUTOR_REST_PORT or explainer.path.strip("/")):
                problems.append(f"{where}: LOAN_REVIEW_EXPLAINER_URL {explainer.geturl()!r} is not the base URL of an "
                                f"explainer's executor Service ({', '.join(sorted(explainers))}.{namespace}:"
                                f"{EXECUTOR_REST_PORT})")
            listed = [folder.strip() for folder in (env_of(container).get("LOAN_REVIEW_ARTIFACTS") or IMAGE_ARTIFACTS).split(",")]
            if IMAGE_ARTIFACTS not in listed:
                problems.append(f"{where}: LOAN_REVIEW_ARTIFACTS must list {IMAGE_ARTIFACTS}, the artifacts of the "
                                "champion its image holds")
    return problems


def _console_port_problems(where: str, container: dict[str, Any]) -> list[str]:
    """The console listens where its ports and probes say."""
    command = container["command"]
    given = command[command.index("--port") + 1] if "--port" in command else env_of(container).get("LOAN_CONSOLE_PORT")
    port = int(given or ReviewSettings().console_port)
    declared = {p["containerPort"]: p.get("name") for p in container.get("ports", [])}
    if port not in declared:
        return [f"{where}: listens on {port} (--port), a port it does not declare"]
    return [f"{where}: {probe} must reach the port it listens on ({port})" for probe in ("readinessProbe", "livenessProbe")
            if container.get(probe, {}).get("httpGet", {}).get("port") not in (port, declared[port])]


def _service_problems(documents: list[dict[str, Any]]) -> list[str]:
    """Each Service of ours selects the pods of one workload, on ports its containers declare."""
    templates = {name_of(d): d["spec"]["template"] for d in documents if d.get("kind") in ("Deployment", "StatefulSet")}
    problems = []
    for service in (d for d in documents if d.get("kind") == "Service"):
        selector = service["spec"].get("selector") or {}
        selected = [name for name, template in templates.items() if selector and selects(selector, template)]
        if len(selected) != 1:
            problems.append(f"{name_of(service)}: selects the pods of {', '.join(selected) or 'no workload'}; one expected")
            continue
        containers = templates[selected[0]]["spec"]["containers"]
        ports = {value for c in containers for p in c.get("ports", []) for value in (p["containerPort"], p.get("name"))}
        for port in service["spec"].get("ports", []):
            if port.get("targetPort", port["port"]) not in ports:
                problems.append(f"{name_of(service)}: port {port['port']} targets {port.get('targetPort', port['port'])!r}, "
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


def _graph_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children", []):
        yield from _graph_nodes(child)


def _normal_image(reference: str) -> str:
    """docker.io/x/y:t and x/y:t name the same image."""
    return reference.removeprefix("docker.io/")
