"""The explainer, served by ``seldon-core-microservice LoanExplainer``.

Explains one application per request, calling the classifier over REST at
``LOAN_CLASSIFIER_URL``: an anchor (alibi AnchorTabular, written by ``make train`` and verified
against its manifest: the conditions that are enough for the decision) or, with
``meta.tags.kind = "recourse"``, up to ``k`` applications like it that the classifier approves
(:mod:`loanxai.recourse`). The same application, model and ``seed`` give the same answer on
any worker: the samplers are seeded from them. An explanation that outlives its time budget
(``LOAN_EXPLAIN_BUDGET``) is stopped at its next classifier call and answered 504. The
classifier need not be up when this service starts: the explainer gets its predictor on the
first request, and again after the classifier was unreachable (answered 503 naming the URL).
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from seldon_core.flask_utils import SeldonMicroserviceException

from loanxai import anchors
from loanxai.config import Settings
from loanxai.manifest import load_pickle, load_verified_manifest
from loanxai.monitoring import ExplanationMonitor
from loanxai.payload import EXPLAIN_KINDS, EXPLAIN_PARAMETERS, explain_parameters, features_from_message
from loanxai.recourse import RecourseFinder
from loanxai.remote import BudgetExceeded, ClassifierError, ClassifierUnavailable, RemoteClassifier
from loanxai.schema import FeatureSchema, InputError
from loanxai.serving import input_metadata, serve_json

logger = logging.getLogger(__name__)

DEFAULT_ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


class LoanExplainer:
    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.artifacts_dir = self.settings.artifacts_dir or DEFAULT_ARTIFACTS
        self.manifest = load_verified_manifest(self.artifacts_dir)
        self.schema = FeatureSchema.from_dict(self.manifest["schema"])
        # a missing numeric value is explained as the training median the model uses in its place
        self.medians = np.array([self.manifest["numeric_medians"].get(n, np.nan) for n in self.schema.feature_names])
        self.explainer: Any = None
        self.recourse: RecourseFinder | None = None
        self.classifier: RemoteClassifier | None = None
        self._has_predictor = False
        # one explanation at a time per worker: the samplers draw from numpy's global generator;
        # at most LOAN_EXPLAIN_QUEUE more wait for it, the next get 503 at once
        self._lock = threading.Lock()
        self._admission = threading.Lock()
        self._admitted = 0
        self.monitor = ExplanationMonitor(self.settings.explain_budget, self.settings.explain_p95_budget) if self.settings.metrics else None

    def load(self) -> None:
        """Unpickle the explainer (once per gunicorn worker); the classifier is not called yet."""
        self.explainer = load_pickle(self.artifacts_dir, "explainer.dill")
        self.classifier = RemoteClassifier.from_settings(self.settings)
        self.recourse = RecourseFinder(self.schema, self.manifest["recourse"], self.manifest["titles"],
                                       self.classifier.predict_proba)
        logger.info("loaded the explainer from %s; classifier at %s", self.artifacts_dir, self.classifier.url)

    @property
    def version(self) -> str:
        return self.manifest["files"]["explainer.dill"][:12]

    def predict_raw(self, request: Any) -> Any:
        """Explain the one application in a SeldonMessage; explain parameters in ``meta.tags``."""
        return serve_json(self._explain_message, request)

    def _explain_message(self, message: dict[str, Any]) -> dict[str, Any]:
        started, kind, status, spent = time.perf_counter(), "invalid", 500, {"model_calls": 0}
        try:
            X = features_from_message(message, self.schema, max_rows=1)
            parameters = explain_parameters(message, self.settings.explain_threshold, self.schema.n_features)
            kind = parameters["kind"]
            answer = self._admit(np.where(np.isnan(X[0]), self.medians, X[0]), kind, parameters, spent)
            status = 200
            return answer
        except InputError:
            status = 400
            raise
        except SeldonMicroserviceException as error:
            status = error.status_code
            raise
        finally:
            if self.monitor is not None:
                self.monitor.record(kind, status, time.perf_counter() - started, spent["model_calls"])

    def _admit(self, x: np.ndarray, kind: str, parameters: dict[str, Any], spent: dict[str, int]) -> dict[str, Any]:
        """Explain ``x`` if this worker has room; 503 at once if not."""
        with self._admission:
            if self._admitted > self.settings.explain_queue:
                raise SeldonMicroserviceException(
                    f"the explainer is busy: {self._admitted} explanations running or waiting in this worker "
                    "(LOAN_EXPLAIN_QUEUE); retry in a moment", status_code=503, reason="EXPLAINER_BUSY")
            self._admitted += 1
        try:
            return self._explain(x, kind, parameters, spent)
        finally:
            with self._admission:
                self._admitted -= 1

    def _explain(self, x: np.ndarray, kind: str, parameters: dict[str, Any], spent: dict[str, int]) -> dict[str, Any]:
        """Explain ``x``; ``spent["model_calls"]`` gets the classifier calls made, answered or not."""
        with self._lock:
            calls, rows = self.classifier.calls, self.classifier.rows
            seed = anchors.sample_seed(x, self.manifest["classifier_files"]["model.dill"], parameters["seed"])
            np.random.seed(seed)
            random.seed(seed)
            try:
                with self.classifier.budget(self.settings.explain_budget):
                    self._set_predictor()
                    if kind == "anchor":
                        answer = anchors.explain(self.explainer, x, parameters)
                    else:
                        answer = self.recourse.find(x, parameters["k"], seed)
            except ClassifierUnavailable as error:
                self._has_predictor = False
                raise SeldonMicroserviceException(str(error), status_code=503, reason="CLASSIFIER_UNAVAILABLE") from None
            except ClassifierError as error:
                raise SeldonMicroserviceException(str(error), status_code=502, reason="CLASSIFIER_ERROR") from None
            except BudgetExceeded as error:
                raise SeldonMicroserviceException(str(error), status_code=504, reason="EXPLANATION_TIMEOUT") from None
            finally:
                spent["model_calls"] = calls = self.classifier.calls - calls
            rows = self.classifier.rows - rows
        answer = {"kind": kind, "application": self.schema.decode(x)[0], **answer, "seed": parameters["seed"],
                  "model_calls": calls, "model_rows": rows}
        logger.info("explained (%s): %s (%d model calls)", kind,
                    answer.get("anchor_text", f"{len(answer.get('counterfactuals', []))} counterfactuals"), calls)
        return {"jsonData": answer}

    def _set_predictor(self) -> None:
        """Give the explainer its REST predictor; alibi calls it once to check its output."""
        if not self._has_predictor:
            anchors.set_predictor(self.explainer, self.classifier.predict)
            self._has_predictor = True

    def collect_metrics(self) -> Iterable[Any]:
        """The explanation budget, as a gauge (for the metrics server)."""
        return self.monitor.collect() if self.monitor is not None else ()

    def health_status(self) -> dict[str, Any]:
        """Liveness and readiness: the explainer is loaded (the classifier is not called)."""
        return {"status": "ok", "explainer_version": self.version, "classifier_url": self.settings.classifier_url}

    def init_metadata(self) -> dict[str, Any]:
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
