"""The local cluster's network: a namespace of its own joined to this one by a veth pair (10.233.<n>.0/30)."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess

from loanxai.errors import ClusterError

__all__ = ["API_PORT", "ETCD_PORT", "SERVICE_IP", "SERVICE_RANGE", "WEBHOOK_PORT", "claim_network", "remove_network", "run"]

logger = logging.getLogger(__name__)

API_PORT, WEBHOOK_PORT, ETCD_PORT = 6443, 4443, 2379
#: the first address of --service-cluster-ip-range: the in-cluster ``kubernetes`` Service
SERVICE_RANGE, SERVICE_IP = "10.96.0.0/16", "10.96.0.1"


def run(*command: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Run a short command; raise ClusterError with its stderr if ``check`` and it fails."""
    done = subprocess.run(command, input=input, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise ClusterError(f"{' '.join(command[:6])} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()[-800:]}")
    return done


def claim_network() -> int:
    """Create the network namespace and veth pair of the first free ``n``; return ``n``."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise ClusterError("the local cluster needs root and iproute2's ip (apt-get install iproute2): it makes "
                        "a network namespace and a veth pair")
    taken = run("ip", "-o", "-4", "addr").stdout
    for n in range(1, 255):
        if f" 10.233.{n}." in taken or run("ip", "netns", "add", f"loanxai-cp-{n}", check=False).returncode:
            continue
        ns, here, there = f"loanxai-cp-{n}", f"lxcp{n}h", f"lxcp{n}c"
        try:
            run("ip", "link", "add", here, "type", "veth", "peer", "name", there, "netns", ns)
            run("ip", "addr", "add", f"10.233.{n}.1/30", "dev", here)
            run("ip", "link", "set", here, "up")
            run("ip", "-n", ns, "addr", "add", f"10.233.{n}.2/30", "dev", there)
            run("ip", "-n", ns, "link", "set", there, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
        except BaseException:
            remove_network(n)
            raise
        return n
    raise ClusterError("no free 10.233.<n>.0/30 for the cluster's network namespace (n = 1..254 all taken)")


def remove_network(n: int) -> None:
    """Kill whatever is left in namespace ``loanxai-cp-<n>``, then delete it and its veth pair."""
    ns = f"loanxai-cp-{n}"
    for pid in run("ip", "netns", "pids", ns, check=False).stdout.split():
        logger.warning("killing process %s left in %s", pid, ns)
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    run("ip", "netns", "del", ns, check=False)
    run("ip", "link", "del", f"lxcp{n}h", check=False)
