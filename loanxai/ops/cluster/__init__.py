"""A real Kubernetes control plane with Seldon Core's operator on this machine (tests, ``make cluster-up``).

The modules: :mod:`.network` (the network namespace and its veth pair), :mod:`.pki` (certificates and
kubeconfigs), :mod:`.operator` (the operator's own ``config/``: RBAC, webhook, command line),
:mod:`.control_plane` (:class:`LocalCluster`, the processes) and :mod:`.cli` (``loanxai cluster``).

What runs: etcd, kube-apiserver (``--authorization-mode=RBAC``) and the Seldon Core v1 operator
(``seldon-manager``), built from source by ``scripts/cluster-tools.sh`` (``make cluster-tools``).
There is no kubelet, scheduler or controller-manager: objects are stored, validated, admitted and
reconciled by the operator, but no pod ever runs, a deleted namespace stays ``Terminating`` and
nothing garbage-collects owned objects.

The network: the operator's webhook server binds every interface (controller-runtime 0.11 binds
``:<port>`` and the operator's ``main.go`` offers no host flag), and nothing here may listen beyond
loopback. So the control plane runs in a network namespace of its own, ``loanxai-cp-<n>``, joined to
this one by a veth pair: 10.233.<n>.1/30 here, 10.233.<n>.2/30 there. Inside, etcd listens on
127.0.0.1, the API server on 10.233.<n>.2:6443 (reachable from here over the veth only), the
operator's metrics on 127.0.0.1 and its webhook on 10.233.<n>.2:4443, which the API server calls by
URL with the run's CA as ``caBundle``. A namespace with loopback only (``unshare -n``) would hide the
API server from the tests; a port forwarder would be one more process to own. Ports are fixed: each
cluster has a network of its own.

etcd runs with ``--unsafe-no-fsync``: its data is deleted with the cluster. The operator runs with
its ``config/manager/manager.yaml`` arguments and environment (:func:`operator_command`) as its
ServiceAccount ``seldon-system/seldon-manager``, bound to its ``config/rbac`` roles (a TokenRequest
token valid one year); the admin kubeconfig (``<folder>/kubeconfig``) is a client certificate in
``system:masters``.

Who owns it: every process dies with whoever started it (``PR_SET_PDEATHSIG``), as the services do.
:class:`LocalCluster` runs the cluster for as long as its caller; ``loanxai cluster up``
starts a keeper (``loanxai cluster run``) in a session of its own, which owns the cluster
until ``down`` sends it SIGTERM. One cluster per folder: a second start on a folder whose cluster
runs is refused (``up`` prints the running one's kubeconfig instead); the folder's ``cluster.json``
names the network namespace, so ``down`` also cleans up after an owner that was killed.
"""
from loanxai.ops.cluster.cli import parser, run, run_foreground, up, usage
from loanxai.ops.cluster.control_plane import CRD_FILES, LocalCluster, cluster_running, stop_folder, tools_dir
from loanxai.ops.cluster.operator import OPERATOR_NAMESPACE, WEBHOOK_REFUSAL

__all__ = ["CRD_FILES", "OPERATOR_NAMESPACE", "WEBHOOK_REFUSAL", "LocalCluster", "cluster_running", "parser", "run",
           "run_foreground", "stop_folder", "tools_dir", "up", "usage"]
