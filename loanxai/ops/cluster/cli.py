"""``loanxai cluster up|run|down``: a local cluster for people (``make cluster-up``), kept by a process of its own."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

from loanxai.artifacts import RUN_DIR
from loanxai.config import Settings
from loanxai.core.cli import command_parser
from loanxai.errors import ClusterError
from loanxai.ops.cluster.control_plane import STATE_FILE, LocalCluster, cluster_running, stop_folder, tools_dir

__all__ = ["parser", "run", "run_foreground", "up", "usage"]

logger = logging.getLogger(__name__)


def _version(bin_dir: Path, tool: str) -> str:
    """A tool's version, from the name of the folder it was built into (``<tool>-<version>``)."""
    return bin_dir.joinpath(tool).resolve().parent.name.rsplit("-", 1)[-1]


def usage(folder: Path) -> str:
    """What to tell a user of the cluster running from ``folder``."""
    state = json.loads((folder / STATE_FILE).read_text())
    bin_dir = Path(state["bin_dir"])
    return (f"Kubernetes {_version(bin_dir, 'kube-apiserver')} API server at {state['server']} with the Seldon Core operator "
            f"{_version(bin_dir, 'seldon-manager')} (network namespace {state['netns']}; logs in {folder / 'logs'}):\n"
            f"  export KUBECONFIG={state['kubeconfig']}\n  export PATH={bin_dir}:$PATH   # the kubectl built with it\n"
            "  kubectl get crd\n  kubectl apply -f my-seldondeployment.yaml   # reconciled; no pod runs (no kubelet)\n"
            f"stop it: make cluster-down (python -m loanxai cluster down --dir {folder})\n")


def _owned_and_ready(folder: Path, owner: int) -> bool:
    try:
        state = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return state["owner"] == owner and state["ready"]


def up(folder: Path, timeout: float = 300.0) -> str:
    """Start a keeper (``run``) owning the cluster of ``folder`` in a session of its own; return once it is ready.

    Returns the usage text. A cluster already running from ``folder`` is reused. Raises ClusterError
    with the tail of ``folder/cluster.log`` if the keeper exits or is not ready within ``timeout`` s.
    """
    if cluster_running(folder):
        return f"a cluster already runs from {folder}:\n" + usage(folder)
    tools_dir()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "cluster.log"
    with open(log, "ab") as out:
        # not die_with_parent: the keeper outlives this command; its own processes die with it
        keeper = subprocess.Popen([sys.executable, "-m", "loanxai", "cluster", "run", "--dir", str(folder)], stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while keeper.poll() is None and time.monotonic() < deadline:
        if _owned_and_ready(folder, keeper.pid):
            return usage(folder)
        time.sleep(0.2)
    if keeper.poll() is None:
        stop_folder(folder)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    raise ClusterError(f"the cluster did not start within {timeout:.0f} s; {log} ends:\n{tail}")


def run_foreground(folder: Path) -> int:
    """Run the cluster of ``folder`` in the foreground until SIGTERM, SIGHUP or Ctrl-C; 1 if a component dies."""
    def leave(signum: int, _frame: object) -> None:
        for each in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(each, signal.SIG_IGN)  # let stop() finish
        raise SystemExit(0)

    for each in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(each, leave)
    with LocalCluster(folder) as cluster:
        sys.stdout.write(usage(folder))
        sys.stdout.flush()
        while (name := cluster.dead()) is None:
            time.sleep(1)
        logger.error("%s exited (%s): stopping the cluster; its log ends:\n%s", name, cluster.processes[name].returncode,
                     cluster.log_tail(name))
    return 1


def parser() -> argparse.ArgumentParser:
    """The command line of ``loanxai cluster``."""
    result = command_parser("A local Kubernetes control plane (etcd, kube-apiserver) with the Seldon Core operator, built "
                            "by make cluster-tools, in a network namespace of its own. Needs root.")
    commands = result.add_subparsers(dest="command", required=True)
    for name, text in (("up", "start it in the background; return once the API server and the operator's webhook answer"),
                       ("run", "run it in the foreground until Ctrl-C or SIGTERM"), ("down", "stop it and remove its network")):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--dir", type=Path, default=RUN_DIR / "cluster",
                             help="the run folder: kubeconfig, certificates, logs (default: .run/cluster in the checkout)")
    return result


def run(args: argparse.Namespace, settings: Settings) -> int | None:
    """Start, run or stop the cluster as ``args`` say (``loanxai cluster``)."""
    folder = args.dir.resolve()
    if args.command == "run":
        return run_foreground(folder)
    if args.command == "up":
        started = time.monotonic()
        sys.stdout.write(up(folder) + f"(up in {time.monotonic() - started:.1f} s)\n")
    else:
        sys.stdout.write(f"cluster in {folder} stopped\n" if stop_folder(folder) else f"no cluster in {folder}\n")
    return None
