"""The anchor explainer, served by ``seldon-core-microservice LoanExplainer``.

Loads the AnchorTabular explainer written by ``make train`` (verified against its manifest)
and explains one application per request, calling the classifier over REST at
``LOAN_CLASSIFIER_URL``. The classifier need not be up when this service starts: the
explainer gets its predictor on the first request, and again after the classifier was
unreachable (answered with 503 naming the URL).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
from alibi.exceptions import PredictorCallError
from seldon_core.flask_utils import SeldonMicroserviceException

from loanxai.config import Settings
from loanxai.manifest import load_pickle, load_verified_manifest
from loanxai.payload import EXPLAIN_PARAMETERS, explain_parameters, features_from_message
from loanxai.remote import ClassifierError, ClassifierUnavailable, RemoteClassifier
from loanxai.schema import CLASS_NAMES, FeatureSchema
from loanxai.serving import counters, input_metadata, serve_json

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
        self.classifier: RemoteClassifier | None = None
        self._has_predictor = False
        # one explanation at a time per worker: AnchorTabular keeps sampling state
        self._lock = threading.Lock()

    def load(self) -> None:
        """Unpickle the explainer (once per gunicorn worker); the classifier is not called yet."""
        self.explainer = load_pickle(self.artifacts_dir, "explainer.dill")
        self.classifier = RemoteClassifier.from_settings(self.settings)
        logger.info(
            "loaded the explainer from %s; classifier at %s", self.artifacts_dir, self.classifier.url
        )

    @property
    def version(self) -> str:
        return self.manifest["files"]["explainer.dill"][:12]

    def predict_raw(self, request: Any) -> Any:
        """Explain the one application in a SeldonMessage; explain parameters in ``meta.tags``."""
        return serve_json(self._explain_message, request)

    def _explain_message(self, message: dict[str, Any]) -> dict[str, Any]:
        X = features_from_message(message, self.schema, max_rows=1)
        parameters = explain_parameters(message, self.settings.explain_threshold, self.schema.n_features)
        X = np.where(np.isnan(X), self.medians, X)
        with self._lock:
            calls, rows = self.classifier.calls, self.classifier.rows
            try:
                self._set_predictor()
                explanation = self.explainer.explain(X[0], **parameters)
            except ClassifierUnavailable as error:
                self._has_predictor = False
                raise SeldonMicroserviceException(str(error), status_code=503, reason="CLASSIFIER_UNAVAILABLE") from None
            except ClassifierError as error:
                raise SeldonMicroserviceException(str(error), status_code=502, reason="CLASSIFIER_ERROR") from None
            calls, rows = self.classifier.calls - calls, self.classifier.rows - rows
        answer = {
            "application": self.schema.decode(X)[0],
            "prediction": CLASS_NAMES[int(explanation.raw["prediction"][0])],
            "anchor": list(explanation.anchor),
            "anchor_text": " AND ".join(explanation.anchor),
            "precision": float(explanation.precision),
            "coverage": float(explanation.coverage),
            "threshold": parameters["threshold"],
            "threshold_met": bool(explanation.precision >= parameters["threshold"]),
            "model_calls": calls,
            "model_rows": rows,
        }
        logger.info("explained: %s -> %s (%d model calls)", answer["anchor_text"], answer["prediction"], calls)
        return {
            "jsonData": answer,
            "meta": {"metrics": counters(loan_explanations_total=1, loan_explainer_model_calls_total=calls)},
        }

    def _set_predictor(self) -> None:
        """Give the explainer its REST predictor; alibi calls it once to check its output."""
        if self._has_predictor:
            return
        try:
            self.explainer.reset_predictor(self.classifier.predict)
        except PredictorCallError as error:
            raise error.__cause__ or error
        self._has_predictor = True

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
                "explain_parameters": ", ".join(EXPLAIN_PARAMETERS),
            },
        }
