"""Anchor explanations (alibi AnchorTabular): fitted at training, served by the explainer.

An anchor is a set of conditions on the application ("capital-gain <= 0.00 AND marital-status
= Separated") under which the model gives the same decision with at least the requested
precision on samples of similar applications. The explainer is pickled right after ``fit``,
without its predictor; the service gives it one that calls the classifier over REST.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
from alibi.exceptions import PredictorCallError
from alibi.explainers import AnchorTabular

from loanxai.schema import CLASS_NAMES, FeatureSchema

#: the numeric features' bins: quartiles of the training rows
DISC_PERC = (25, 50, 75)
#: what a request may set (see :data:`loanxai.payload.EXPLAIN_PARAMETERS`)
PARAMETERS = ("threshold", "beam_size", "max_anchor_size", "delta", "tau")


def sample_seed(x: np.ndarray, model_sha256: str, seed: int) -> int:
    """The samplers' seed for one explanation: a digest of the encoded application, the model
    (its sha256) and the request's ``seed``. The same three give the same explanation, on any worker."""
    digest = hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).tobytes() + model_sha256.encode()
                            + seed.to_bytes(8, "big"))
    return int.from_bytes(digest.digest()[:4], "big")


def fit_anchors(predict: Callable[[np.ndarray], np.ndarray], schema: FeatureSchema, X_train: np.ndarray,
                seed: int = 0) -> AnchorTabular:
    """An AnchorTabular explainer fitted on encoded rows ``X_train``, shape (n, n_features), no NaN."""
    explainer = AnchorTabular(
        predict,
        feature_names=list(schema.feature_names),
        categorical_names=schema.alibi_category_map(),
        dtype=np.float64,  # the services encode rows as float64: no rounding on the way
        seed=seed,
    )
    explainer.fit(X_train, disc_perc=DISC_PERC)
    return explainer


def without_predictor(explainer: AnchorTabular) -> AnchorTabular:
    """The explainer ready to pickle: its predictor removed (the service sets its own)."""
    explainer.predictor = None
    explainer.samplers[0].predictor = None
    return explainer


def set_predictor(explainer: AnchorTabular, predict: Callable[[np.ndarray], np.ndarray]) -> None:
    """Give the explainer ``predict`` (class codes for encoded rows); alibi calls it once at once,
    and an error it raises comes out as itself, not wrapped."""
    try:
        explainer.reset_predictor(predict)
    except PredictorCallError as error:
        raise error.__cause__ or error


def explain(explainer: AnchorTabular, x: np.ndarray, parameters: dict[str, Any]) -> dict[str, Any]:
    """The anchor of the encoded application ``x``, shape (n_features,); ``parameters`` as
    :func:`loanxai.payload.explain_parameters` returns them."""
    explanation = explainer.explain(x, **{k: parameters[k] for k in PARAMETERS if k in parameters})
    return {
        "prediction": CLASS_NAMES[int(explanation.raw["prediction"][0])],
        "anchor": list(explanation.anchor),
        "anchor_text": " AND ".join(explanation.anchor),
        "precision": float(explanation.precision),
        "coverage": float(explanation.coverage),
        "threshold": parameters["threshold"],
        "threshold_met": bool(explanation.precision >= parameters["threshold"]),
    }
