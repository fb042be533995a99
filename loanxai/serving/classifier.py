"""The loan classifier's serving class: what ``seldon-core-microservice LoanClassifier`` serves.

Loads the preprocessor and the model (a random forest or gradient boosting) written by ``make
train`` (verified against their manifest first) and answers, for each application in any input
form :mod:`loanxai.core.codecs` accepts, the probabilities of "rejected" and "approved" and the
decision at the cutoff the manifest records (``meta.tags.decisions``), with principal reasons when asked
(:mod:`loanxai.explain.reasons`). Where age is an input, the elderly rule
(:mod:`loanxai.core.elderly`) is applied before the model is asked. Every decision is on the
record (:mod:`loanxai.records`) before it is answered; when it cannot be recorded it is not
answered (503), and readiness fails while the record cannot be written. The only rows answered
unrecorded are those an explainer made up (``meta.tags.purpose: explanation``), and only to a
request carrying the sampling key (:mod:`loanxai.serving.auth`): 403 for anyone else; they get
probabilities and decisions, never principal reasons. Outcomes arrive through Seldon's feedback
endpoint and attach to the record.
``models/loanclassifier/LoanClassifier.py`` is the thin module Seldon's wrapper imports.
"""
from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import json_format
from seldon_core.proto import prediction_pb2

from loanxai.artifacts import COMPILED_FILE, MODEL_FILE, PREPROCESSOR_FILE
from loanxai.config import CHALLENGER, ServiceSettings
from loanxai.core.codecs import DecisionRequest, Outcomes, read_decision_request, read_feedback, request_meta
from loanxai.core.elderly import elderly_rule
from loanxai.core.manifest import ClassifierManifest, load_pickle, load_verified_manifest
from loanxai.core.pipeline import one_job
from loanxai.core.roles import DECIDE_ROLES
from loanxai.core.schema import CLASS_NAMES
from loanxai.errors import Forbidden, InputError, LoanError, ModelParityFailed, RecordInDoubt, RecordUnavailable
from loanxai.explain.reasons import reason_explainer
from loanxai.monitoring.counters import DecisionMonitor
from loanxai.records.queries import recorded_features
from loanxai.records.store import RequestDecisions, served_store
from loanxai.serving.auth import may_sample
from loanxai.serving.common import input_metadata, seldon_error, serve_json
from loanxai.serving.fastpath import FastClassifier, check_parity

__all__ = ["HEALTH_ROWS", "LoanClassifier"]

logger = logging.getLogger(__name__)

#: reference rows /health/status re-predicts (the manifest records 256; all of them are for
#: the start-up parity check, a few suffice for a probe answered every few seconds)
HEALTH_ROWS = 8


class LoanClassifier:
    """The classifier. ``settings`` default to the environment's (:class:`~loanxai.config.ServiceSettings`);
    the artifacts are ``settings.artifacts_dir``, else ``default_artifacts``."""

    #: where the artifacts are when LOAN_ARTIFACTS_DIR is not set (the thin module sets its folder's)
    default_artifacts: Path = Path("artifacts")
    #: the roles that may ask for decisions and send outcomes, with LOAN_AUTH=on
    roles = DECIDE_ROLES

    def __init__(self, settings: ServiceSettings | None = None) -> None:
        # cheap, as Seldon's wrapper and MLServer's runtimes expect: the work is load()'s
        self.settings = settings or ServiceSettings.from_env()
        self.artifacts_dir = self.settings.artifacts_dir or self.default_artifacts
        self.loaded = False

    def load(self) -> None:
        """Load the artifacts (verified against their manifest), check the compiled model's
        parity and open the record (refused unless at the newest migration: ``loanxai records
        upgrade`` migrates it). Once: later calls do nothing. Our server calls it in its master
        before forking (a bad artifact stops the service at once, the workers share the model's
        memory, the metadata can name the prediction path); Seldon's wrapper loads it through
        :meth:`init_metadata`, which it asks when it builds its app, before its workers fork."""
        if self.loaded:
            return
        settings = self.settings
        self.manifest = load_verified_manifest(self.artifacts_dir, ClassifierManifest)
        self.schema = self.manifest.schema
        self.preprocessor = load_pickle(self.artifacts_dir, PREPROCESSOR_FILE)
        # one request is one thread's work: no joblib threads (and none alive at the fork)
        self.model = one_job(load_pickle(self.artifacts_dir, MODEL_FILE))
        self.cutoff = self.manifest.cutoff
        # read now: a decision records the manifest its model was loaded from, whatever replaces the file later
        self.manifest_sha256 = self.manifest.sha256
        self.elderly = elderly_rule(self.schema, self.preprocessor, self.model)
        self.fast = FastClassifier(self.preprocessor, self.model, self.artifacts_dir / COMPILED_FILE)
        self.parity: dict[str, Any] = {"holds": False, "checked": False}
        self.predict_proba = self.pipeline_proba
        self.prediction_path = "scikit-learn"
        if settings.prediction_path == "auto":
            self._choose_fast_path()
        dataset = self.manifest.dataset
        self.reasons = reason_explainer(self.preprocessor, self.model, self.schema,
                                        np.asarray(self.manifest.reasons["reference"], dtype=np.float64),
                                        dataset.titles, self.fast.transform)
        # decisions and outcomes counted for Prometheus (every series created here, before the fork)
        self.monitor = DecisionMonitor(self.manifest) if settings.metrics else None
        # each worker connects on its own: nothing is left connected here
        self.store = served_store(settings, settings.model_role)
        if self.store is None:
            logger.warning("LOAN_RECORDS_URL=off: DECISIONS ARE NOT RECORDED (not for production)")
        else:
            logger.info("decisions are recorded at %s as the %s's", self.store.shown_url, settings.model_role)
        if settings.sampling_key_file is None:
            logger.warning("no LOAN_SAMPLING_KEY_FILE: no explainer can call this classifier (sampled rows need the key)")
        logger.info("classifier %s (dataset %s, candidate %s) from %s serves the %s path, approving at %.4f or more",
                    self.version, dataset.name, self.manifest.candidate, self.artifacts_dir, self.prediction_path,
                    self.cutoff)
        self._log_gate()
        self.loaded = True

    def _log_gate(self) -> None:
        gate = self.manifest.gate
        if gate.status == "passed":
            logger.info("fairness gate passed")
        elif gate.status == "justified":
            logger.warning("THE FAIRNESS SCREEN FLAGGED THIS MODEL (%s); it is served as the less discriminatory "
                           "alternative the search found, under the justification accepted by %s at %s: %s",
                           "; ".join(gate.failed_checks), gate.override["accepted_by"], gate.override["accepted_at"],
                           gate.override["reason"])
        else:
            logger.warning("THIS MODEL MAY NOT SHIP (fairness gate %s: %s): not for production", gate.status,
                           "; ".join(gate.failed_checks + gate.failed_search))

    @property
    def version(self) -> str:
        """The artifact's version (12 hex digits of its file's sha256)."""
        return self.manifest.version

    def pipeline_proba(self, X: np.ndarray) -> np.ndarray:
        """The source of truth: the dill pipeline's probabilities, shape (n, 2), for encoded rows (n, n_features)."""
        return self.model.predict_proba(self.preprocessor.transform(X))

    def _choose_fast_path(self) -> None:
        """Serve the compiled model only if it gives the pipeline's answers on the reference rows."""
        X = np.asarray(self.manifest.reference["rows"], dtype=np.float64)
        self.parity = {**check_parity(self.fast, self.pipeline_proba(X), X, self.cutoff), "checked": True}
        if self.parity["holds"]:
            self.predict_proba = self.fast.predict_proba
            self.prediction_path = "treelite"
        else:
            logger.warning("the compiled model disagrees with the pipeline (%s): serving scikit-learn", self.parity)

    def predict_raw(self, request: Any) -> Any:
        """Answer a SeldonMessage; bad input raises a 400 naming the problem."""
        return serve_json(self._predict_message, request)

    def _predict_message(self, message: dict[str, Any]) -> dict[str, Any]:
        request = read_decision_request(message, self.schema, self.settings.max_batch_rows, self.settings.reasons)
        if request.sampling:
            self._check_sampling(request)
        # the request id outcomes and retries are joined on, as Seldon's executor sets it
        puid = request.puid or uuid.uuid4().hex
        X = request.X
        asked, proba = self.served(X)
        approved = proba[:, 1] >= self.cutoff
        decisions = [CLASS_NAMES[int(a)] for a in approved]
        reasons = None
        if request.reasons:
            reasons = [r.to_dict() for r in self.reasons.explain(asked, proba[:, 1], self.cutoff, request.reasons,
                                                                 shown=X)]
        # the request's tags come back, as Seldon's wrapper does for other models (its batch
        # processor reads its batch_id there); decisions and reasons go beside them
        tags = {k: v for k, v in request.tags.items() if k not in ("reasons", "decisions", "cutoff", "application_ids")}
        if request.sampling:
            if self.monitor is not None:
                self.monitor.sampled(len(X))
        else:
            if self.store is not None:
                tags["application_ids"] = self._record(request, puid, proba[:, 1], decisions, reasons)
            if self.monitor is not None:
                self.monitor.record(X, proba[:, 1], approved, request.groups)
        tags["decisions"] = decisions
        tags["cutoff"] = self.cutoff
        if reasons is not None:
            tags["reasons"] = reasons
        return {"data": {"names": list(CLASS_NAMES), "ndarray": proba.tolist()}, "meta": {"puid": puid, "tags": tags}}

    def _check_sampling(self, request: DecisionRequest) -> None:
        """Sampling is not deciding: only the explainer (its requests carry the sampling key) gets
        rows answered unrecorded, and never their principal reasons."""
        if not may_sample.get():
            raise Forbidden("meta.tags.purpose 'explanation' asks for rows an explainer made up, answered unrecorded: "
                            "only the explainer may ask (its requests carry the sampling key, LOAN_SAMPLING_KEY_FILE); "
                            "an application's decision is asked without it, and recorded")
        if request.reasons:
            raise InputError("meta.tags.reasons: rows an explainer made up get no principal reasons (ask for an "
                             "application's decision instead)")

    def _record(self, request: DecisionRequest, puid: str, approval: np.ndarray, decisions: list[str],
                reasons: list[Any] | None) -> list[str]:
        """Commit the request's decisions (a 503 when the record fails); their application ids.
        A retry (its request id recorded before) is the same request when the recorded
        applications read as the request's (encoded as sent) with the same groups."""
        n = len(decisions)
        protected = [{name: labels[i] for name, labels in request.groups.items()} for i in range(n)]
        decided = RequestDecisions(
            request_id=puid, application_ids=request.application_ids, decided_at=datetime.now(UTC),
            model_version=self.version, manifest_sha256=self.manifest_sha256, dataset=self.manifest.dataset.name,
            inputs=request.entered, protected=protected, probabilities=approval.tolist(), cutoff=self.cutoff,
            decisions=decisions, reasons=reasons)

        def same(recorded: list[dict[str, Any]]) -> bool:
            return (np.array_equal(recorded_features(self.schema, recorded), request.X, equal_nan=True)
                    and [r["protected"] for r in recorded] == protected)

        try:
            return self.store.record(decided, same)
        except (RecordUnavailable, RecordInDoubt) as error:
            if self.monitor is not None:
                self.monitor.unrecorded(n, in_doubt=isinstance(error, RecordInDoubt))
            raise

    def served(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Encoded rows as the model is asked them (with the elderly rule applied where age is
        an input) and their probabilities, shape (n, 2)."""
        if self.elderly is None:
            return X, self.predict_proba(X)
        return self.elderly.served(X, self.predict_proba)

    def send_feedback_raw(self, feedback: prediction_pb2.Feedback) -> prediction_pb2.SeldonMessage:
        """Count the outcomes of a feedback (``/api/v1.0/feedback``: ``request``, ``response``,
        ``truth``) by group and attach them to the record (by the answer's ``meta.puid``); a
        malformed one is a 400 naming the problem, one the record cannot take a 503."""
        message = json_format.MessageToDict(feedback)
        try:
            outcomes = read_feedback(message, self.schema, self.settings.max_batch_rows, self.cutoff)
            recorded = self._record_outcomes(message, outcomes)
        except LoanError as error:
            raise seldon_error(error) from None
        if self.monitor is not None:
            self.monitor.record_outcomes(outcomes)
        answer = {"outcomes": len(outcomes.truth), "correct": int((outcomes.predicted == outcomes.truth).sum()),
                  "recorded": recorded}
        return json_format.ParseDict({"jsonData": answer}, prediction_pb2.SeldonMessage())

    def _record_outcomes(self, feedback: Mapping[str, Any], outcomes: Outcomes) -> int:
        """Attach outcomes to the decisions of the answer's ``meta.puid``; how many attached (a
        challenger attaches none: an outcome is the application's, attached once, to the champion's decision)."""
        puid = request_meta(feedback.get("response") or {}).get("puid")
        if self.store is None or not puid or self.settings.model_role == CHALLENGER:
            return 0
        truths = [(row, {"truth": CLASS_NAMES[int(t)]}) for row, t in enumerate(outcomes.truth)]
        return self.store.attach(puid, "outcome", truths, datetime.now(UTC), "the feedback")

    def collect_metrics(self) -> Iterable[Any]:
        """The references the live metrics are read against (gauges, for the metrics server)."""
        return self.monitor.collect() if self.monitor is not None else ()

    def health_status(self) -> dict[str, Any]:
        """Readiness: the loaded model still gives the reference answers recorded at training,
        and a write to the record commits (a decision that cannot be recorded is not answered:
        the pod leaves the Service until the record can be written again)."""
        reference = self.manifest.reference
        X = np.asarray(reference["rows"][:HEALTH_ROWS], dtype=float)
        if not np.allclose(self.predict_proba(X), reference["probabilities"][:HEALTH_ROWS], rtol=0, atol=1e-9):
            raise seldon_error(ModelParityFailed("the loaded model does not reproduce its reference predictions"))
        if self.store is not None:
            try:
                self.store.check_writable()
            except RecordUnavailable as error:
                raise seldon_error(error) from None
        return {"status": "ok", "model_version": self.version, "model_role": self.settings.model_role,
                "prediction_path": self.prediction_path}

    def init_metadata(self) -> dict[str, Any]:
        """Inputs and outputs for GET /api/v1.0/metadata (loaded first: Seldon's wrapper asks
        when it builds its app, before anything else)."""
        self.load()
        gate = self.manifest.gate
        return {
            "name": "loanclassifier",
            "versions": [self.version],
            "platform": "seldon",
            "inputs": input_metadata(self.schema),
            "outputs": [{"messagetype": "ndarray", "schema": {"names": list(CLASS_NAMES), "shape": [2]}}],
            "custom": {
                "dataset": self.manifest.dataset.name,
                "model_role": self.settings.model_role,
                "candidate": self.manifest.candidate,
                "cutoff": repr(self.cutoff),
                "decision_policy": json.dumps(self.manifest.decision.policy),
                "fairness_gate": gate.status,
                "fairness_gate_failed_checks": "; ".join(gate.failed_checks + gate.failed_search),
                "fairness_gate_override": json.dumps(gate.override),
                # an application the demo and the clients send: the dataset's own example
                "example_application": json.dumps(self.manifest.dataset.example),
                "max_batch_rows": str(self.settings.max_batch_rows),
                "roc_auc": f"{self.manifest.metrics['roc_auc']:.4f}",
                "recall": f"{self.manifest.metrics['recall']:.4f}",
                "precision": f"{self.manifest.metrics['precision']:.4f}",
                "trained_at": self.manifest.created_at,
                "prediction_path": self.prediction_path,
                "parity_max_difference": str(self.parity.get("max_difference", "not checked")),
            },
        }
