"""Run a serving class as a Seldon Core microservice that holds up under load, faults and hostile clients.

``loanxai-microservice LoanClassifier`` (the images' command; ``loanxai serve LoanClassifier``)
stands in for ``seldon-core-microservice``: the same serving class, ports and variables
(``--http-port`` 9000, ``--grpc-port`` 5000, ``--metrics-port`` 6000, ``PREDICTIVE_UNIT_*``,
``GUNICORN_WORKERS``/``_THREADS``/``_KEEPALIVE``, ``GRPC_WORKERS``/``_THREADS``), and the
wrapper's own Flask app and gRPC servicer, so requests, answers and metadata are Seldon's. It
changes what the wrapper cannot be configured to do:

- workers: gunicorn's threaded workers, where a connection waits for its request in the event
  loop, not in a thread (idle and slow clients hold a socket, never a thread), and a request
  must arrive whole within ``LOAN_REQUEST_TIMEOUT`` (:mod:`loanxai.serving.server.workers`);
- custom metrics counted in each process (:mod:`loanxai.serving.server.metrics`): no lock a killed worker
  can leave held, and no IPC on every request;
- the request guards of :mod:`loanxai.serving.server.guards` (methods, paths, body size, strict JSON, CORS,
  and the callers' tokens with ``LOAN_AUTH=on``);
- graceful shutdown: on SIGTERM readiness fails at once, the service keeps serving for
  ``LOAN_DRAIN_SECONDS`` (Kubernetes removes it from the endpoints meanwhile), then stops
  accepting and finishes what is in flight within ``LOAN_GRACEFUL_TIMEOUT``; REST, gRPC and
  metrics servers are children of one supervisor, which stops them all, and which they follow
  if it is killed;
- gRPC (``GRPC_WORKERS`` > 0): the wrapper's servicer in a child process, stopped with the rest.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from functools import partial
from typing import Any

from loanxai.config import ServerSettings, ServiceSettings, Settings
from loanxai.core.cli import command_parser
from loanxai.core.process import die_with_parent
from loanxai.errors import SettingError

__all__ = ["parser", "run"]

logger = logging.getLogger(__name__)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve ``args.interface_name`` until a signal or a child's death (``loanxai serve``); its exit status."""
    # prometheus_client picks its multiprocess mode when imported: the folder comes first
    directory = tempfile.mkdtemp(prefix="loanxai-metrics-")
    os.environ["prometheus_multiproc_dir"] = directory
    try:
        return _serve(args, settings, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _serve(args: argparse.Namespace, settings: Settings, directory: str) -> int:
    # after prometheus_multiproc_dir is set (see run)
    from seldon_core import wrapper
    from seldon_core.microservice import load_annotations, parse_parameters

    from loanxai.serving.server.guards import harden, without_cors
    from loanxai.serving.server.metrics import ProcessMetrics
    from loanxai.serving.server.workers import serve_grpc, serve_http

    service, server = settings.service, settings.server
    ports = {name: getattr(server, name) if getattr(args, name) is None else getattr(args, name)
             for name in ("http_port", "grpc_port", "metrics_port")}
    sys.path.append(os.getcwd())
    module = importlib.import_module(args.interface_name)
    parameters = server.parameters if args.parameters is None else args.parameters
    user_object = getattr(module, args.interface_name)(**parse_parameters(json.loads(parameters)), settings=service)
    # loaded here, before the fork and before the wrapper builds its app (and asks the metadata):
    # a bad artifact, setting or record stops the service at once, the workers share what it loaded
    if hasattr(user_object, "load"):
        user_object.load()
    metrics = ProcessMetrics(directory, extra=[user_object.collect_metrics] if hasattr(user_object, "collect_metrics") else [])
    draining = multiprocessing.Value("b", 0)
    app = harden(wrapper.get_rest_microservice(user_object, metrics), server.max_body_bytes, server.cors_origins,
                 lambda: bool(draining.value), metrics=service.metrics, verifier=_verifier(service, server),
                 roles=getattr(user_object, "roles", frozenset()), sampling_key=_sampling_key(service))
    _allow_open_files(server)
    metrics_app = without_cors(wrapper.get_metrics_microservice(metrics))  # no CORS on metrics either
    children = {
        "rest": partial(serve_http, app, metrics, server, ports["http_port"], server.workers,
                        counted=service.metrics),
        "metrics": partial(serve_http, metrics_app, metrics, server, ports["metrics_port"], 1,
                           counted=service.metrics),
    }
    if server.grpc_workers:
        children["grpc"] = partial(serve_grpc, user_object, metrics, server, ports["grpc_port"], load_annotations())
    logger.info("serving %s on %s: REST :%d (%d workers x %d threads), metrics :%d%s, gRPC %s", args.interface_name,
                server.host, ports["http_port"], server.workers, server.threads, ports["metrics_port"],
                wrapper.METRICS_ENDPOINT, f":{ports['grpc_port']}" if server.grpc_workers else "off")
    return _supervise(children, server, draining)


def _verifier(service: ServiceSettings, settings: ServerSettings) -> Any:
    """The token check of LOAN_AUTH=on (None when off); it covers REST only, so not with gRPC."""
    from loanxai.serving.auth import verifier_of

    if service.auth and settings.grpc_workers:
        raise SettingError("LOAN_AUTH=on covers REST only: set GRPC_WORKERS=0 (gRPC would let callers past the tokens)")
    return verifier_of(service)


def _sampling_key(service: ServiceSettings) -> Any:
    """The sampling key requests for sampled rows must carry (None: LOAN_SAMPLING_KEY_FILE unset, none may ask)."""
    if service.sampling_key_file is None:
        return None
    from loanxai.serving.auth import SecretFile

    key = SecretFile(service.sampling_key_file, "LOAN_SAMPLING_KEY_FILE")
    key.value()  # unreadable or empty: stop now, naming the file
    return key


def _allow_open_files(settings: ServerSettings) -> None:
    """Raise this process's limit of open files (its children inherit it) to what the REST and
    metrics workers may hold, ``LOAN_MAX_CONNECTIONS`` each, and files to spare."""
    import resource

    needed = (settings.workers + 1) * settings.max_connections + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SettingError(f"LOAN_MAX_CONNECTIONS={settings.max_connections} with GUNICORN_WORKERS={settings.workers} "
                               f"needs {needed} open files, above this process's hard limit of {hard}: lower it")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def parser() -> argparse.ArgumentParser:
    """The command's arguments, those of ``seldon-core-microservice``; unset, each is read from its variable."""
    declared = ServerSettings()
    parser = command_parser("Serve a class as a Seldon Core microservice, held up under load, faults and hostile clients.")
    parser.add_argument("interface_name", help="the serving class, found in the module of the same name")
    parser.add_argument("--service-type", default="MODEL", choices=["MODEL"])
    parser.add_argument("--parameters", help=f"the class's parameters (default: PREDICTIVE_UNIT_PARAMETERS, else "
                        f"{declared.parameters})")
    for option, variable in (("http", "HTTP"), ("grpc", "GRPC"), ("metrics", "METRICS")):
        parser.add_argument(f"--{option}-port", type=int, help=f"(default: PREDICTIVE_UNIT_{variable}_SERVICE_PORT, else "
                            f"{getattr(declared, f'{option}_port')})")
    return parser


# --- the supervisor ----------------------------------------------------------------------------------


def _supervise(children: dict[str, Any], settings: ServerSettings, draining: Any) -> int:
    """Start the children, wait for a signal or a child's death, then stop them all gracefully."""
    signals: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, frame: signals.append(number))
    processes = {}
    for name, target in children.items():
        processes[name] = multiprocessing.Process(target=_child, args=(target, os.getpid()), name=name, daemon=False)
        processes[name].start()
        logger.info("%s server: pid %d", name, processes[name].pid)
    status = 0
    while not signals:
        dead = [name for name, process in processes.items() if not process.is_alive()]
        if dead:
            logger.error("the %s server exited (code %s): stopping the service", dead[0], processes[dead[0]].exitcode)
            status = 1
            break
        time.sleep(0.2)
    else:
        draining.value = 1
        logger.info("signal %d: draining for %g s, then finishing what is in flight (at most %g s)",
                    signals[0], settings.drain_seconds, settings.graceful_timeout)
        _wait(lambda: len(signals) > 1, settings.drain_seconds)
    for process in processes.values():
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + settings.graceful_timeout + 5
    for process in processes.values():
        # a second signal stops waiting: whoever sent it wants the service gone now
        _wait(lambda: not process.is_alive() or len(signals) > 1, deadline - time.monotonic())
        if process.is_alive():
            logger.warning("the %s server did not stop in time: killing it", process.name)
            process.kill()
        process.join()
    logger.info("stopped")
    return status


def _wait(done: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def _child(target: Any, supervisor: int) -> None:
    """A child process: it follows the supervisor."""
    die_with_parent()
    if os.getppid() != supervisor:  # the supervisor died before prctl: nobody would stop us
        sys.exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops the children
    target()


