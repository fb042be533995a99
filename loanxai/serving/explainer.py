"""The explainer's serving class: what ``seldon-core-microservice LoanExplainer`` serves.

Explains one application per request, calling the classifier over REST at
``LOAN_CLASSIFIER_URL``: an anchor (alibi AnchorTabular, written by ``make train`` and verified
against its manifest: the conditions that are enough for the classifier's decision at its
cutoff, never naming a declared prohibited basis) or, with
``meta.tags.kind = "recourse"``, up to ``k`` applications like it that the classifier approves
(:mod:`loanxai.explain.recourse`). The same application, model and ``seed`` give the same answer
on any worker (:mod:`loanxai.explain.seeding`). An explanation that outlives its time budget
(``LOAN_EXPLAIN_BUDGET``, counted from its arrival: the wait for the worker counts) is stopped at
its next classifier call and answered 504; one whose caller has closed its connection is
abandoned before it begins or at its next classifier call (499, counted). The
classifier need not be up when this service starts: the explainer gets its predictor on the
first request, and again after the classifier was unreachable (answered 503 naming the URL).
An explanation asked for a recorded decision (``meta.tags.application_ids``: the lender's id, one)
is on that decision's record before it is answered (:mod:`loanxai.records`): its parameters, its
answer and the explainer's version, attached to the application's newest decision, whose recorded
inputs must be the application sent, decided by the model this explainer explains (404 when the
id has no decision, 409 when the inputs or the model differ, 503 when the record fails). With
``LOAN_AUTH=on`` (:mod:`loanxai.serving.auth`) every explanation names a recorded decision, goes
on its record with who asked (the token's subject and role), and counts against the caller's
budget (:mod:`loanxai.serving.budget`: 429 past it).
``models/explainer/LoanExplainer.py`` is the thin module Seldon's wrapper imports.
"""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from loanxai.artifacts import version
from loanxai.config import ServiceSettings
from loanxai.core.codecs import (
    EXPLAIN_KINDS,
    EXPLAIN_PARAMETERS,
    application_ids,
    explain_parameters,
    features_from_message,
)
from loanxai.core.manifest import ExplainerManifest, load_verified_manifest
from loanxai.core.pipeline import impute
from loanxai.core.roles import EXPLAIN_ROLES
from loanxai.errors import (
    ApplicationMismatch,
    BudgetExceeded,
    CallerGone,
    ClassifierUnavailable,
    DecisionNotFound,
    ExplainerBusy,
    InputError,
    LoanError,
    RecordUnavailable,
    SettingError,
)
from loanxai.explain import anchors
from loanxai.explain.recourse import RecourseFinder
from loanxai.monitoring.counters import ExplanationMonitor
from loanxai.records.queries import recorded_features
from loanxai.records.store import served_store
from loanxai.serving.auth import Caller, current_caller
from loanxai.serving.budget import CallerBudget
from loanxai.serving.common import caller_present, input_metadata, seldon_error, serve_json
from loanxai.serving.remote import RemoteClassifier

__all__ = ["LoanExplainer"]

logger = logging.getLogger(__name__)


class LoanExplainer:
    """The explainer. ``settings`` default to the environment's (:class:`~loanxai.config.ServiceSettings`);
    the artifacts are ``settings.artifacts_dir``, else ``default_artifacts``."""

    #: where the artifacts are when LOAN_ARTIFACTS_DIR is not set (the thin module sets its folder's)
    default_artifacts: Path = Path("artifacts")
    #: the roles that may ask for explanations, with LOAN_AUTH=on
    roles = EXPLAIN_ROLES

    def __init__(self, settings: ServiceSettings | None = None) -> None:
        # cheap, as Seldon's wrapper and MLServer's runtimes expect: the work is load()'s
        self.settings = settings or ServiceSettings.from_env()
        self.artifacts_dir = self.settings.artifacts_dir or self.default_artifacts
        # one explanation at a time per worker: the samplers draw from numpy's global generator;
        # at most LOAN_EXPLAIN_QUEUE more wait for it, the next get 503 at once
        self._lock = threading.Lock()
        self._admission = threading.Lock()
        self._admitted = 0
        self._has_predictor = False
        self.loaded = False

    def load(self) -> None:
        """Load the explainer (verified against its manifest) and open the record (refused
        unless at the newest migration: ``loanxai records upgrade`` migrates it); the classifier
        is not called yet. Once: later calls do nothing. Our server calls it in its master
        before forking (a bad artifact or setting stops the service at once); Seldon's wrapper
        loads it through :meth:`init_metadata`, which it asks when it builds its app."""
        if self.loaded:
            return
        settings = self.settings
        self.manifest = load_verified_manifest(self.artifacts_dir, ExplainerManifest)
        self.schema = self.manifest.schema
        self.classifier = RemoteClassifier.from_settings(settings)
        self.explainer = anchors.load_explainer(self.artifacts_dir)
        self.recourse = RecourseFinder(self.schema, self.manifest.recourse, self.manifest.titles, self.classifier.classify)
        self.anchor_model = anchors.AnchorModel(self.schema, self.manifest.anchor_features, self.classifier.predict)
        self.monitor = (ExplanationMonitor(settings.explain_budget, settings.explain_p95_budget)
                        if settings.metrics else None)
        # the record the explanations of recorded decisions go on
        self.store = served_store(settings)
        if self.store is None:
            logger.warning("LOAN_RECORDS_URL=off: EXPLANATIONS ARE NOT RECORDED (not for production)")
        self.budget = self._caller_budget() if settings.auth else None
        logger.info("loaded the explainer from %s; classifier at %s", self.artifacts_dir, self.classifier.url)
        self.loaded = True

    def _caller_budget(self) -> CallerBudget:
        """The callers' budgets, in a file every worker of this service shares (made before they fork)."""
        if self.store is None:
            raise SettingError("LOAN_AUTH=on needs the record (LOAN_RECORDS_URL is off): who asked for each "
                               "explanation goes on it")
        # made by the process that loads, before it forks the workers that share it; removed when it exits
        folder = Path(tempfile.mkdtemp(prefix="loanxai-budgets-"))
        atexit.register(_remove_if_made_here, folder, os.getpid())
        settings = self.settings
        return CallerBudget(folder / "caller-budgets.sqlite", settings.caller_explanations, settings.caller_model_rows,
                            settings.caller_window)

    @property
    def version(self) -> str:
        """The artifact's version (12 hex digits of its file's sha256)."""
        return self.manifest.version

    def predict_raw(self, request: Any) -> Any:
        """Explain the one application in a SeldonMessage; explain parameters in ``meta.tags``."""
        return serve_json(self._explain_message, request)

    def _explain_message(self, message: dict[str, Any]) -> dict[str, Any]:
        started, arrived = time.perf_counter(), time.monotonic()
        kind, status, spent = "invalid", 500, {"model_calls": 0, "model_rows": 0}
        caller = current_caller.get()
        try:
            X = features_from_message(message, self.schema, max_rows=1)
            parameters = explain_parameters(message, self.settings.explain_threshold, self.schema.n_features)
            kind = parameters["kind"]
            [application_id] = application_ids(message, 1)
            if caller is not None and not application_id:
                raise InputError("meta.tags.application_ids: with LOAN_AUTH=on an explanation names the recorded "
                                 "decision it explains (its application id, one string)")
            decision = self._recorded_decision(application_id, X[0]) if application_id else None
            # a missing numeric value is explained as the training median the model uses in its place
            answer = self._admit(impute(X[0], self.schema, self.manifest.numeric_medians), kind, parameters, spent,
                                 arrived, caller)
            answer["jsonData"]["recorded_for"] = None if decision is None else self._record(
                decision, answer["jsonData"], parameters, caller)
            status = 200
            return answer
        except LoanError as error:
            status = error.status_code
            if isinstance(error, CallerGone):
                logger.info("explanation (%s) abandoned after %.2f s and %d model calls: %s", kind,
                            time.perf_counter() - started, spent["model_calls"], error.message)
            raise
        finally:
            if self.monitor is not None:
                self.monitor.record(kind, status, time.perf_counter() - started, spent["model_calls"],
                                    None if caller is None else caller.role)

    def _recorded_decision(self, application_id: str, x: np.ndarray) -> dict[str, Any] | None:
        """The newest recorded decision of ``application_id``, checked to be of the application
        ``x`` (encoded as sent, shape (n_features,)); None when nothing is recorded here."""
        if self.store is None:
            return None
        decision = self.store.latest(application_id)
        if decision is None:
            raise DecisionNotFound(f"application id {application_id!r} (meta.tags.application_ids) has no decision on "
                                   "the record: explain a decided application by the id its decision answered")
        explained = version(self.manifest.model_sha256)
        if decision["model_version"] != explained:
            raise ApplicationMismatch(f"application id {application_id!r} was decided by model "
                                      f"{decision['model_version']} (request {decision['request_id']}, row "
                                      f"{decision['row']}); this explainer explains model {explained}")
        if not np.array_equal(recorded_features(self.schema, [decision])[0], x, equal_nan=True):
            raise ApplicationMismatch(f"the application sent is not the one recorded for application id "
                                      f"{application_id!r} (request {decision['request_id']}, row {decision['row']}): "
                                      "send its inputs as recorded (`loanxai records show` prints them)")
        return decision

    def _record(self, decision: dict[str, Any], answer: dict[str, Any], parameters: dict[str, Any],
                caller: Caller | None) -> dict[str, Any]:
        """Attach the explanation to ``decision``'s record with who asked (503 when the record
        fails); which decision."""
        kind = parameters["kind"]
        content = {"parameters": parameters, "explainer_version": self.version,
                   "answer": {k: v for k, v in answer.items() if k != "application"},
                   "asked_by": None if caller is None else caller.to_dict()}
        self.store.attach(decision["request_id"], kind, [(decision["row"], content)], datetime.now(UTC),
                          "the explanation")
        return {k: decision[k] for k in ("application_id", "request_id", "row")}

    def _admit(self, x: Any, kind: str, parameters: dict[str, Any], spent: dict[str, int], arrived: float,
               caller: Caller | None) -> dict[str, Any]:
        """Explain ``x`` if this worker has room (503 at once if not, charged to nobody) and the
        caller's budget allows it (429), its classifier rows reserved call by call."""
        with self._admission:
            if self._admitted > self.settings.explain_queue:
                raise ExplainerBusy(f"the explainer is busy: {self._admitted} explanations running or waiting in this "
                                    "worker (LOAN_EXPLAIN_QUEUE); retry in a moment")
            self._admitted += 1
        try:
            reserve = None
            if caller is not None:
                reserve = partial(self.budget.reserve, caller, self.budget.admit(caller))
            return self._explain(x, kind, parameters, spent, arrived, reserve)
        finally:
            with self._admission:
                self._admitted -= 1

    def _explain(self, x: Any, kind: str, parameters: dict[str, Any], spent: dict[str, int], arrived: float,
                 reserve: Callable[[int], None] | None) -> dict[str, Any]:
        """Explain ``x`` within the budget from ``arrived`` (a ``time.monotonic()``) unless its
        caller has gone; ``spent`` gets the classifier calls and rows made, answered or not;
        ``reserve(rows)`` before each call (the caller's budget of rows)."""
        with self._lock:
            waited, budget, present = time.monotonic() - arrived, self.settings.explain_budget, caller_present.get()
            if not present():
                raise CallerGone(f"the caller left while its explanation waited {waited:.2f} s for this worker: "
                                 "abandoned before it began")
            if waited >= budget:
                raise BudgetExceeded(f"the explanation waited {waited:.1f} s for this worker, its whole time budget of "
                                     f"{budget:g} s (LOAN_EXPLAIN_BUDGET): retry in a moment")
            calls, rows = self.classifier.calls, self.classifier.rows
            model = self.manifest.model_sha256
            try:
                with self.classifier.budget(budget, since=arrived, present=present, reserve=reserve):
                    self._set_predictor()
                    if kind == "anchor":
                        result = anchors.explain(self.explainer, self.anchor_model, x, parameters, model)
                    else:
                        result = self.recourse.find(x, parameters["k"], parameters["seed"], model)
            except ClassifierUnavailable:
                self._has_predictor = False
                raise
            finally:
                spent["model_calls"] = calls = self.classifier.calls - calls
                spent["model_rows"] = rows = self.classifier.rows - rows
        answer = {"kind": kind, "application": self.schema.decode(x)[0], **result.to_dict(), "seed": parameters["seed"],
                  "model_calls": calls, "model_rows": rows}
        logger.info("explained (%s): %s (%d model calls)", kind,
                    answer.get("anchor_text", f"{len(answer.get('counterfactuals', []))} counterfactuals"), calls)
        return {"jsonData": answer}

    def _set_predictor(self) -> None:
        """Give the explainer its REST predictor; alibi calls it once to check its output."""
        if not self._has_predictor:
            anchors.set_predictor(self.explainer, self.anchor_model)
            self._has_predictor = True

    def collect_metrics(self) -> Iterable[Any]:
        """The explanation budget and the busiest caller's share of its own, as gauges (for the metrics server)."""
        if self.monitor is None:
            return ()
        return self.monitor.collect(None if self.budget is None else self.budget.busiest_share())

    def health_status(self) -> dict[str, Any]:
        """Liveness and readiness: the explainer is loaded (the classifier is not called), and a
        write to the record commits (explanations of recorded decisions go on it)."""
        if self.store is not None:
            try:
                self.store.check_writable()
            except RecordUnavailable as error:
                raise seldon_error(error) from None
        return {"status": "ok", "explainer_version": self.version}

    def init_metadata(self) -> dict[str, Any]:
        """Inputs and outputs for GET /api/v1.0/metadata (loaded first: Seldon's wrapper asks
        when it builds its app, before anything else)."""
        self.load()
        return {
            "name": "loanexplainer",
            "versions": [self.version],
            "platform": "alibi",
            "inputs": input_metadata(self.schema),
            "outputs": [{"messagetype": "jsonData", "schema": {"type": "anchor explanation"}}],
            "custom": {
                "classifier_url": self.settings.classifier_url,
                "default_threshold": str(self.settings.explain_threshold),
                "explain_kinds": ", ".join(EXPLAIN_KINDS),
                "explain_parameters": ", ".join(EXPLAIN_PARAMETERS),
                "explain_budget_s": str(self.settings.explain_budget),
            },
        }


def _remove_if_made_here(folder: Path, maker: int) -> None:
    """Remove ``folder`` as the process that made it exits (a worker it forked, exiting, leaves it)."""
    if os.getpid() == maker:
        shutil.rmtree(folder, ignore_errors=True)
