"""Anchor explanations (alibi AnchorTabular): fitted at training, served by the explainer.

An anchor is a set of conditions on the application ("capital-gain <= 0.00 AND occupation =
Sales") under which the model gives the same decision (at the cutoff) with at least the
requested precision on samples of similar applications. An anchor never names a declared
prohibited basis: the explainer works on the :func:`anchor_features` only, and every sample
keeps the applicant's own values of the bases among the model's inputs (age under the elderly
rule), so what it perturbs and states is the rest (:class:`AnchorModel`). The explainer is
pickled right after ``fit``, without its predictor; the service gives it one that calls the
classifier over REST.

alibi 0.9.4 loads its SHAP wrappers whenever shap is installed, and they fail to import without
ray (a type annotation touches a missing-dependency placeholder). This project uses shap
directly, never alibi's wrappers: this module imports alibi with shap hidden from it, so alibi
leaves them out as it does when shap is not installed. Import this module before unpickling an
explainer (:func:`load_explainer` does).
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from loanxai.artifacts import EXPLAINER_FILE
from loanxai.core.codecs import EXPLAIN_PARAMETERS
from loanxai.core.manifest import load_pickle
from loanxai.core.schema import CLASS_NAMES, FeatureSchema
from loanxai.explain.result import Anchor
from loanxai.explain.seeding import sample_seed, seed_generators

__all__ = ["DISC_PERC", "PARAMETERS", "AnchorModel", "anchor_features", "explain", "fit_anchors", "load_explainer",
           "set_predictor", "without_predictor"]


@contextlib.contextmanager
def _shap_hidden() -> Iterator[None]:
    """Within the block ``import shap`` fails as if shap were not installed (a None entry in
    sys.modules); afterwards shap is as it was."""
    saved = sys.modules.get("shap")
    sys.modules["shap"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if saved is None:
            del sys.modules["shap"]
        else:
            sys.modules["shap"] = saved


with _shap_hidden():
    from alibi.exceptions import PredictorCallError
    from alibi.explainers import AnchorTabular

#: the numeric features' bins: quartiles of the training rows
DISC_PERC = (25, 50, 75)
#: what a request may set for an anchor (the rest of :data:`~loanxai.core.codecs.EXPLAIN_PARAMETERS` is
#: the explanation's seed and recourse's)
PARAMETERS = tuple(name for name, (*_, kind) in EXPLAIN_PARAMETERS.items() if kind == "anchor")


def anchor_features(schema: FeatureSchema) -> tuple[str, ...]:
    """The model inputs an anchor may name: every one but the declared bases."""
    return tuple(name for name in schema.feature_names if name not in schema.basis_inputs)


class AnchorModel:
    """The classifier as the anchor explainer asks it: decisions (class codes, shape (n,)) for
    rows of the anchor features, shape (n, k), each completed with the applicant's values of
    the other inputs (``applicant``, encoded, set before each explanation).

    Parameters
    ----------
    schema : the model's feature schema.
    features : the anchor features (:func:`anchor_features`), in the schema's order.
    decide : encoded rows, shape (n, n_features) -> the classifier's decisions, shape (n,).
    """

    def __init__(self, schema: FeatureSchema, features: tuple[str, ...], decide: Callable[[np.ndarray], np.ndarray]) -> None:
        self.columns = np.array([schema.feature_names.index(name) for name in features], dtype=np.intp)
        self.decide = decide
        self.applicant = np.zeros(schema.n_features)

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        """The decisions for rows ``Z`` of the anchor features, shape (n, k) -> (n,)."""
        X = np.repeat(self.applicant[None, :], len(Z), axis=0)
        X[:, self.columns] = Z
        return self.decide(X)


def _unfitted_predictor(Z: np.ndarray) -> np.ndarray:
    """Fitting never asks the model (alibi wants a predictor at once): the service sets the real one."""
    return np.zeros(len(Z), dtype=np.intp)


def fit_anchors(schema: FeatureSchema, X_train: np.ndarray, features: tuple[str, ...], seed: int = 0) -> AnchorTabular:
    """An AnchorTabular explainer of the anchor ``features``, fitted on encoded rows ``X_train``,
    shape (n, n_features), no NaN."""
    columns = [schema.feature_names.index(name) for name in features]
    explainer = AnchorTabular(
        _unfitted_predictor,
        feature_names=list(features),
        categorical_names={i: list(schema.category_map[name]) for i, name in enumerate(features)
                           if name in schema.category_map},
        dtype=np.float64,  # the services encode rows as float64: no rounding on the way
        seed=seed,
    )
    explainer.fit(X_train[:, columns], disc_perc=DISC_PERC)
    return explainer


def without_predictor(explainer: AnchorTabular) -> AnchorTabular:
    """The explainer ready to pickle: its predictor removed (the service sets its own)."""
    explainer.predictor = None
    explainer.samplers[0].predictor = None
    return explainer


def load_explainer(directory: Path) -> AnchorTabular:
    """The explainer pickled in the artifact folder ``directory`` (checked against its manifest), without a predictor."""
    return load_pickle(directory, EXPLAINER_FILE)


def set_predictor(explainer: AnchorTabular, predict: Callable[[np.ndarray], np.ndarray]) -> None:
    """Give the explainer ``predict`` (class codes for encoded rows); alibi calls it once at once,
    and an error it raises comes out as itself, not wrapped."""
    try:
        explainer.reset_predictor(predict)
    except PredictorCallError as error:
        raise (error.__cause__ or error) from None


def explain(explainer: AnchorTabular, model: AnchorModel, x: np.ndarray, parameters: dict[str, Any],
            model_sha256: str) -> Anchor:
    """The anchor of the encoded application ``x``, shape (n_features,), no NaN; ``model``: the
    explainer's predictor; ``parameters`` as :func:`loanxai.core.codecs.explain_parameters`
    returns them. Seeded from ``x``, the model and ``parameters["seed"]``
    (:mod:`loanxai.explain.seeding`): one explanation at a time per process."""
    seed_generators(sample_seed(x, model_sha256, parameters["seed"]))
    model.applicant = x
    explanation = explainer.explain(x[model.columns], **{k: parameters[k] for k in PARAMETERS if k in parameters})
    return Anchor(decision=CLASS_NAMES[int(explanation.raw["prediction"][0])], conditions=tuple(explanation.anchor),
                  precision=float(explanation.precision), coverage=float(explanation.coverage),
                  threshold=parameters["threshold"])
