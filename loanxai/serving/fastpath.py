"""The exact fast prediction path: the same answers as the scikit-learn pipeline, ~100x sooner.

scikit-learn's ``predict_proba`` spends milliseconds per call in Python and joblib overhead
while the trees' real work takes microseconds. The fast path:

- preprocesses with the fitted preprocessor's own parameters (imputer medians, scaler means
  and scales, one-hot categories) as the same float64 numpy operations scikit-learn does;
- gives the trees their columns as they compare them (:func:`~loanxai.core.pipeline.compared_columns`:
  a forest's rounded to float32, as scikit-learn's trees round them before comparing them with
  their float64 thresholds; skip this and 2 of 2,561 held-out rows change class);
- runs the model with treelite's GTIL (thresholds and leaf values kept in float64) for
  gradient boosting, and for a forest's requests of fewer than :data:`TREES_FROM_ROWS` rows;
  a forest's larger requests go to each fitted tree's own compiled ``predict``, summed in the
  forest's order as ``predict_proba`` sums them, without its per-call checks and joblib
  (measured 2026-12-06: GTIL costs about 0.03 ms a call and 3.7 us a row, the trees 0.07 ms
  and 1.1 us: GTIL wins below about 16 rows).

The dill pipeline stays the source of truth: :func:`check_parity` compares every engine with
it on a reference batch, and the classifier serves the fast path only when the classes are
identical and the probabilities within :data:`PARITY_TOLERANCE`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import treelite
import treelite.gtil

from loanxai.core.pipeline import CATEGORICAL_STEP, IMPUTE_STEP, NUMERIC_STEP, SCALE_STEP, compared_columns, is_forest

__all__ = ["PARITY_TOLERANCE", "TREES_FROM_ROWS", "FastClassifier", "check_parity"]

PARITY_TOLERANCE = 1e-9
#: requests of this many rows or more are predicted by the fitted trees, fewer by GTIL
TREES_FROM_ROWS = 16


class FastClassifier:
    """Predicts like ``model.predict_proba(preprocessor.transform(X))`` for encoded rows.

    Parameters
    ----------
    preprocessor : the fitted ColumnTransformer (:mod:`loanxai.core.pipeline`: median imputer and
        standard scaler for the numeric columns, one-hot encoder ignoring unknown codes for the categorical).
    model : the fitted RandomForestClassifier (its trees predict the larger requests) or
        HistGradientBoostingClassifier.
    compiled_path : the model's treelite checkpoint (:func:`loanxai.training.writers.compile_model`).
    """

    def __init__(self, preprocessor: Any, model: Any, compiled_path: Path) -> None:
        numeric, categorical = (preprocessor.named_transformers_[n] for n in (NUMERIC_STEP, CATEGORICAL_STEP))
        columns = dict((name, cols) for name, _, cols in preprocessor.transformers_)
        self.numeric_columns = np.asarray(columns[NUMERIC_STEP])
        self.medians = numeric.named_steps[IMPUTE_STEP].statistics_
        self.means = numeric.named_steps[SCALE_STEP].mean_
        self.scales = numeric.named_steps[SCALE_STEP].scale_
        self.categorical_columns = list(columns[CATEGORICAL_STEP])
        self.categories = [np.asarray(c, dtype=np.float64) for c in categorical.categories_]
        self.model = model
        self.compiled = treelite.Model.deserialize(str(compiled_path))
        self.trees = [tree.tree_ for tree in model.estimators_] if is_forest(model) else []
        self.n_classes = len(model.classes_)
        #: the ways it predicts, each held to the pipeline by :func:`check_parity`
        self.engines = (self.gtil_proba, self.trees_proba) if self.trees else (self.gtil_proba,)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Preprocessed features, shape (n, numeric + one-hot columns), float64, as the pipeline gives."""
        numeric = X[:, self.numeric_columns]
        numeric = np.where(np.isnan(numeric), self.medians, numeric)
        numeric = numeric - self.means
        numeric /= self.scales
        one_hot = [X[:, [col]] == cats for col, cats in zip(self.categorical_columns, self.categories)]
        return np.hstack([numeric, *one_hot]).astype(np.float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities of (rejected, approved), shape (n, 2), for encoded rows, shape (n, n_features)."""
        engine = self.trees_proba if self.trees and len(X) >= TREES_FROM_ROWS else self.gtil_proba
        return engine(X)

    def gtil_proba(self, X: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` by treelite's GTIL, whatever the number of rows."""
        features = compared_columns(self.model, self.transform(np.asarray(X, dtype=np.float64)))
        # One thread: gunicorn forks its workers after the parity check, and an OpenMP thread
        # pool made before a fork hangs the child (measured: a 2-thread GTIL call never returned).
        # Parallelism comes from the workers.
        out = treelite.gtil.predict(self.compiled, features, nthread=1).reshape(len(features), -1)
        # gradient boosting's compiled model gives the probability of approval alone
        return out if out.shape[1] == self.n_classes else np.column_stack([1.0 - out[:, 0], out[:, 0]])

    def trees_proba(self, X: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` by the fitted trees, whatever the number of rows: the sum of
        each tree's class fractions in the forest's order, over the number of trees, which is
        the arithmetic of scikit-learn's ``predict_proba`` with one job."""
        features = self.transform(np.asarray(X, dtype=np.float64)).astype(np.float32)
        total = np.zeros((len(features), self.n_classes))
        for tree in self.trees:
            total += tree.predict(features)[:, : self.n_classes]
        total /= len(self.trees)
        return total


def check_parity(fast: FastClassifier, reference_proba: Any, X: np.ndarray, cutoff: float) -> dict[str, Any]:
    """Compare every engine of the fast path with the pipeline's probabilities ``reference_proba``
    on rows ``X``, and their decisions at ``cutoff``."""
    expected = np.asarray(reference_proba, dtype=np.float64)
    max_difference, same_class = 0.0, True
    for engine in fast.engines:
        actual = engine(X)
        if actual.shape != expected.shape:
            max_difference, same_class = float("inf"), False
            break
        max_difference = max(max_difference, float(np.max(np.abs(actual - expected))))
        same_class = same_class and bool(np.array_equal(actual[:, 1] >= cutoff, expected[:, 1] >= cutoff))
    return {
        "rows": int(len(X)),
        "max_difference": max_difference,
        "same_class": same_class,
        "holds": same_class and max_difference <= PARITY_TOLERANCE,
    }
