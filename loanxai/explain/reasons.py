"""Principal reasons for a decision: exact Shapley values of the served forest, per feature.

A rejected applicant must receive the specific principal reasons for the decision (Regulation
B, 12 CFR 1002.9(b)(2); usually at most four). For each application :class:`ReasonExplainer`
computes exact TreeSHAP contributions (shap's ``TreeExplainer``, path-dependent, on the
forest's probability of approval) of every preprocessed column, sums the one-hot columns of
each categorical feature back into that feature, and ranks the features: for a rejection
those that lowered the probability of approval most, for an approval those that raised it
most. Contributions add up to the probability the classifier serves: base value + sum of
contributions = probability of approval (within 1e-9; the features are rounded to float32
first, as the trees compare them). A protected attribute is never a reason, even where a
dataset description makes it a model input.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np
import shap

from loanxai.core.schema import CLASS_NAMES, FeatureSchema
from loanxai.explain.result import Reason, Reasons

__all__ = ["ReasonExplainer", "column_features"]


class ReasonExplainer:
    """Principal reasons from a fitted forest.

    Parameters
    ----------
    forest : the fitted RandomForestClassifier (class 1 = approved).
    transform : callable taking encoded rows (n, n_features) to the forest's input (n, n_columns),
        float64, as the pipeline's preprocessor gives.
    columns : for each of the forest's input columns, the index of the feature it comes from
        (one-hot columns share their categorical feature's index).
    schema : the feature schema (names, category map).
    titles : how sentences name each feature (default: its name).
    protected : protected attributes, never given as reasons.
    """

    def __init__(self, forest: Any, transform: Callable[[np.ndarray], np.ndarray], columns: np.ndarray,
                 schema: FeatureSchema, titles: Mapping[str, str] | None = None, protected: Collection[str] = ()) -> None:
        self.explainer = shap.TreeExplainer(forest)
        self.base_value = float(np.ravel(self.explainer.expected_value)[1])
        self.transform = transform
        self.schema = schema
        self.titles = {name: (titles or {}).get(name) or name for name in schema.feature_names}
        # (n_columns, n_features): sums each column's contribution into its feature's
        self.to_features = np.zeros((len(columns), schema.n_features))
        self.to_features[np.arange(len(columns)), columns] = 1.0
        self.allowed = np.array([name not in protected for name in schema.feature_names])

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Each feature's contribution to the probability of approval, shape (n, n_features)."""
        features = self.transform(np.asarray(X, dtype=np.float64)).astype(np.float32).astype(np.float64)
        values = np.asarray(self.explainer.shap_values(features, check_additivity=False))
        approved = values[..., 1] if values.ndim == 3 else values[1]
        return approved @ self.to_features

    def explain(self, X: np.ndarray, approval: np.ndarray, max_reasons: int) -> list[Reasons]:
        """Up to ``max_reasons`` ranked reasons for each row of ``X``, whose served probability of
        approval is ``approval``, shape (n,). A decision is an approval at 0.5 or more."""
        contributions = self.contributions(X)
        records = self.schema.decode(X)
        return [self._decision(record, p, c, max_reasons) for record, p, c in zip(records, approval, contributions)]

    def _decision(self, record: dict[str, Any], approval: float, contributions: np.ndarray, max_reasons: int) -> Reasons:
        approved = approval >= 0.5
        # a reason for a rejection lowered the probability of approval; for an approval it raised it
        signed = contributions if approved else -contributions
        ranked = [i for i in np.argsort(-signed, kind="stable") if signed[i] > 0 and self.allowed[i]][:max_reasons]
        return Reasons(
            decision=CLASS_NAMES[int(approved)],
            approval_probability=float(approval),
            base_value=self.base_value,
            contributions={name: float(c) for name, c in zip(self.schema.feature_names, contributions)},
            reasons=tuple(self._reason(self.schema.feature_names[i], record, float(contributions[i])) for i in ranked),
        )

    def _reason(self, name: str, record: dict[str, Any], contribution: float) -> Reason:
        value = record[name]
        effect = "raised" if contribution > 0 else "lowered"
        shown = "missing (the training median was used)" if value is None else value
        return Reason(name, value, contribution, f"{self.titles[name]}: {shown} {effect} the probability of approval by "
                                                 f"{abs(contribution) * 100:.1f} points")


def column_features(numeric_columns: list[int], categorical_columns: list[int], categories: list[np.ndarray]) -> np.ndarray:
    """The feature index of each preprocessed column: the numeric columns in their order, then
    each categorical feature's one-hot columns (as the pipeline's ColumnTransformer lays them out)."""
    columns = list(numeric_columns)
    for feature, labels in zip(categorical_columns, categories):
        columns += [feature] * len(labels)
    return np.asarray(columns, dtype=int)
