"""The pipeline every model here is, and the facts about it that training and serving share.

A model is a scikit-learn Pipeline of two steps: :data:`PREPROCESSOR_STEP`, a ColumnTransformer
(:data:`NUMERIC_STEP`: median imputation then standard scaling of the numeric columns;
:data:`CATEGORICAL_STEP`: one-hot encoding of the categorical codes), and
:data:`CLASSIFIER_STEP`, a random forest (:data:`FOREST`) or gradient-boosted trees
(:data:`BOOSTING`), as the search chose. The preprocessor's output is dense (a few
dozen columns): the trees fit on it about four times sooner than on sparse one-hot columns
(measured on the census, 2026-12-07). Training fits it; the classifier serves its two
steps from their pickles; the fast path reads the preprocessor's fitted parameters; the
explainer explains a missing numeric value as the median the model imputes in its place.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loanxai.core.schema import FeatureSchema

__all__ = ["BOOSTING", "CATEGORICAL_STEP", "CLASSIFIER_STEP", "FOREST", "IMPUTE_STEP", "NUMERIC_STEP",
           "PREPROCESSOR_STEP", "SAMPLE_WEIGHT", "SCALE_STEP", "build_pipeline", "build_preprocessor", "compared_columns",
           "impute", "is_forest", "numeric_medians", "one_job"]

PREPROCESSOR_STEP, CLASSIFIER_STEP = "preprocessor", "classifier"
#: the preprocessor's two column transformers, and the numeric one's steps
NUMERIC_STEP, CATEGORICAL_STEP = "numeric", "categorical"
IMPUTE_STEP, SCALE_STEP = "impute", "scale"
#: the model families: scikit-learn's RandomForestClassifier and HistGradientBoostingClassifier
FOREST, BOOSTING = "forest", "boosting"
#: how ``Pipeline.fit`` and fairlearn's reductions pass sample weights to the forest
SAMPLE_WEIGHT = f"{CLASSIFIER_STEP}__sample_weight"


def build_preprocessor(schema: FeatureSchema) -> ColumnTransformer:
    """For encoded rows, shape (n, n_features): numeric columns median-imputed and standard-scaled,
    categorical codes one-hot encoded (codes not seen in training: all zeros)."""
    return ColumnTransformer(
        [
            (
                NUMERIC_STEP,
                Pipeline([(IMPUTE_STEP, SimpleImputer(strategy="median")), (SCALE_STEP, StandardScaler())]),
                schema.numeric_indices,
            ),
            (CATEGORICAL_STEP, OneHotEncoder(handle_unknown="ignore"), schema.categorical_indices),
        ],
        sparse_threshold=0,
    )


def build_pipeline(schema: FeatureSchema, seed: int = 0, family: str = FOREST, **settings: Any) -> Pipeline:
    """:func:`build_preprocessor` and the ``family``'s classifier with ``settings`` (a random
    forest's, or deterministic gradient boosting's: no early stopping, which holds rows out at random)."""
    if family == FOREST:
        classifier = RandomForestClassifier(random_state=seed, n_jobs=-1, **settings)
    else:
        classifier = HistGradientBoostingClassifier(random_state=seed, early_stopping=False, **settings)
    return Pipeline([(PREPROCESSOR_STEP, build_preprocessor(schema)), (CLASSIFIER_STEP, classifier)])


def is_forest(model: Any) -> bool:
    """Whether a fitted classifier is a random forest (else: gradient-boosted trees)."""
    return isinstance(model, RandomForestClassifier)


def compared_columns(model: Any, columns: np.ndarray) -> np.ndarray:
    """Preprocessed columns, shape (n, n_columns), as the fitted ``model``'s trees compare them,
    in float64: a forest's rounded to float32 (scikit-learn's trees round their input before
    comparing it with float64 thresholds), gradient boosting's unchanged (it compares float64)."""
    columns = np.asarray(columns, dtype=np.float64)
    return columns.astype(np.float32).astype(np.float64) if is_forest(model) else columns


def one_job(model: Any) -> Any:
    """The loaded ``model``, set to predict in the calling thread: a forest without joblib's
    threads (a prediction is one request's work). Gradient boosting predicts in OpenMP threads:
    a process forked after they were made hangs if its main thread predicts (measured), but the
    services' forked workers predict in threads of their own, which do not (tested)."""
    if is_forest(model):
        model.n_jobs = 1
    return model


def numeric_medians(preprocessor: ColumnTransformer, schema: FeatureSchema) -> dict[str, float]:
    """The training median the fitted preprocessor imputes for each numeric feature."""
    medians = preprocessor.named_transformers_[NUMERIC_STEP].named_steps[IMPUTE_STEP].statistics_
    return {name: float(m) for name, m in zip(schema.numeric_features, medians)}


def impute(X: np.ndarray, schema: FeatureSchema, medians: Mapping[str, float]) -> np.ndarray:
    """Encoded rows, shape (n, n_features) or (n_features,), with each missing numeric value
    replaced by its training median: the rows the explainer samples from and explains (alibi's
    discretiser takes no NaN)."""
    fill = np.array([medians.get(name, np.nan) for name in schema.feature_names])
    return np.where(np.isnan(X), fill, X)
