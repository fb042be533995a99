"""Principal reasons for a decision: the gap to approved applicants, attributed exactly to the features.

A rejected applicant must receive the specific principal reasons for the decision (Regulation
B, 12 CFR 1002.9(b)(2); usually at most four), and adverse-action practice explains the gap
between the applicant and approval, not the distance to the average applicant. For each
application :class:`ReasonExplainer` computes interventional TreeSHAP (shap's
``TreeExplainer``, exact for trees) of the model's probability of approval against a
reference of approved training applicants (:func:`approved_reference`, recorded at training),
sums the one-hot columns of each categorical feature back into that feature, and ranks the
features: for a rejection those that lowered the probability of approval most below the
approved applicants', for an approval those that raised it most.

- ``base_value`` is the reference's mean probability of approval: at or above the cutoff, as
  every reference applicant is approved;
- base value + sum of contributions = the served probability of approval, within 1e-8 (shap
  keeps the leaves' values in float32: 1.1e-8 at most over the census model's 256 reference
  rows). A forest's trees compare features rounded to float32 with float64 thresholds, and
  shap compares in float32, so a copy of the forest with each threshold snapped down to the
  largest float32 not above it (:func:`float32_forest`: the same answers) is what shap walks.
  Gradient boosting compares float64, as shap does for it; shap walks its trees' log-odds and
  gives the Shapley values of their logistic transform, the probability of approval;
- each reason carries a stable code, the feature and the direction (``capital-gain-low``:
  lowered the probability), that notices print;
- a declared prohibited basis is never a reason, with one exception: age, an input under the
  elderly rule, is stated when it is a principal reason against an applicant younger than the
  elderly age (no principal factor may be left out of the statement), never for an elderly one
  (:mod:`loanxai.core.elderly`: their age is the most favourable one already).

For a rejection, ``gap_share`` is the share of the gap (base value minus probability) the
stated reasons carry.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import shap

from loanxai.core.pipeline import CATEGORICAL_STEP, NUMERIC_STEP, compared_columns, is_forest
from loanxai.core.schema import CLASS_NAMES, FeatureSchema
from loanxai.explain.result import Reason, Reasons

__all__ = ["REFERENCE_ROWS", "ReasonExplainer", "approved_reference", "column_features", "float32_forest", "reason_code",
           "reason_explainer"]

#: approved training applicants the reasons are measured against: one explanation costs about
#: 1.3 ms per 50 (measured, docs: Results), and the base value moves by under 0.01 beyond
REFERENCE_ROWS = 50


def reason_code(feature: str, lowered: bool) -> str:
    """The stable code of a reason: the feature and the direction it moved the probability of approval."""
    return f"{feature}-{'low' if lowered else 'high'}"


def approved_reference(X: np.ndarray, approval: np.ndarray, cutoff: float, seed: int,
                       rows: int = REFERENCE_ROWS) -> np.ndarray:
    """``rows`` encoded rows of ``X`` (shape (n, n_features), as served) whose served probability
    of approval ``approval`` (shape (n,)) is at least ``cutoff``, drawn without replacement with
    ``seed``, shape (rows, n_features)."""
    approved = np.flatnonzero(approval >= cutoff)
    if not len(approved):
        raise ValueError("no training row is approved at the cutoff: there is no reference to explain against")
    chosen = np.random.default_rng(seed).choice(approved, size=min(rows, len(approved)), replace=False)
    return X[np.sort(chosen)]


def float32_forest(forest: Any) -> Any:
    """A copy of a fitted forest whose split thresholds are the largest float32 not above the
    originals: for float32 features it decides exactly as the original does (no float32 lies
    between the two), and shap, which compares in float32, then reproduces it exactly."""
    snapped = copy.deepcopy(forest)
    for tree in snapped.estimators_:
        threshold = tree.tree_.threshold
        split = tree.tree_.children_left != -1
        t32 = threshold.astype(np.float32)
        down = np.where(t32.astype(np.float64) > threshold, np.nextafter(t32, np.float32(-np.inf)), t32)
        threshold[split] = down[split].astype(np.float64)
    return snapped


def _tree_explainer(model: Any, background: np.ndarray) -> shap.TreeExplainer:
    """Interventional TreeSHAP of a fitted forest's or gradient boosting's probability of
    approval against ``background`` (its preprocessed columns, shape (m, n_columns))."""
    if is_forest(model):
        return shap.TreeExplainer(float32_forest(model), data=background, feature_perturbation="interventional")
    return shap.TreeExplainer(model, data=background, feature_perturbation="interventional",
                              model_output="probability")


class ReasonExplainer:
    """Principal reasons from a fitted tree model, against a reference of approved applicants.

    Parameters
    ----------
    model : the fitted RandomForestClassifier or HistGradientBoostingClassifier (class 1 = approved).
    transform : callable taking encoded rows (n, n_features) to the model's input (n, n_columns),
        float64, as the pipeline's preprocessor gives.
    columns : for each of the model's input columns, the index of the feature it comes from
        (one-hot columns share their categorical feature's index).
    schema : the feature schema (names, category map, declared bases among the inputs, the elderly age).
    reference : approved applicants, encoded, shape (m, n_features) (:func:`approved_reference`).
    titles : how sentences name each feature (default: its name).
    """

    def __init__(self, model: Any, transform: Callable[[np.ndarray], np.ndarray], columns: np.ndarray,
                 schema: FeatureSchema, reference: np.ndarray, titles: Mapping[str, str] | None = None) -> None:
        self.model = model
        self.transform = transform
        self.explainer = _tree_explainer(model, self._features(reference))
        # a forest's for each class, gradient boosting's for approval alone: approval's is the last
        self.base_value = float(np.ravel(self.explainer.expected_value)[-1])
        self.schema = schema
        self.titles = {name: (titles or {}).get(name) or name for name in schema.feature_names}
        # (n_columns, n_features): sums each column's contribution into its feature's
        self.to_features = np.zeros((len(columns), schema.n_features))
        self.to_features[np.arange(len(columns)), columns] = 1.0
        # a declared basis among the inputs is never a reason; age under the elderly rule, only below the elderly age
        self.allowed = np.array([name not in schema.basis_inputs or name in schema.elderly
                                 for name in schema.feature_names])
        self.elderly = [(schema.feature_names.index(name), age) for name, age in schema.elderly.items()]

    def _features(self, X: np.ndarray) -> np.ndarray:
        """The model's input for encoded rows, as its trees compare it."""
        return compared_columns(self.model, self.transform(np.asarray(X, dtype=np.float64)))

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Each feature's contribution to the probability of approval against the reference, shape (n, n_features)."""
        values = np.asarray(self.explainer.shap_values(self._features(X), check_additivity=False))
        approved = values[..., 1] if values.ndim == 3 else values  # a forest's: (n, n_columns, classes)
        return approved @ self.to_features

    def explain(self, X: np.ndarray, approval: np.ndarray, cutoff: float, max_reasons: int,
                shown: np.ndarray | None = None) -> list[Reasons]:
        """Up to ``max_reasons`` ranked reasons for each row of ``X`` (encoded as the model was
        asked, shape (n, n_features)), whose served probability of approval is ``approval``,
        shape (n,); approved at ``cutoff`` or more. ``shown``: the rows as the applicants gave
        them (default ``X``), whose values the reasons quote."""
        contributions = self.contributions(X)
        shown = X if shown is None else shown
        records = self.schema.decode(shown)
        return [self._decision(record, row, p, c, cutoff, max_reasons)
                for record, row, p, c in zip(records, shown, approval, contributions)]

    def _decision(self, record: dict[str, Any], row: np.ndarray, approval: float, contributions: np.ndarray,
                  cutoff: float, max_reasons: int) -> Reasons:
        approved = approval >= cutoff
        # a reason for a rejection lowered the probability of approval; for an approval it raised it
        signed = contributions if approved else -contributions
        allowed = self.allowed.copy()
        for column, age in self.elderly:
            allowed[column] &= not row[column] >= age
        ranked = [i for i in np.argsort(-signed, kind="stable") if signed[i] > 0 and allowed[i]][:max_reasons]
        return Reasons(
            decision=CLASS_NAMES[int(approved)],
            approval_probability=float(approval),
            base_value=self.base_value,
            cutoff=float(cutoff),
            contributions={name: float(c) for name, c in zip(self.schema.feature_names, contributions)},
            reasons=tuple(self._reason(self.schema.feature_names[i], record, float(contributions[i])) for i in ranked),
        )

    def _reason(self, name: str, record: dict[str, Any], contribution: float) -> Reason:
        value = record[name]
        effect = "raised" if contribution > 0 else "lowered"
        shown = "missing (the training median was used)" if value is None else value
        return Reason(name, value, contribution, reason_code(name, contribution < 0),
                      f"{self.titles[name]}: {shown} {effect} the probability of approval by "
                      f"{abs(contribution) * 100:.1f} points against approved applicants")


def column_features(preprocessor: Any) -> np.ndarray:
    """The feature index of each column the fitted preprocessor (:mod:`loanxai.core.pipeline`)
    gives: the numeric columns in their order, then each categorical feature's one-hot columns
    (as its ColumnTransformer lays them out)."""
    columns = dict((name, cols) for name, _, cols in preprocessor.transformers_)
    features = list(columns[NUMERIC_STEP])
    one_hot = preprocessor.named_transformers_[CATEGORICAL_STEP]
    for feature, labels in zip(columns[CATEGORICAL_STEP], one_hot.categories_):
        features += [feature] * len(labels)
    return np.asarray(features, dtype=int)


def reason_explainer(preprocessor: Any, model: Any, schema: FeatureSchema, reference: np.ndarray,
                     titles: Mapping[str, str] | None = None,
                     transform: Callable[[np.ndarray], np.ndarray] | None = None) -> ReasonExplainer:
    """A :class:`ReasonExplainer` for a fitted preprocessor and model; ``transform`` (default:
    the preprocessor's, densified) must give the same columns (the classifier passes its fast path's)."""
    if transform is None:
        def transform(X: np.ndarray) -> np.ndarray:
            out = preprocessor.transform(X)
            return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)
    return ReasonExplainer(model, transform, column_features(preprocessor), schema, reference, titles)
