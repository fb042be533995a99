"""Run the classifier and the explainer on this machine, no cluster needed (``loanxai run``).

``make run``: train if the artifacts are missing, start both services and a Prometheus scraping
them with the project's rules (if ``prometheus`` is installed), print their URLs and example
calls, and serve until Ctrl-C; when a service stops by itself, say which and why (its exit and
the end of its log), stop everything else and exit with status 1. ``make demo``: the same, then one prediction and one explanation
with curl and with SeldonClient, printed readably, then a rejected application decided with the
lender's id, its anchor asked by that id, its record (the anchor attached) and its adverse action
notice (HTML and PDF), then stop. ``make replay``: the same, then
the replay of :mod:`loanxai.ops.replay` (held-out traffic, then the trap) and the alerts it raises.
With ``--challenger <artifacts>`` (``make run CHALLENGER=...``) a third service, a classifier in
the challenger role, shadows the classifier: :class:`~loanxai.ops.mirror.Mirror` takes the
classifier's port, answers from the champion and mirrors each decision request to the
challenger, whose decisions are only recorded; a challenger that stops is logged, not fatal.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from loanxai.artifacts import CLASSIFIER_DIR, REPORTS_DIR, RESULTS_DIR, RUN_DIR
from loanxai.clients import api as client
from loanxai.clients.http import PREDICTIONS_PATH
from loanxai.config import CHALLENGER, CHAMPION, Settings
from loanxai.core.cli import command_parser
from loanxai.core.manifest import ClassifierManifest, read_manifest
from loanxai.errors import GateError, PrometheusError, SettingError
from loanxai.fairness.gate import require_shippable
from loanxai.monitoring import rules
from loanxai.monitoring.series import MODEL_ROLE_LABEL
from loanxai.ops import replay
from loanxai.ops.mirror import Mirror
from loanxai.ops.prometheus import LocalPrometheus
from loanxai.ops.reference import KEPT
from loanxai.ops.services import (
    Service,
    challenger_service,
    classifier_service,
    console_service,
    explainer_service,
    free_port,
)
from loanxai.ops.tokens import make_sampling_key
from loanxai.records.applicants import APPLICANT_COLUMNS
from loanxai.report import compare
from loanxai.training.train import ensure_trained

__all__ = ["LOCAL_RULES", "LOCAL_WINDOW_S", "curl_command", "example_calls", "parser", "run", "run_demo"]

logger = logging.getLogger(__name__)


def curl_command(url: str, message: dict) -> list[str]:
    """A curl call posting ``message`` as JSON to ``url``."""
    return ["curl", "-sS", "-H", "Content-Type: application/json", "-d", json.dumps(message), url]


def example_calls(classifier_url: str, explainer: Service) -> list[list[str]]:
    """Curl calls with the trained dataset's example application (from the classifier's manifest),
    to the classifier at ``classifier_url`` (a base URL)."""
    application = read_manifest(CLASSIFIER_DIR, ClassifierManifest).dataset.example
    return [
        curl_command(classifier_url + PREDICTIONS_PATH, {"jsonData": [application]}),
        curl_command(explainer.predictions_url, {"jsonData": application, "meta": {"tags": {"threshold": 0.95}}}),
    ]


def warn_if_unfair() -> None:
    """A loud warning when the fairness screen flagged the trained model: what the gate says,
    and how to record the justification when none is (served here anyway: this is not
    production, and the images and deployment refuse it)."""
    try:
        gate = require_shippable(CLASSIFIER_DIR)
    except GateError as error:
        print(f"\n{'!' * 100}\nWARNING: {error}\n{'!' * 100}\n", file=sys.stderr, flush=True)
        return
    if gate.status == "justified":
        override = gate.override
        print(f"\n{'!' * 100}\nWARNING: the fairness screen flagged this model ({'; '.join(gate.failed_checks)}); the "
              f"search found no materially less discriminatory alternative, and it is served under the justification "
              f"accepted by {override['accepted_by']}: {override['reason']}\n{'!' * 100}\n", file=sys.stderr, flush=True)


#: how often ``make run`` checks that the services it started still run
WATCH_SECONDS = 0.5
#: the local rules: a short window and a short wait, to see alerts within a minute
LOCAL_WINDOW_S = 60
LOCAL_RULES = rules.RuleOptions(window=f"{LOCAL_WINDOW_S}s", for_="5s", min_applications=300)


def local_prometheus(folder: Path, port: int, classifier: Service, explainer: Service,
                     challenger: Service | None = None) -> LocalPrometheus:
    """A Prometheus scraping the services every 2 s, with the local rules; the classifiers'
    series labelled with their ``model_role``, as the PodMonitor labels them in the cluster."""
    rules_file = rules.write(folder / "rules", LOCAL_RULES)[0]
    targets = {"classifier": f"127.0.0.1:{classifier.metrics_port}", "explainer": f"127.0.0.1:{explainer.metrics_port}"}
    labels = {"classifier": {MODEL_ROLE_LABEL: CHAMPION}}
    if challenger is not None:
        targets[CHALLENGER] = f"127.0.0.1:{challenger.metrics_port}"
        labels[CHALLENGER] = {MODEL_ROLE_LABEL: CHALLENGER}
    return LocalPrometheus(folder, port, targets, rules_file, target_labels=labels)


def run_demo(classifier_url: str, explainer: Service, settings: Settings) -> int:
    """One prediction and one explanation with curl, then with requests and SeldonClient."""
    for command in example_calls(classifier_url, explainer):
        print(f"\n$ {shlex.join(command)}")
        answer = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        print(json.dumps(json.loads(answer), indent=2))
    print()
    client.run(client.parser().parse_args(["--classifier-url", classifier_url, "--explainer-url", explainer.url]), settings)
    show_record(classifier_url, explainer)
    return 0


#: the letterhead of the demo's notice when none is configured (LOAN_CREDITOR, LOAN_CREDITOR_PHONE, LOAN_AGENCY)
DEMO_LETTERHEAD = {"LOAN_CREDITOR": "Demo Lender (an example: set LOAN_CREDITOR)|100 Example Street|Springfield",
                   "LOAN_CREDITOR_PHONE": "555-0100 (an example: set LOAN_CREDITOR_PHONE)",
                   "LOAN_AGENCY": "Consumer Financial Protection Bureau|1700 G Street NW|Washington, DC 20552"}


#: what the lender's file says of the demo's applicant (docs: Keep the record and send notices), with a bureau
#: score as a lender that used one would disclose it
DEMO_APPLICANT = {"name": "Demo Applicant (an example)", "address": "12 Example Avenue|Springfield",
                  "credit": "Personal loan, $5,000 over 36 months (an example)", "score": "612", "score_low": "300",
                  "score_high": "850", "score_date": "2026-11-30",
                  "score_source": "Example Credit Bureau (an example)|PO Box 100|Atlanta, GA 30301|(800) 555-0199",
                  "score_factors": "Proportion of balances to credit limits is too high|Length of time accounts "
                                   "have been established"}


def rejected_example() -> dict[str, Any]:
    """A held-out application the trained model rejects (the manifest's reference rows), as its values."""
    manifest = read_manifest(CLASSIFIER_DIR, ClassifierManifest)
    reference = manifest.reference
    rejected = [row for row, p in zip(reference["rows"], reference["probabilities"]) if p[1] < manifest.cutoff]
    return manifest.schema.decode(np.asarray(rejected[:1], dtype=np.float64))[0]


def show_record(classifier_url: str, explainer: Service) -> None:
    """Decide a rejected application with the lender's id and explain it, then show its record
    (the explanation attached) and render its notice."""
    application_id = f"demo-{uuid.uuid4().hex[:8]}"
    application = rejected_example()
    message = {"jsonData": [application], "meta": {"tags": {"application_ids": [application_id], "reasons": True}}}
    command = curl_command(classifier_url + PREDICTIONS_PATH, message)
    print(f"\nA rejected application, decided and recorded under the lender's id {application_id}:\n"
          f"$ {shlex.join(command)}")
    answer = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    print(json.dumps({"decisions": answer["meta"]["tags"]["decisions"],
                      "application_ids": answer["meta"]["tags"]["application_ids"]}))
    command = curl_command(explainer.predictions_url, {"jsonData": application,
                                                       "meta": {"tags": {"application_ids": [application_id]}}})
    print(f"\nIts anchor, asked by its id, goes on its record:\n$ {shlex.join(command)}")
    explained = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)["jsonData"]
    print(json.dumps({k: explained[k] for k in ("anchor_text", "recorded_for")}))
    env = {**DEMO_LETTERHEAD, **os.environ}
    notices = REPORTS_DIR / "notices"
    applicants = REPORTS_DIR / "applicants.csv"
    REPORTS_DIR.mkdir(parents=True, exist_ok=True)  # a fresh checkout has no reports yet
    with applicants.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, APPLICANT_COLUMNS)
        writer.writeheader()
        writer.writerow({"application_id": application_id, **DEMO_APPLICANT})
    for arguments in (["show", application_id],
                      *(["notice", application_id, "--out", str(notices / f"{application_id}{suffix}"), "--applicants",
                         str(applicants)] for suffix in (".html", ".pdf"))):
        print(f"\n$ python -m loanxai records {shlex.join(arguments)}", flush=True)
        subprocess.run([sys.executable, "-m", "loanxai", "records", *arguments], env=env, check=True)


def parser() -> argparse.ArgumentParser:
    """The runner's arguments: ports, logs, and what to do once the services are up."""
    parser = command_parser(__doc__.splitlines()[0])
    parser.add_argument("--classifier-port", type=int, default=9000, help="the classifier's REST port")
    parser.add_argument("--classifier-metrics-port", type=int, default=6000, help="the classifier's metrics port")
    parser.add_argument("--explainer-port", type=int, default=9001, help="the explainer's REST port")
    parser.add_argument("--explainer-metrics-port", type=int, default=6001, help="the explainer's metrics port")
    parser.add_argument("--classifier-grpc-port", type=int, default=5000,
                        help="the classifier's gRPC port (served when GRPC_WORKERS > 0)")
    parser.add_argument("--explainer-grpc-port", type=int, default=5001,
                        help="the explainer's gRPC port (served when GRPC_WORKERS > 0)")
    parser.add_argument("--prometheus-port", type=int, default=9090, help="the local Prometheus's port")
    parser.add_argument("--challenger", type=Path, metavar="ARTIFACTS",
                        help="a retrained classifier's artifacts: serve it as a challenger shadowing the classifier "
                             "(each decision request mirrored to it, its decisions only recorded)")
    parser.add_argument("--challenger-port", type=int, default=9002, help="the challenger's REST port")
    parser.add_argument("--challenger-metrics-port", type=int, default=6002, help="the challenger's metrics port")
    parser.add_argument("--challenger-grpc-port", type=int, default=5002,
                        help="the challenger's gRPC port (served when GRPC_WORKERS > 0)")
    parser.add_argument("--console-port", type=int, default=8000,
                        help="the reviewer console's port (started beside the services, not with --demo or --replay)")
    parser.add_argument("--log-dir", type=Path, default=RUN_DIR, help="the services' logs and Prometheus's data")
    parser.add_argument("--demo", action="store_true", help="send example calls, then stop")
    parser.add_argument("--replay", action="store_true", help="replay held-out traffic and the trap, print alerts, stop")
    return parser


def watch(services: tuple[Service, ...], challenger: Service | None = None) -> Service:
    """Block until one of ``services`` exits (checked every :data:`WATCH_SECONDS`); return it.
    A ``challenger`` that exits is only logged: the champion's answers never depend on it."""
    while True:
        for service in services:
            if service.process is not None and service.process.poll() is not None:
                return service
        if challenger is not None and challenger.process is not None and challenger.process.poll() is not None:
            logger.error("the challenger stopped by itself (%s): the classifier goes on answering, nothing is "
                         "mirrored any more. The end of its log, %s:\n%s", exit_words(challenger.process.returncode),
                         challenger.log_path, challenger.log_tail(10))
            challenger = None
        time.sleep(WATCH_SECONDS)


def exit_words(returncode: int) -> str:
    """A process's end in words: its exit status, or the signal that ended it."""
    return f"killed by {signal.Signals(-returncode).name}" if returncode < 0 else f"exit status {returncode}"


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the services as ``args`` say (``loanxai run``, ``make run``, ``make demo``, ``make replay``)."""
    auth = settings.service.auth
    if auth and (args.demo or args.replay):
        raise SettingError(f"LOAN_AUTH=on: the {'demo' if args.demo else 'replay'} calls the services without tokens; "
                           "unset LOAN_AUTH (docs: Security)")
    ensure_trained()
    warn_if_unfair()

    # each its own gRPC port: the wrapper's gRPC server reuses a port, so two on one would
    # share its requests without an error
    # with a challenger, the mirror takes the classifier's port (as the mesh stands before the
    # predictors) and the champion another; the explainer calls the champion itself
    # the secret the explainer's requests for sampled rows carry: a new one for each run
    sampling = {"LOAN_SAMPLING_KEY_FILE": str(make_sampling_key(args.log_dir / "sampling-key"))}
    challenger = None
    if args.challenger is not None:
        challenger = challenger_service(args.challenger, args.challenger_port, args.challenger_metrics_port,
                                        grpc_port=args.challenger_grpc_port)
    classifier = classifier_service(free_port() if challenger else args.classifier_port, args.classifier_metrics_port,
                                    sampling, grpc_port=args.classifier_grpc_port)
    explainer = explainer_service(classifier.predictions_url, args.explainer_port, args.explainer_metrics_port,
                                  sampling, grpc_port=args.explainer_grpc_port)
    mirror = Mirror(args.classifier_port, classifier.url, challenger.url) if challenger else None
    classifier_url = mirror.url if mirror else classifier.url
    # the reviewer console reads the classifier's record: it starts once the classifier is ready
    # and asks this run's explainer for the anchors and recourse its users ask for
    console = None if args.demo or args.replay else console_service(
        args.console_port, {"LOAN_REVIEW_EXPLAINER_URL": settings.review.explainer_url or explainer.url})
    services = (classifier, explainer, *([challenger] if challenger else []))
    # Ctrl-C and SIGTERM stop both services, whatever this process inherited (a shell's `&`
    # makes it ignore Ctrl-C); a second signal while stopping kills them at once. The services
    # also get SIGTERM if this process dies, however it dies.
    signals: list[int] = []

    def stop(number: int, frame: object) -> None:
        signals.append(number)
        if len(signals) > 1:
            for service in reversed(services):
                service.kill()
        raise KeyboardInterrupt

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, stop)
    prometheus = local_prometheus(args.log_dir / "prometheus", args.prometheus_port, classifier, explainer, challenger)
    try:
        for service in services:
            service.start(args.log_dir / f"{service.name}.log")
        for service in services:
            seconds = service.wait_ready()
            logger.info("%s ready in %.1f s at %s (metrics %s, log %s)", service.name, seconds,
                        service.predictions_url, service.metrics_url, service.log_path)
        if console is not None:
            console.start(args.log_dir / "console.log")
            services = (*services, console)
            logger.info("console ready in %.1f s at %s (log %s)", console.wait_ready(), console.url, console.log_path)
        if mirror is not None:
            mirror.start()
            logger.info("the classifier's decision requests at %s are mirrored to the challenger (%s)", mirror.url,
                        args.challenger)
        if not auth:
            logger.warning("LOAN_AUTH=off: anyone on this machine may call both services, and explanations are "
                           "recorded without who asked (fine here; the Kubernetes manifests turn it on: docs, Security)")
        if not args.demo:
            try:
                prometheus.start()
                logger.info("Prometheus at %s (rules: window %s; alerts at %s/alerts)", prometheus.url,
                            LOCAL_RULES.window, prometheus.url)
            except PrometheusError as error:
                if args.replay:
                    raise
                logger.warning("no Prometheus: %s", error)
        if args.demo:
            return run_demo(classifier_url, explainer, settings)
        if args.replay:
            since = datetime.now(UTC)
            replay.run(replay.parser().parse_args([
                "--classifier-url", classifier_url, "--explainer-url", explainer.url, "--prometheus-url", prometheus.url,
                "--window", str(LOCAL_WINDOW_S), "--record-url", classifier.env["LOAN_RECORDS_URL"],
                "--results", str(RESULTS_DIR / KEPT["replay.md"][0])]), settings)
            if mirror is not None:
                mirror.drain()
                print("\n== the challenger beside the classifier, over the replay:", flush=True)
                compare.run(compare.parser().parse_args([
                    "--record-url", classifier.env["LOAN_RECORDS_URL"], "--challenger", str(args.challenger),
                    "--since", since.isoformat(), "--out", str(args.log_dir / "compare")]), settings)
            return 0
        print("\nExample calls:\n" + "\n".join(shlex.join(c) for c in example_calls(classifier_url, explainer)))
        print(f"\nServing (the reviewer console at {console.url}); Ctrl-C stops every service.", flush=True)
        dead = watch((classifier, explainer, *([console] if console else [])), challenger)
        logger.error("%s stopped by itself (%s): stopping everything else. The end of its log, %s:\n%s", dead.name,
                     exit_words(dead.process.returncode), dead.log_path, dead.log_tail(10))
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        logger.info("stopping the services")
        if mirror is not None:
            mirror.stop()
        prometheus.stop()
        for service in reversed(services):
            try:
                service.stop()
            except KeyboardInterrupt:  # a second signal: the services are being killed already
                service.kill()
    return 0
