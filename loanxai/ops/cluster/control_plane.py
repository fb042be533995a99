"""The local cluster's processes: etcd, kube-apiserver and the operator in their network namespace (:class:`LocalCluster`)."""
from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from loanxai.artifacts import SHARED_DIR
from loanxai.core.process import die_with_parent
from loanxai.errors import ClusterError
from loanxai.ops.cluster.network import API_PORT, ETCD_PORT, SERVICE_RANGE, WEBHOOK_PORT, claim_network, remove_network
from loanxai.ops.cluster.operator import (
    OPERATOR_NAMESPACE,
    OPERATOR_PREFIX,
    PROBE,
    WEBHOOK_REFUSAL,
    operator_command,
    operator_objects,
)
from loanxai.ops.cluster.pki import kubeconfig, make_certificates
from loanxai.ops.services import stop_process_group

__all__ = ["CRD_FILES", "LOCK_FILE", "STATE_FILE", "TOOLS", "LocalCluster", "cluster_running", "stop_folder", "tools_dir"]

logger = logging.getLogger(__name__)

#: the CRDs applied, in order (read from ../shared, never copied into the checkout)
CRD_FILES = (
    SHARED_DIR / "seldon-core-v1.17.1" / "seldondeployment-crd.yaml",
    SHARED_DIR / "istio-1.22.8" / "security.istio.io-crds.yaml",
    SHARED_DIR / "prometheus-operator-v0.93.0" / "monitoring.coreos.com_podmonitors.yaml",
    SHARED_DIR / "prometheus-operator-v0.93.0" / "monitoring.coreos.com_prometheusrules.yaml",
)
TOOLS = ("etcd", "kube-apiserver", "kubectl", "seldon-manager")
STATE_FILE, LOCK_FILE = "cluster.json", "cluster.lock"


def tools_dir() -> Path:
    """The folder of the built tools (``scripts/cluster-tools.sh --print-dir``), without building anything.

    Raises ClusterError naming ``make cluster-tools`` if a tool is missing.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loanxai" / "cluster-tools"
    bin_dir = Path(os.environ.get("LOANXAI_CLUSTER_TOOLS") or cache) / "bin"
    missing = [tool for tool in TOOLS if not (bin_dir / tool).is_file()]
    if missing:
        raise ClusterError(f"{', '.join(missing)} not built in {bin_dir}: run make cluster-tools "
                        "(scripts/cluster-tools.sh builds them from source, about 10 minutes the first time)")
    return bin_dir


def _run(*command: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Run a short command; raise ClusterError with its stderr if ``check`` and it fails."""
    done = subprocess.run(command, input=input, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise ClusterError(f"{' '.join(command[:6])} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")
    return done


def cluster_running(folder: Path) -> bool:
    """True if a cluster runs from ``folder`` (its owner holds the folder's lock)."""
    if not (folder / LOCK_FILE).exists():
        return False
    with open(folder / LOCK_FILE) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def stop_folder(folder: Path, timeout: float = 60.0) -> bool:
    """Stop the cluster of ``folder``: SIGTERM to its owner, then remove what a dead owner left; False if none."""
    state_path = folder / STATE_FILE
    if not state_path.exists():
        return False
    owner = json.loads(state_path.read_text())["owner"]
    if cluster_running(folder):
        os.kill(owner, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        # the owner lets go of the folder's lock, then exits: done when both happened
        while (cluster_running(folder) or _alive(owner)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if cluster_running(folder) or _alive(owner):
            logger.warning("the cluster's owner %s did not stop in %.0f s: killing it", owner, timeout)
            os.kill(owner, signal.SIGKILL)
    _forget(folder)
    return True


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, exited and waiting to be reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _forget(folder: Path) -> None:
    """Remove the network namespace named in ``folder``'s state (its processes killed), then the state."""
    state_path = folder / STATE_FILE
    if state_path.exists():
        remove_network(json.loads(state_path.read_text())["n"])
        state_path.unlink()


class LocalCluster:
    """etcd, kube-apiserver and the Seldon operator in a network namespace of their own; see the module.

    Start it from a thread that outlives it: ``PR_SET_PDEATHSIG`` fires when the starting thread exits.

    Parameters
    ----------
    folder : the run folder: ``kubeconfig``, ``pki/``, ``etcd/``, ``logs/`` (one log per component)
    bin_dir : the built tools (default: :func:`tools_dir`)
    """

    def __init__(self, folder: Path, bin_dir: Path | None = None) -> None:
        self.folder = Path(folder).resolve()
        self._bin_dir = bin_dir
        self.processes: dict[str, subprocess.Popen] = {}
        self.n: int | None = None
        self._lock: Any = None

    @property
    def bin_dir(self) -> Path:
        """The folder of the built tools."""
        if self._bin_dir is None:
            self._bin_dir = tools_dir()
        return self._bin_dir

    kubeconfig = property(lambda self: self.folder / "kubeconfig", doc="The admin kubeconfig (system:masters).")
    operator_log = property(lambda self: self.folder / "logs" / "seldon-manager.log", doc="The operator's log.")
    netns = property(lambda self: f"loanxai-cp-{self.n}", doc="The network namespace's name.")
    ip = property(lambda self: f"10.233.{self.n}.2", doc="The API server's and the webhook's address.")
    server = property(lambda self: f"https://{self.ip}:{API_PORT}", doc="The API server's URL.")

    def __enter__(self) -> LocalCluster:
        """Start the cluster (:meth:`start`)."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the cluster (:meth:`stop`)."""
        self.stop()

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0,
                kubeconfig: Path | None = None) -> subprocess.CompletedProcess:
        """Run the built kubectl with the admin kubeconfig (text out); raise ClusterError with its stderr if ``check`` fails."""
        command = [str(self.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        done = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-1500:]}")
        return done

    def start(self, timeout: float = 120.0) -> None:
        """Start the cluster; return once the API server is ready and the operator's webhook refuses a bad SeldonDeployment.

        Raises ClusterError if a tool, root or ``ip`` is missing, if the folder's cluster already runs,
        or if a component dies or is not ready within ``timeout`` seconds (with its log's tail);
        whatever was started is stopped and removed first.
        """
        config = self.bin_dir.joinpath("seldon-manager").resolve().parent / "config"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.folder / LOCK_FILE, "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise ClusterError(f"a cluster already runs from {self.folder}: stop it first (make cluster-down)") from None
        try:
            _forget(self.folder)  # what an owner killed with -9 left
            for stale in ("etcd", "pki", "logs", "operator-tmp"):
                shutil.rmtree(self.folder / stale, ignore_errors=True)
            self.n = claim_network()
            self._write_state(ready=False)
            self._start_control_plane(timeout)
            self._start_operator(config, timeout)
            self._write_state(ready=True)
        except BaseException:
            self.stop()
            raise

    def _start_control_plane(self, timeout: float) -> None:
        """Certificates and kubeconfig, etcd and kube-apiserver, then the CRDs, Established."""
        pki, started = self.folder / "pki", time.monotonic()
        make_certificates(pki, self.ip, self._webhook_dir)
        self.kubeconfig.write_text(kubeconfig(self.server, pki / "ca.crt", {
            "client-certificate-data": str(pki / "admin.crt"), "client-key-data": str(pki / "admin.key")}))
        self.kubeconfig.chmod(0o600)
        etcd_url = f"http://127.0.0.1:{ETCD_PORT}"
        self._spawn("etcd", [str(self.bin_dir / "etcd"), "--name=loanxai", f"--data-dir={self.folder / 'etcd'}",
                             f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
                             "--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                             "--initial-cluster=loanxai=http://127.0.0.1:2380", "--unsafe-no-fsync"])
        self._spawn("kube-apiserver", [
            str(self.bin_dir / "kube-apiserver"), f"--etcd-servers={etcd_url}", f"--bind-address={self.ip}",
            f"--advertise-address={self.ip}", f"--secure-port={API_PORT}", "--authorization-mode=RBAC",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}", "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_RANGE}", "--profiling=false"])
        self._wait("kube-apiserver /readyz", self._api_ready, timeout)
        logger.info("API server ready at %s after %.1f s", self.server, time.monotonic() - started)
        for path in CRD_FILES:
            if not path.is_file():
                raise ClusterError(f"{path} is missing: the cluster's CRDs are read from ../shared beside the checkout")
        # server-side: the Seldon CRD (800 kB) is too large for client-side apply's last-applied annotation
        files = [argument for path in CRD_FILES for argument in ("-f", str(path))]
        for name in self.kubectl("apply", "--server-side", "-o", "name", *files).stdout.split():
            self._wait(f"{name} Established", lambda name=name: self._established(name.split("/", 1)[1]), timeout)

    def _start_operator(self, config: Path, timeout: float) -> None:
        """The operator's objects, a ServiceAccount kubeconfig, the operator, then its webhook's answer."""
        started = time.monotonic()
        objects = operator_objects(config, f"https://{self.ip}:{WEBHOOK_PORT}", (self.folder / "pki" / "ca.crt").read_bytes())
        self.kubectl("apply", "--server-side", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                            "items": objects}))
        token = self.kubectl("create", "token", OPERATOR_PREFIX + "manager", "-n", OPERATOR_NAMESPACE,
                             "--duration=8760h").stdout.strip()
        operator_kubeconfig = self.folder / "pki" / "seldon-manager.kubeconfig"
        operator_kubeconfig.write_text(kubeconfig(self.server, self.folder / "pki" / "ca.crt", {"token": token}))
        operator_kubeconfig.chmod(0o600)
        command, env = operator_command(config, self.bin_dir, operator_kubeconfig)
        # controller-runtime reads its serving certs from $TMPDIR/k8s-webhook-server/serving-certs (no flag)
        self._spawn("seldon-manager", command, {**env, "TMPDIR": str(self.folder / "operator-tmp")})
        self._wait("the operator's webhook", self._webhook_refuses, timeout)
        logger.info("operator's webhook answering after %.1f s", time.monotonic() - started)

    @property
    def _webhook_dir(self) -> Path:
        return self.folder / "operator-tmp" / "k8s-webhook-server" / "serving-certs"

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        """Start ``command`` inside the namespace, in its own process group, dying with this process."""
        log = self.folder / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        logger.info("starting %s in %s", name, self.netns)
        with open(log, "ab") as out:
            self.processes[name] = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, *command], env={**os.environ, **(env or {})}, cwd=self.folder,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=die_with_parent)

    def dead(self) -> str | None:
        """The name of a component that has exited, or None."""
        return next((name for name, process in self.processes.items() if process.poll() is not None), None)

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last ``lines`` of component ``name``'s log."""
        path = self.folder / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _wait(self, what: str, ready: Any, timeout: float) -> None:
        """Poll ``ready()`` until true; raise ClusterError with a log's tail if a component dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (name := self.dead()) is not None:
                raise ClusterError(f"{name} exited ({self.processes[name].returncode}) while waiting for {what}; "
                                f"{self.folder / 'logs' / name}.log ends:\n{self.log_tail(name)}")
            if ready():
                return
            time.sleep(0.2)
        last = list(self.processes)[-1]
        raise ClusterError(f"{what}: not ready after {timeout:.0f} s; {last}'s log ends:\n{self.log_tail(last)}")

    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 10.0) -> requests.Response:
        """Call the API server at ``path`` as the admin (client certificate), ``body`` as JSON; requests' errors raise."""
        pki = self.folder / "pki"
        return requests.request(method, self.server + path, json=body, timeout=timeout, verify=str(pki / "ca.crt"),
                                cert=(str(pki / "admin.crt"), str(pki / "admin.key")))

    def _answer(self, method: str, path: str, body: dict | None = None) -> requests.Response | None:
        try:
            return self.api(method, path, body, timeout=5)
        except requests.RequestException:
            return None

    def _api_ready(self) -> bool:
        answer = self._answer("GET", "/readyz")
        return answer is not None and answer.status_code == 200

    def _established(self, crd: str) -> bool:
        answer = self._answer("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
        conditions = answer.json().get("status", {}).get("conditions") or [] if answer is not None and answer.ok else []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    def _webhook_refuses(self) -> bool:
        # the operator's own message, which the API server passes on (422): before that, "failed calling webhook" (500)
        answer = self._answer("POST", "/apis/machinelearning.seldon.io/v1/namespaces/default/seldondeployments?dryRun=All",
                              PROBE)
        return answer is not None and answer.status_code == 422 and WEBHOOK_REFUSAL in answer.json().get("message", "")

    def _write_state(self, ready: bool) -> None:
        state = {"owner": os.getpid(), "n": self.n, "netns": self.netns, "server": self.server,
                 "kubeconfig": str(self.kubeconfig), "bin_dir": str(self.bin_dir), "ready": ready,
                 "pids": {name: process.pid for name, process in self.processes.items()}}
        (self.folder / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the operator, the API server and etcd (process groups), then remove the namespace and veth.

        Safe to call twice, and after a failed start.
        """
        for name in reversed(list(self.processes)):
            logger.info("stopping %s", name)
            stop_process_group(self.processes.pop(name), timeout)
        if self.n is not None:
            remove_network(self.n)
            self.n = None
        if self._lock is not None:
            (self.folder / STATE_FILE).unlink(missing_ok=True)
            self._lock.close()
            self._lock = None
