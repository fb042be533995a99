"""The elderly rule: age as a model input never counts against an elderly applicant.

Regulation B lets an empirically derived scoring system use age "provided that the age of an
elderly applicant is not assigned a negative factor or value" (12 CFR 1002.6(b)(2)(ii));
elderly means 62 or older (1002.2(o)). Enforced by construction: for an applicant of at least
the description's ``elderly`` age, the model is asked at every age it tells apart below that
age (one value between each pair of its age thresholds) and the most favourable one is used.
So an elderly applicant's probability of approval is at least what any younger age would give
the same application, it does not move as age rises past the threshold, and the principal
reasons never give age as a reason against approval for them
(:class:`~loanxai.explain.reasons.ReasonExplainer`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from loanxai.core.pipeline import IMPUTE_STEP, NUMERIC_STEP, SCALE_STEP
from loanxai.core.schema import FeatureSchema

__all__ = ["ElderlyRule", "elderly_rule", "served_rows", "split_thresholds"]


@dataclass(frozen=True)
class ElderlyRule:
    """``column``: age's position in an encoded row; ``age``: the elderly age; ``candidates``:
    the ages the model tells apart below it, shape (k,)."""

    column: int
    age: float
    candidates: np.ndarray

    def elderly(self, X: np.ndarray) -> np.ndarray:
        """Which rows of ``X``, shape (n, n_features), are elderly applicants, shape (n,)."""
        return X[:, self.column] >= self.age

    def served(self, X: np.ndarray, predict_proba: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The rows as the model is asked them and its answers, in one call of ``predict_proba``
        (encoded rows -> probabilities of rejected and approved, shape (m, 2)).

        Returns ``asked``, ``X`` (shape (n, n_features)) with each elderly applicant's age replaced
        by the candidate age of the highest probability of approval, the other rows as they are;
        and the probabilities of ``asked``, shape (n, 2): the other rows' and each elderly
        applicant's best candidate's, predicted together.
        """
        elderly = self.elderly(X)
        rows = np.flatnonzero(elderly)
        if not len(rows):
            return X, predict_proba(X)
        others = np.flatnonzero(~elderly)
        tries = np.repeat(X[rows], len(self.candidates), axis=0)
        tries[:, self.column] = np.tile(self.candidates, len(rows))
        answers = predict_proba(np.concatenate([X[others], tries]))
        tried = answers[len(others):].reshape(len(rows), len(self.candidates), -1)
        best = tried[:, :, 1].argmax(axis=1)
        asked = X.copy()
        asked[rows, self.column] = self.candidates[best]
        proba = np.empty((len(X), answers.shape[1]), dtype=answers.dtype)
        proba[others] = answers[: len(others)]
        proba[rows] = tried[np.arange(len(rows)), best]
        return asked, proba


def elderly_rule(schema: FeatureSchema, preprocessor: Any, model: Any) -> ElderlyRule | None:
    """The rule for a fitted model (its preprocessor and classifier), or None if age is not an input
    under it. The candidates are one age inside each interval between the model's thresholds on
    age (in years, unscaled) below the elderly age: the model gives every age of an interval the
    same answer, so these are all the answers it can give a younger applicant."""
    if not schema.elderly:
        return None
    [(name, age)] = schema.elderly.items()
    column = schema.feature_names.index(name)
    position = schema.numeric_features.index(name)  # the numeric columns come first, in order
    numeric = preprocessor.named_transformers_[NUMERIC_STEP]
    scale = numeric.named_steps[SCALE_STEP]
    thresholds = split_thresholds(model, position)
    years = np.unique(thresholds * scale.scale_[position] + scale.mean_[position])
    years = years[years < age]
    median = numeric.named_steps[IMPUTE_STEP].statistics_[position]
    if not len(years):  # the model never splits on age below it: one answer for every age
        return ElderlyRule(column, age, np.array([min(median, age - 1)]))
    bounds = np.concatenate([[years[0] - 1], years, [age]])
    return ElderlyRule(column, age, (bounds[:-1] + bounds[1:]) / 2)


def split_thresholds(model: Any, column: int) -> np.ndarray:
    """Every threshold a fitted forest or gradient-boosted model splits preprocessed ``column`` at, sorted."""
    if hasattr(model, "estimators_"):
        splits = [tree.tree_.threshold[tree.tree_.feature == column] for tree in model.estimators_]
    else:  # HistGradientBoostingClassifier: its trees' nodes, leaves excluded
        nodes = [predictor.nodes for iteration in model._predictors for predictor in iteration]
        splits = [n["num_threshold"][(n["feature_idx"] == column) & (n["is_leaf"] == 0)] for n in nodes]
    return np.unique(np.concatenate(splits))


def served_rows(X: np.ndarray, schema: FeatureSchema, preprocessor: Any, model: Any) -> np.ndarray:
    """Encoded rows ``X``, shape (n, n_features), as the classifier asks the fitted model (its
    preprocessor and classifier): with the elderly rule applied where age is an input."""
    rule = elderly_rule(schema, preprocessor, model)
    if rule is None:
        return X
    return rule.served(X, lambda rows: model.predict_proba(preprocessor.transform(rows)))[0]
