"""deploy/ on a real Kubernetes API server, admitted by Seldon Core's webhook and reconciled by its operator.

The control plane is :class:`loanxai.ops.cluster.LocalCluster`: etcd, kube-apiserver v1.29.4 and
Seldon Core's operator (v1.16.0: v1.17.1 is not served by the Go module proxy here) built from
source, the SeldonDeployment CRD as v1.17.1 ships it. The tests apply ``deploy/`` and
``deploy/challenger/`` as a platform engineer does (``kubectl apply --server-side -k``), check the
server kept every field, let the operator make its Deployments and Services, and check them and
the reviewer console's own Deployment and Service against what the manifests and ``deploycheck``
assume. Selectors are evaluated by the API server itself, on pods made from the pod templates
(nothing runs them: there is no kubelet).
"""
from __future__ import annotations

import base64
import copy
import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from loanxai.artifacts import DEPLOY_DIR
from loanxai.config import CHALLENGER, CHAMPION
from loanxai.ops import deploycheck, kubedocs
from loanxai.ops.cluster import LocalCluster
from loanxai.ops.images import pin_tag

NAMESPACE = "loan"
#: the operator's names for what it makes of a predictor: the executor's Service and each container's Deployment
CLASSIFIER, EXPLAINER = "loan-classifier", "loan-explainer"
#: the reviewer console's Deployment and Service (ours, not the operator's), and the pod made here from its template
CONSOLE = CONSOLE_POD = "loan-console"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as cluster:
        for namespace in ("istio-system", "monitoring"):  # what the NetworkPolicies let in
            cluster.kubectl("create", "namespace", namespace)
        yield cluster


def rendered(cluster, directory: Path) -> list[dict]:
    """What ``kubectl apply -k directory`` sends: kustomize as the built kubectl has it."""
    return [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(directory)).stdout) if d]


def apply(cluster, directory: Path) -> list[dict]:
    """``kubectl apply --server-side -k directory``: the objects as the server holds them afterwards."""
    done = cluster.kubectl("apply", "--server-side", "--field-manager=loanxai-deploy", "-k", str(directory), "-o", "json")
    answer = json.loads(done.stdout)
    return answer["items"] if answer.get("kind") == "List" else [answer]


MISSING = object()


def dropped(sent, kept, path: str = "") -> list[str]:
    """The paths of ``sent`` that ``kept`` does not hold with the same value (the server may add, never drop)."""
    if isinstance(sent, dict):
        if not isinstance(kept, dict):
            return [path or "."]
        return [p for key, value in sent.items() for p in dropped(value, kept.get(key, MISSING), f"{path}.{key}")]
    if isinstance(sent, list):
        if not isinstance(kept, list) or len(kept) != len(sent):
            return [path]
        return [p for i, value in enumerate(sent) for p in dropped(value, kept[i], f"{path}[{i}]")]
    return [] if sent == kept or str(sent) == str(kept) else [f"{path}: sent {sent!r}, kept {kept!r}"]


def as_sent(document: dict) -> dict:
    """A rendered document as the server answers for it (a Secret's ``stringData`` comes back as ``data``)."""
    document = copy.deepcopy(document)
    if document["kind"] == "Secret" and "stringData" in document:
        data = document.setdefault("data", {})
        for key, value in document.pop("stringData").items():
            data[key] = base64.b64encode(value.encode()).decode()
        document["data"] = {k: v for k, v in data.items() if v} or None  # an empty value is not kept
        if document["data"] is None:
            del document["data"]
    document["metadata"].setdefault("namespace", NAMESPACE) if document["kind"] != "Namespace" else None
    return document


def key(document: dict) -> tuple[str, str]:
    return document["kind"], document["metadata"]["name"]


#: the challenger's image tag in these tests (deploy/ may pin both roles to one build)
CHALLENGER_TAG = "0.1.0-challenger000"


@pytest.fixture(scope="module")
def deploy(tmp_path_factory):
    """A copy of deploy/ whose challenger is pinned to a build of its own."""
    folder = shutil.copytree(DEPLOY_DIR, tmp_path_factory.mktemp("deploy") / "deploy")
    pin_tag(CHALLENGER, CHALLENGER_TAG, folder)
    return folder


@pytest.fixture(scope="module")
def applied(cluster, deploy):
    """deploy/, then deploy/challenger/ over it, then deploy/monitoring/: what each sent and what the server kept."""
    results = {}
    for directory in (deploy, deploy / "challenger", deploy / "monitoring"):
        sent = rendered(cluster, directory)
        kept = {key(d): d for d in apply(cluster, directory)}
        results[directory.name] = (sent, kept)
    return results


def test_every_object_is_accepted_with_no_field_dropped(applied):
    for name, (sent, kept) in applied.items():
        assert {key(d) for d in sent} == set(kept), name
        for document in sent:
            lost = dropped(as_sent(document), kept[key(document)])
            assert not lost, (name, key(document), lost)


def seldon_deployment(applied, name: str) -> dict:
    sent, _ = applied["challenger"]
    return next(d for d in sent if key(d) == ("SeldonDeployment", name))


@pytest.mark.parametrize("break_it, words", [
    ("second shadow", "Multiple shadows are not allowed"),
    ("graph names no container", "Can't find container for Predictive Unit"),
])
def test_seldons_webhook_refuses_a_broken_seldon_deployment(cluster, applied, break_it, words):
    deployment = copy.deepcopy(seldon_deployment(applied, CLASSIFIER))
    if break_it == "second shadow":
        extra = copy.deepcopy(deployment["spec"]["predictors"][1])
        extra["name"] = "challenger-two"
        deployment["spec"]["predictors"].append(extra)
    else:
        deployment["spec"]["predictors"][0]["graph"]["name"] = "no-such-container"
    refused = cluster.kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts", "-f", "-",
                              input=yaml.safe_dump(deployment), check=False)
    assert refused.returncode != 0 and words in refused.stderr, refused.stderr
    # the API server's own answer names who refused it (kubectl rewords it)
    answer = cluster.api("POST", f"/apis/machinelearning.seldon.io/v1/namespaces/{NAMESPACE}/seldondeployments?dryRun=All",
                         deployment)
    assert answer.status_code == 422, answer.text
    assert 'admission webhook "v1.vseldondeployment.kb.io" denied the request' in answer.json()["message"]
    assert words in answer.json()["message"]


def get(cluster, kind: str, name: str) -> dict | None:
    found = cluster.kubectl("-n", NAMESPACE, "get", kind, name, "-o", "json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else None


def wait_for(cluster, kind: str, name: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while (found := get(cluster, kind, name)) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {kind} {name} after {timeout:.0f} s; the operator's log:\n{cluster.log_tail('operator')}")
        time.sleep(0.5)
    return found


#: the Deployments the operator makes: (SeldonDeployment, predictor, container) -> Deployment name
GENERATED = {
    (CLASSIFIER, "default", "classifier"): "loan-classifier-default-0-classifier",
    (CLASSIFIER, "challenger", "classifier"): "loan-classifier-challenger-0-classifier",
    (EXPLAINER, "default", "explainer"): "loan-explainer-default-0-explainer",
}


@pytest.fixture(scope="module")
def reconciled(cluster, applied):
    """The operator's Deployments, by (SeldonDeployment, predictor, container)."""
    return {where: wait_for(cluster, "deployment", name) for where, name in GENERATED.items()}


#: every Deployment running our containers: the operator's, and the console's, by (workload, predictor, container)
WORKLOADS = [*GENERATED, (CONSOLE, None, "console")]


@pytest.fixture(scope="module")
def deployments(cluster, reconciled):
    """Every Deployment of :data:`WORKLOADS` as the server holds it."""
    return {**reconciled, (CONSOLE, None, "console"): wait_for(cluster, "deployment", CONSOLE)}


def predictor(applied, deployment: str, name: str) -> dict:
    return next(p for p in seldon_deployment(applied, deployment)["spec"]["predictors"] if p["name"] == name)


def containers(pod_template: dict) -> dict[str, dict]:
    return {c["name"]: c for c in pod_template["spec"]["containers"]}


def missing_items(written: list[dict], made: list[dict]) -> list[str]:
    """The items (env variables, mounts, volumes) of ``written`` that ``made`` lacks or changed, by name."""
    kept = {item["name"]: item for item in made}
    return [item["name"] for item in written if dropped(item, kept.get(item["name"], MISSING))]


@pytest.mark.parametrize("where", list(GENERATED))
def test_the_operator_keeps_our_containers_as_written(applied, reconciled, where):
    deployment, predictor_name, container_name = where
    [component] = predictor(applied, deployment, predictor_name)["componentSpecs"]
    written = containers(component)[container_name]
    pod = reconciled[where]["spec"]["template"]
    made = containers(pod)[container_name]
    for field in ("image", "readinessProbe", "livenessProbe", "resources", "securityContext"):
        assert not dropped(written.get(field), made.get(field)), (where, field)
    for field in ("env", "volumeMounts"):  # the operator adds its own (PREDICTIVE_UNIT_*, /etc/podinfo): ours stay
        assert not missing_items(written[field], made[field]), (where, field)
    assert not missing_items(component["spec"]["volumes"], pod["spec"]["volumes"])
    assert pod["spec"]["terminationGracePeriodSeconds"] == component["spec"]["terminationGracePeriodSeconds"]
    assert not dropped(component["metadata"], pod["metadata"])


@pytest.mark.parametrize("where", list(GENERATED))
def test_the_operator_keeps_the_records_migration_before_the_service(applied, reconciled, where):
    # the service only checks the record's migration: the pod's init container brings it there first
    deployment, predictor_name, container_name = where
    [component] = predictor(applied, deployment, predictor_name)["componentSpecs"]
    [written] = component["spec"]["initContainers"]
    made = {c["name"]: c for c in reconciled[where]["spec"]["template"]["spec"].get("initContainers", [])}
    assert not dropped(written, made.get(written["name"], MISSING)), (where, written["name"])
    assert written["command"] == deploycheck.MIGRATE_COMMAND
    assert written["image"] == containers(component)[container_name]["image"]


@pytest.mark.parametrize("where", WORKLOADS, ids=["-".join(part for part in where if part) for where in WORKLOADS])
def test_our_containers_run_hardened_whatever_the_operator_does_to_the_pod(deployments, where):
    # operator v1.16 replaces the pod's securityContext with its own default (empty here); v1.17 keeps ours
    # (seldon-core #4742): so the containers carry what matters themselves, and the container's wins
    pod = deployments[where]["spec"]["template"]["spec"]
    container = containers({"spec": pod})[where[2]]
    effective = {**(pod.get("securityContext") or {}), **container["securityContext"]}
    assert effective["runAsNonRoot"] is True and effective["runAsUser"] == 8888
    assert effective["seccompProfile"] == {"type": "RuntimeDefault"}
    assert effective["readOnlyRootFilesystem"] is True and effective["allowPrivilegeEscalation"] is False
    assert effective["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize("where", list(GENERATED))
def test_the_executor_stands_before_every_container(reconciled, where):
    pod = reconciled[where]["spec"]["template"]
    executor = containers(pod)["seldon-container-engine"]
    arguments = executor["args"]
    assert arguments[arguments.index("--sdep") + 1] == where[0]
    assert arguments[arguments.index("--predictor") + 1] == where[1]
    assert arguments[arguments.index("--http_port") + 1] == str(deploycheck.EXECUTOR_REST_PORT)
    # its graph: the predictor as written, our container its only node, on the model's port
    graph = json.loads(base64.b64decode(next(v["value"] for v in executor["env"] if v["name"] == "ENGINE_PREDICTOR")))
    assert graph["name"] == where[1] and graph["graph"]["name"] == where[2]
    assert graph["graph"]["endpoint"]["service_port"] == 9000


def test_the_explainers_executor_reads_the_timeout_annotation(applied, reconciled):
    pod = reconciled[(EXPLAINER, "default", "explainer")]["spec"]["template"]
    # the executor reads its timeout from the pod's annotations, through the downward API
    timeout = deploycheck.explainer_timeout_ms(applied["challenger"][0], EXPLAINER)
    assert pod["metadata"]["annotations"]["seldon.io/rest-timeout"] == str(timeout)
    podinfo = next(v for v in pod["spec"]["volumes"] if "downwardAPI" in v)
    assert any(item["fieldRef"]["fieldPath"] == "metadata.annotations" for item in podinfo["downwardAPI"]["items"])
    assert any(m["name"] == podinfo["name"] for m in containers(pod)["seldon-container-engine"]["volumeMounts"])


def explainer_classifier_url(applied) -> str:
    [component] = predictor(applied, EXPLAINER, "default")["componentSpecs"]
    env = containers(component)["explainer"]["env"]
    return next(v["value"] for v in env if v["name"] == "LOAN_CLASSIFIER_URL")


def test_the_service_the_explainer_calls_exists_on_that_port(cluster, applied, reconciled, pods):
    from urllib.parse import urlsplit

    url = urlsplit(explainer_classifier_url(applied))
    service_name, namespace = url.hostname.split(".")[:2]
    assert namespace == NAMESPACE
    service = wait_for(cluster, "service", service_name)
    ports = {p["port"]: p for p in service["spec"]["ports"]}
    assert url.port in ports, service["spec"]["ports"]
    # ... and it leads to the champion's executor, on the port the executor serves REST on
    target = ports[url.port]["targetPort"]
    champion = containers(reconciled[(CLASSIFIER, "default", "classifier")]["spec"]["template"])["seldon-container-engine"]
    assert target in {p["containerPort"] for p in champion["ports"]} | {p.get("name") for p in champion["ports"]}
    assert pods_selected(cluster, service["spec"]["selector"]) == {"loan-classifier-default-0-classifier"}


# --- selectors: the API server evaluates them on pods made from the operator's templates -----------------


def selector_string(selector: dict) -> str:
    """A LabelSelector (``matchLabels``, ``matchExpressions``), or a Service's plain map of labels, as ``-l`` takes it."""
    if not {"matchLabels", "matchExpressions"} & set(selector):
        selector = {"matchLabels": selector}
    terms = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        operator, values = expression["operator"], ",".join(expression.get("values", []))
        terms.append({"In": f"{expression['key']} in ({values})", "NotIn": f"{expression['key']} notin ({values})",
                      "Exists": expression["key"], "DoesNotExist": f"!{expression['key']}"}[operator])
    return ",".join(terms)


@pytest.fixture(scope="module")
def pods(cluster, deployments):
    """One pod per workload, made from its template (the operator's Deployments, the console's, the record's StatefulSet)."""
    templates = {d["metadata"]["name"]: d["spec"]["template"] for d in deployments.values()}
    records = get(cluster, "statefulset", "loan-records")
    templates["loan-records-0"] = template = copy.deepcopy(records["spec"]["template"])
    template["spec"].setdefault("volumes", []).extend(  # as the StatefulSet controller adds its claims
        {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": f"{claim['metadata']['name']}-loan-records-0"}}
        for claim in records["spec"]["volumeClaimTemplates"])
    # no controller-manager makes the namespace's default ServiceAccount, which a pod needs to be admitted
    cluster.kubectl("-n", NAMESPACE, "create", "serviceaccount", "default")
    for name, template in templates.items():
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": template["metadata"]["labels"]},
               "spec": template["spec"]}
        cluster.kubectl("-n", NAMESPACE, "create", "-f", "-", input=json.dumps(pod))
    return templates


def selected(cluster, what: str, selector: dict, namespace: str | None = NAMESPACE) -> set[str]:
    """The names of ``what`` (pods, namespaces) the API server finds for ``selector`` (empty: all)."""
    where = ["-n", namespace] if namespace else []
    labels = selector_string(selector)
    listed = cluster.kubectl(*where, "get", what, *(["-l", labels] if labels else []), "-o", "name")
    return {line.split("/", 1)[1] for line in listed.stdout.split()}


def pods_selected(cluster, selector: dict) -> set[str]:
    return selected(cluster, "pods", selector)


def namespaces_selected(cluster, selector: dict) -> set[str]:
    return selected(cluster, "namespaces", selector, namespace=None)


CLASSIFIER_PODS = {"loan-classifier-default-0-classifier", "loan-classifier-challenger-0-classifier"}
EXPLAINER_PODS = {"loan-explainer-default-0-explainer"}


def by_kind(applied, kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for directory in applied.values() for d in directory[0] if d["kind"] == kind}


def test_each_network_policy_selects_exactly_its_pods_and_callers(cluster, applied, pods):
    policies = by_kind(applied, "NetworkPolicy")
    expected = {
        "loan-classifier-callers": (CLASSIFIER_PODS, [(EXPLAINER_PODS, {"istio-system"}), (set(), {"monitoring"})]),
        "loan-explainer-callers": (EXPLAINER_PODS, [({CONSOLE_POD}, {"istio-system"}), (set(), {"monitoring"})]),
        "loan-console-callers": ({CONSOLE_POD}, [(set(), {"istio-system"})]),
        "loan-records-callers": ({"loan-records-0"}, [(CLASSIFIER_PODS | EXPLAINER_PODS | {CONSOLE_POD}, set())]),
    }
    assert set(policies) == set(expected)
    for name, (targets, rules) in expected.items():
        spec = policies[name]["spec"]
        assert pods_selected(cluster, spec["podSelector"]) == targets, name
        for rule, (callers, namespaces) in zip(spec["ingress"], rules, strict=True):
            from_pods = set().union(*(pods_selected(cluster, peer["podSelector"]) for peer in rule["from"]
                                      if "podSelector" in peer))
            from_namespaces = set().union(*(namespaces_selected(cluster, peer["namespaceSelector"])
                                            for peer in rule["from"] if "namespaceSelector" in peer))
            assert (from_pods, from_namespaces) == (callers, namespaces), name
            if namespaces == {"istio-system"}:  # the ports the gateway reaches: each served by every selected pod
                for pod_name in targets:
                    served = {value for container in pods[pod_name]["spec"]["containers"]
                              for port in container.get("ports", []) for value in (port["containerPort"], port.get("name"))}
                    assert {port["port"] for port in rule["ports"]} <= served, (name, pod_name)
            if namespaces == {"monitoring"}:  # every metrics port of the selected pods, whatever number it got
                admitted = {port["port"] for port in rule["ports"]}
                for pod_name in targets:
                    for container in pods[pod_name]["spec"]["containers"]:
                        for port in container.get("ports", []):
                            if port.get("name") == kubedocs.METRICS_PORT_NAME:
                                assert {port["name"], port["containerPort"]} & admitted, (name, pod_name, port)


def test_each_authorization_policy_selects_exactly_its_service(cluster, applied, pods):
    policies = by_kind(applied, "AuthorizationPolicy")
    assert pods_selected(cluster, policies["loan-classifier-callers"]["spec"]["selector"]) == CLASSIFIER_PODS
    assert pods_selected(cluster, policies["loan-explainer-callers"]["spec"]["selector"]) == EXPLAINER_PODS
    assert pods_selected(cluster, policies["loan-console-callers"]["spec"]["selector"]) == {CONSOLE_POD}
    # the console's sidecar reads a session's cookie as well as the namespace's bearer header
    authentications = by_kind(applied, "RequestAuthentication")
    assert "selector" not in authentications["loan-callers"]["spec"]
    assert pods_selected(cluster, authentications["loan-console-sessions"]["spec"]["selector"]) == {CONSOLE_POD}


def test_the_consoles_service_leads_to_its_pod_on_the_port_it_listens_on(cluster, applied, reconciled, pods):
    service = wait_for(cluster, "service", CONSOLE)
    assert pods_selected(cluster, service["spec"]["selector"]) == {CONSOLE_POD}
    [container] = pods[CONSOLE_POD]["spec"]["containers"]
    command = container["command"]
    listens = int(command[command.index("--port") + 1])
    by_name = {port["name"]: port["containerPort"] for port in container["ports"] if "name" in port}
    [port] = service["spec"]["ports"]
    assert by_name.get(port["targetPort"], port["targetPort"]) == listens
    for probe in ("readinessProbe", "livenessProbe"):
        target = container[probe]["httpGet"]["port"]
        assert by_name.get(target, target) == listens, probe
    # the console's image of the champion's build (the same tag): its artifacts are the ones the console lists
    champion = containers(reconciled[(CLASSIFIER, "default", "classifier")]["spec"]["template"])["classifier"]
    assert container["image"] == "loanxai/console:" + champion["image"].rpartition(":")[2]
    assert {v["name"]: v.get("value") for v in container["env"]}["LOAN_REVIEW_ARTIFACTS"] == deploycheck.IMAGE_ARTIFACTS


def test_the_pod_monitor_scrapes_every_service_pod_on_its_metrics_ports(cluster, applied, reconciled, pods):
    [monitor] = by_kind(applied, "PodMonitor").values()
    assert pods_selected(cluster, monitor["spec"]["selector"]) == CLASSIFIER_PODS | EXPLAINER_PODS
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == kubedocs.METRICS_PORT_NAME
    for where, deployment in reconciled.items():
        pod = deployment["spec"]["template"]
        named = dict(sorted((c["name"], p["containerPort"]) for c in pod["spec"]["containers"]
                            for p in c.get("ports", []) if p.get("name") == endpoint["port"]))
        assert named["seldon-container-engine"] == deploycheck.EXECUTOR_REST_PORT and set(named) == {
            where[2], "seldon-container-engine"}
        # ours where our server listens: the operator numbers it per container (6000, then 6001) and says so
        env = {v["name"]: v.get("value") for v in containers(pod)[where[2]]["env"]}
        assert str(named[where[2]]) == env["PREDICTIVE_UNIT_METRICS_SERVICE_PORT"]
        assert pod["metadata"]["annotations"]["prometheus.io/path"] == endpoint["path"]
    # the label the PodMonitor turns into model_role, on the pods as the operator labels them
    roles = {name: pods[name]["metadata"]["labels"].get(deploycheck.MODEL_ROLE_POD_LABEL) for name in CLASSIFIER_PODS}
    assert roles == {"loan-classifier-default-0-classifier": CHAMPION, "loan-classifier-challenger-0-classifier": CHALLENGER}


def test_the_challengers_shadow_has_its_own_deployment_and_role(applied, reconciled):
    shadow = reconciled[(CLASSIFIER, "challenger", "classifier")]["spec"]["template"]
    env = {v["name"]: v.get("value") for v in containers(shadow)["classifier"]["env"]}
    assert env["LOAN_MODEL_ROLE"] == "challenger"
    assert shadow["metadata"]["labels"][deploycheck.MODEL_ROLE_POD_LABEL] == "challenger"
    champion = reconciled[(CLASSIFIER, "default", "classifier")]["spec"]["template"]
    assert containers(shadow)["classifier"]["image"] != containers(champion)["classifier"]["image"]
    assert predictor(applied, CLASSIFIER, "challenger")["shadow"] is True


def test_a_promotion_moves_the_deployments_image(cluster, deploy, reconciled):
    champion_before, challenger_before = (
        containers(reconciled[(CLASSIFIER, role, "classifier")]["spec"]["template"])["classifier"]["image"]
        for role in ("default", "challenger"))
    assert challenger_before.endswith(f":{CHALLENGER_TAG}")
    # what make promote does once its gate lets the challenger through (loanxai.ops.promote): swap the pins, apply
    champion_tag = champion_before.rsplit(":", 1)[1]
    pin_tag(CHAMPION, CHALLENGER_TAG, deploy)
    pin_tag(CHALLENGER, champion_tag, deploy)
    apply(cluster, deploy / "challenger")
    name = GENERATED[(CLASSIFIER, "default", "classifier")]
    deadline = time.monotonic() + 60
    while containers(get(cluster, "deployment", name)["spec"]["template"])["classifier"]["image"] != challenger_before:
        assert time.monotonic() < deadline, cluster.log_tail("operator")
        time.sleep(0.5)
    shadow = get(cluster, "deployment", GENERATED[(CLASSIFIER, "challenger", "classifier")])
    assert containers(shadow["spec"]["template"])["classifier"]["image"] == champion_before
    # the console follows the champion: its image of the new champion's build holds the new champion's artifacts
    console = get(cluster, "deployment", CONSOLE)
    assert containers(console["spec"]["template"])["console"]["image"] == f"loanxai/console:{CHALLENGER_TAG}"
