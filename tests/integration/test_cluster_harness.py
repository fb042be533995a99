"""The local cluster (loanxai.ops.cluster): a real kube-apiserver stores, and Seldon's real operator
validates and reconciles, SeldonDeployments; stopping it leaves no process and no network behind."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loanxai.errors import LoanError
from loanxai.ops.cluster import WEBHOOK_REFUSAL, LocalCluster, tools_dir

SELDON_CRD = "seldondeployments.machinelearning.seldon.io"
#: the other CRDs the cluster applies (Istio security, prometheus-operator)
OTHER_CRDS = ("authorizationpolicies.security.istio.io", "peerauthentications.security.istio.io",
              "requestauthentications.security.istio.io", "podmonitors.monitoring.coreos.com",
              "prometheusrules.monitoring.coreos.com")


def seldon_deployment(name: str, graph: str, container: str = "classifier") -> str:
    """A minimal SeldonDeployment: one predictor ``main``, one MODEL container."""
    return json.dumps({
        "apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"predictors": [{
            "name": "main", "replicas": 1, "graph": {"name": graph, "type": "MODEL"},
            "componentSpecs": [{"spec": {"containers": [{"name": container, "image": "example/model:1"}]}}]}]}})


def get_json(cluster: LocalCluster, *args: str) -> dict | None:
    done = cluster.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def command_lines() -> list[str]:
    """Every process's command line."""
    lines = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(path.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # gone meanwhile
            pass
    return lines


def network_namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (one whose parent is gone waits for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        tools_dir()
    except LoanError as error:
        pytest.fail(error.message)
    started = time.monotonic()
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as running:
        print(f"cluster up in {time.monotonic() - started:.1f} s")
        yield running


def test_the_api_server_is_kubernetes_1_29_4(cluster):
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.29.4"
    assert version["clientVersion"]["gitVersion"] == "v1.29.4"


def test_the_seldon_crd_is_established_and_served_at_v1(cluster):
    crd = get_json(cluster, "crd", SELDON_CRD)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert [(v["name"], v["served"], v["storage"]) for v in crd["spec"]["versions"]] == [("v1", True, True)]
    resources = json.loads(cluster.kubectl("get", "--raw", "/apis/machinelearning.seldon.io/v1").stdout)["resources"]
    assert "seldondeployments" in {r["name"] for r in resources}
    for name in OTHER_CRDS:
        conditions = {c["type"]: c["status"] for c in get_json(cluster, "crd", name)["status"]["conditions"]}
        assert conditions["Established"] == "True", name


def test_the_operator_runs_as_its_service_account(cluster):
    kubeconfig = cluster.folder / "pki" / "seldon-manager.kubeconfig"
    who = json.loads(cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout)
    assert who["status"]["userInfo"]["username"] == "system:serviceaccount:seldon-system:seldon-manager"
    refused = cluster.kubectl("get", "nodes", kubeconfig=kubeconfig, check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr


def test_the_operator_reconciles_a_seldon_deployment(cluster):
    cluster.kubectl("apply", "-f", "-", input=seldon_deployment("loan", "classifier"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        deployment = get_json(cluster, "deployment", "-n", "default", "loan-main-0-classifier")
        service = get_json(cluster, "service", "-n", "default", "loan-main")
        if deployment and service:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"no Deployment loan-main-0-classifier and Service loan-main after 60 s; the operator's log ends:\n"
                    f"{cluster.log_tail('seldon-manager')}")
    containers = {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert containers["classifier"] == "example/model:1"
    assert containers["seldon-container-engine"].startswith("seldonio/seldon-core-executor:")
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "SeldonDeployment"
    assert {p["port"] for p in service["spec"]["ports"]} == {8000, 5001}
    status = get_json(cluster, "sdep", "-n", "default", "loan")["status"]
    assert status["address"]["url"] == "http://loan-main.default.svc.cluster.local:8000/api/v1.0/predictions"


def test_the_operators_webhook_refuses_a_graph_naming_no_container(cluster):
    refused = cluster.kubectl("apply", "-f", "-", input=seldon_deployment("orphan", "nothing"), check=False)
    assert refused.returncode != 0
    # kubectl rewrites the Status from its details; the API server's own message names the webhook
    # ("machinelearing": the operator's typo, in its Go source)
    assert f'spec.predictors[0].graph: Invalid value: "nothing": {WEBHOOK_REFUSAL}' in refused.stderr
    answer = cluster.api("POST", "/apis/machinelearning.seldon.io/v1/namespaces/default/seldondeployments",
                         json.loads(seldon_deployment("orphan", "nothing")))
    assert answer.status_code == 422
    assert answer.json()["message"] == ('admission webhook "v1.vseldondeployment.kb.io" denied the request: '
                                        'SeldonDeployment.machinelearing.seldon.io "" is invalid: spec.predictors[0].graph: '
                                        f'Invalid value: "nothing": {WEBHOOK_REFUSAL}')
    assert get_json(cluster, "sdep", "-n", "default", "orphan") is None
    # the operator's validator ran: the API server's schema knows nothing of containers
    assert '"Validating v1 Webhook called for CREATE","name":"orphan"' in cluster.operator_log.read_text()


def test_a_second_start_on_the_same_folder_is_refused(cluster):
    with pytest.raises(LoanError, match="already runs"):
        LocalCluster(cluster.folder).start()
    assert cluster.dead() is None


def test_stop_leaves_no_process_and_no_network(cluster):
    pids = [process.pid for process in cluster.processes.values()]
    netns, veth = cluster.netns, f"lxcp{cluster.n}h"
    assert len(pids) == 3
    started = time.monotonic()
    cluster.stop()
    print(f"cluster stopped in {time.monotonic() - started:.1f} s")
    assert not [pid for pid in pids if running(pid)]
    assert [cmdline for cmdline in command_lines() if str(cluster.folder) in cmdline] == []
    assert netns not in network_namespaces()
    assert subprocess.run(["ip", "link", "show", veth], capture_output=True).returncode != 0
    assert not (cluster.folder / "cluster.json").exists()


def test_a_component_that_dies_at_start_is_named_with_its_log_and_nothing_is_left(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("etcd", "kubectl", "seldon-manager"):
        (bin_dir / tool).symlink_to(tools_dir() / tool)
    # the real kube-apiserver, given a flag it does not know
    (bin_dir / "kube-apiserver").write_text(f'#!/bin/sh\nexec {tools_dir() / "kube-apiserver"} --no-such-flag "$@"\n')
    (bin_dir / "kube-apiserver").chmod(0o755)
    failing, before = LocalCluster(tmp_path / "cluster", bin_dir=bin_dir), network_namespaces()
    with pytest.raises(LoanError, match=r"(?s)kube-apiserver exited \(1\) while waiting for kube-apiserver /readyz.*"
                                        r"unknown flag: --no-such-flag"):
        failing.start()
    assert failing.processes == {} and failing.n is None
    assert [cmdline for cmdline in command_lines() if str(tmp_path) in cmdline] == []
    assert network_namespaces() == before


def test_the_command_starts_reuses_and_stops_a_cluster(tmp_path):
    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "loanxai", "cluster", *args, "--dir", str(tmp_path)],
                              capture_output=True, text=True, timeout=400)

    started = command("up")
    assert started.returncode == 0, started.stderr
    assert f"export KUBECONFIG={tmp_path}/kubeconfig" in started.stdout
    again = command("up")
    assert again.returncode == 0 and f"a cluster already runs from {tmp_path}" in again.stdout
    state = json.loads((tmp_path / "cluster.json").read_text())
    kubectl = [str(tools_dir() / "kubectl"), f"--kubeconfig={tmp_path}/kubeconfig"]
    assert subprocess.run([*kubectl, "get", "crd", SELDON_CRD], capture_output=True).returncode == 0
    stopped = command("down")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not running(state["owner"])
    assert [cmdline for cmdline in command_lines() if str(tmp_path) in cmdline] == []
    assert state["netns"] not in network_namespaces()
    assert command("down").stdout == f"no cluster in {tmp_path}\n"
