"""The candidates of the search for a less discriminatory alternative: what each one is.

Every candidate is one deterministic scikit-learn pipeline (:func:`loanxai.core.pipeline.build_pipeline`)
with no declared protected attribute as an input (age excepted, under the elderly rule), made of:

- **a family and its setting** (:data:`FAMILIES`): the design's random forest and the settings
  a tuning would try (more trees, smaller leaves, no depth limit), and scikit-learn's
  HistGradientBoosting (:data:`~loanxai.core.pipeline.BOOSTING`). Seeds are not a setting:
  seeds of equal ROC AUC differ in their worst ratio by sampling noise alone, and a rule that
  chose among them would choose noise;
- **a feature set**: every model input, and every model input but one of the strongest proxies
  of a screened attribute (:data:`PROXIES_DROPPED` per attribute);
- **a mitigation**: none, Kamiran-Calders reweighing at the strengths of :data:`WEIGHTINGS`, or
  one grid point of a fairlearn GridSearch (:data:`CONSTRAINTS`) for a screened attribute, on
  a grid as fairlearn recommends: binary groups (:func:`binary_groups`: one constraint, so
  :data:`GRID_SIZE` points cover it) and every point one deterministic model, never the
  randomized mixture ExponentiatedGradient returns.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.reductions import DemographicParity, EqualizedOdds, GridSearch, TruePositiveRateParity
from sklearn.dummy import DummyClassifier

from loanxai.core.pipeline import BOOSTING, FOREST
from loanxai.errors import ArtifactError

__all__ = ["CONSTRAINTS", "FAMILIES", "FAVOURED", "GRID_SIZE", "INCUMBENT", "OTHERS", "PROXIES_DROPPED", "QUICK",
           "SEED_REFERENCE", "WEIGHTINGS", "Spec", "binary_groups", "family_settings", "incumbent_spec",
           "kamiran_calders_weights", "lambda_grid"]

#: each family's settings by name; the first of each is its default (and the only one of a quick search).
#: Measured on the census's training rows (5-fold CV, one core, 2026-12-07): the design's forest
#: 0.864 ROC AUC in 0.27 s a fit, 50 trees with leaves of 5 0.869 in 0.59 s, boosting 0.887 in 0.74 s.
FAMILIES: dict[str, dict[str, dict[str, Any]]] = {
    FOREST: {
        "forest": {"n_estimators": 25, "min_samples_leaf": 20, "max_depth": 12},
        "shallow": {"n_estimators": 25, "min_samples_leaf": 50, "max_depth": 8},
        "forest 50 leaf 10": {"n_estimators": 50, "min_samples_leaf": 10},
        "forest 50 leaf 5": {"n_estimators": 50, "min_samples_leaf": 5},
    },
    BOOSTING: {
        "boosting": {"max_iter": 100, "learning_rate": 0.1},
        "boosting 15 leaves": {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 15},
    },
}
#: a quick search (tests): each family's first setting, this many trees (or boosting iterations), fewer grid points
QUICK = {"trees": 10, "grid_size": 5}
#: reweighing strengths: none, half, Kamiran-Calders
WEIGHTINGS = (0.0, 0.5, 1.0)
#: fairlearn's constraints a lender can defend, by name
CONSTRAINTS: dict[str, Callable[[], Any]] = {
    "demographic parity": DemographicParity,
    "true positive rate parity": TruePositiveRateParity,
    "equalized odds": EqualizedOdds,
}
#: grid points of each GridSearch: binary groups make demographic parity and true positive rate
#: parity one-dimensional and equalized odds two-dimensional, well above fairlearn's 2**dimension
GRID_SIZE = 15
#: proxies of each screened attribute dropped in turn
PROXIES_DROPPED = 2
#: the two sides of a binary constraint
FAVOURED, OTHERS = "favoured", "others"
#: the reference candidate's name: every declared attribute an input (never chosen)
SEED_REFERENCE = "seed"
#: the served model's recipe, re-assessed beside the candidates when given (never chosen)
INCUMBENT = "incumbent"
#: the keys of a recorded recipe that are not the estimator's own settings
_RECIPE_KEYS = ("family", "random_state", "features", "reweighing", "reduction")


@dataclass(frozen=True)
class Spec:
    """A candidate's recipe. ``reduction``: (constraint, attribute, grid point) of a GridSearch."""

    name: str
    features: tuple[str, ...]
    family: str = FOREST
    setting: str = "forest"
    weighting: float = 0.0
    reduction: tuple[str, str, int] | None = None
    eligible: bool = True
    summary: str = ""
    #: the estimator's own settings and seed, in place of ``setting``'s and the search's (the incumbent's)
    params: tuple[tuple[str, Any], ...] = ()
    seed: int | None = None

    @property
    def fit_key(self) -> tuple[Any, ...]:
        """What the fits it needs depend on: the candidates of one GridSearch share theirs."""
        reduction = None if self.reduction is None else self.reduction[:2]
        return (self.features, self.family, self.setting, self.weighting, reduction, self.params, self.seed)

    def estimator_settings(self, trees: int | None) -> dict[str, Any]:
        """The estimator's settings: its own (``params``), or its setting's with ``trees``
        (:func:`family_settings`)."""
        return dict(self.params) if self.params else family_settings(self.family, self.setting, trees)

    def settings(self, seed: int, trees: int | None, grid_size: int) -> dict[str, Any]:
        """What the manifest records of how it is trained."""
        settings = {"family": self.family, "random_state": seed if self.seed is None else self.seed,
                    **self.estimator_settings(trees), "features": list(self.features)}
        if self.weighting:
            settings["reweighing"] = self.weighting
        if self.reduction:
            settings["reduction"] = {"constraint": self.reduction[0], "attribute": self.reduction[1],
                                     "grid_point": self.reduction[2], "grid_size": grid_size,
                                     "groups": "binary: the groups approved below the training rows' overall rate "
                                               "against the others"}
        return settings


def incumbent_spec(settings: Mapping[str, Any], columns: Sequence[str], grid_size: int, where: str) -> Spec:
    """The recipe of a served model (``settings``: its manifest's ``search.settings``, ``where``
    names the manifest) as a candidate named :data:`INCUMBENT`, to re-assess on the same folds
    and never choose; ``columns``: the dataset's model inputs and declared attributes.

    Raises :class:`~loanxai.errors.ArtifactError` when the recipe cannot be refitted here: an
    input the dataset lacks, or a reduction on another grid."""
    features = tuple(settings["features"])
    missing = [f for f in features if f not in columns]
    if missing:
        raise ArtifactError(f"{where}: the incumbent's input {missing[0]!r} is not a column of this dataset")
    reduction = settings.get("reduction")
    if reduction and not (str(reduction.get("groups", "")).startswith("binary") and reduction["grid_size"] == grid_size):
        raise ArtifactError(f"{where}: the incumbent's reduction was fitted on another grid than this search's "
                            f"({grid_size} points, binary groups): retrain it with this version to compare")
    params = tuple(sorted((k, v) for k, v in settings.items() if k not in _RECIPE_KEYS))
    family = settings.get("family", FOREST)
    return Spec(INCUMBENT, features, family, weighting=float(settings.get("reweighing", 0.0)),
                reduction=None if not reduction else (reduction["constraint"], reduction["attribute"],
                                                      reduction["grid_point"]),
                eligible=False, params=params, seed=int(settings["random_state"]),
                summary="the incumbent: the served model's recipe, refitted on the same folds (a reference, never chosen)")


def family_settings(family: str, setting: str, trees: int | None) -> dict[str, Any]:
    """The estimator's settings of ``setting`` (:data:`FAMILIES`); ``trees`` replaces its number of
    trees (a forest's) or of boosting iterations."""
    settings = dict(FAMILIES[family][setting])
    if trees:
        settings["n_estimators" if family == FOREST else "max_iter"] = trees
    return settings


def kamiran_calders_weights(groups: pd.Series, y: np.ndarray) -> np.ndarray:
    """Reweighing (Kamiran and Calders, 2012): ``w(g, y) = P(g) P(y) / P(g, y)``, shape (n,).

    Each (group, label) cell then weighs as much as it would if label and group were
    independent; the weights sum to n.
    """
    groups = pd.Series(np.asarray(groups), name="group")
    labels = pd.Series(np.asarray(y), name="label")
    p_group = groups.map(groups.value_counts(normalize=True))
    p_label = labels.map(labels.value_counts(normalize=True))
    cells = pd.concat([groups, labels], axis=1)
    p_cell = cells.groupby(["group", "label"])["group"].transform("size") / len(cells)
    return (p_group * p_label / p_cell).to_numpy(dtype=np.float64)


def binary_groups(groups: pd.Series, y: np.ndarray) -> np.ndarray:
    """Each row's side of a binary constraint, shape (n,): :data:`OTHERS` for the groups the
    training rows approve at a rate below their overall rate, :data:`FAVOURED` for the rest.

    With two sides a constraint has one dimension per event, so a grid of :data:`GRID_SIZE`
    points covers it, and every side holds enough rows for each fold (groups too small to judge
    join a side instead of constraining alone, on rates that are mostly noise).
    """
    labels = pd.Series(np.asarray(y), index=groups.index)
    rates: Mapping[Any, float] = labels.groupby(groups.astype(str)).mean()
    below = {g for g, rate in rates.items() if rate < labels.mean()}
    return np.where(groups.astype(str).isin(below), OTHERS, FAVOURED)


def lambda_grid(constraint: str, sides: np.ndarray, y: np.ndarray, grid_size: int) -> pd.DataFrame:
    """The Lagrange multipliers fairlearn's GridSearch tries for ``constraint`` over ``sides``
    (:func:`binary_groups`), one column per grid point. The grid depends on the constraint's
    groups and events only, so a GridSearch of a constant model gives it at once; every fold
    then fits on the same grid, and a grid point is the same multiplier in each."""
    search = GridSearch(DummyClassifier(strategy="prior"), CONSTRAINTS[constraint](), grid_size=grid_size,
                        sample_weight_name="sample_weight")
    search.fit(np.zeros((len(y), 1)), y, sensitive_features=sides)
    return search.lambda_vecs_

