"""The Adult census data from the ``xai`` wheel, cleaned and split (no network needed)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from loanxai.schema import CATEGORICAL_FEATURES, FEATURE_NAMES, UNKNOWN_CATEGORY, FeatureSchema

#: Rows kept for training; the rest (2,561 of 32,561) are held out, as in alibi's income example.
N_TRAIN = 30_000
LABEL = "approved"


def load_applications() -> pd.DataFrame:
    """The census table as loan applications.

    Returns a DataFrame with the :data:`~loanxai.schema.FEATURE_NAMES` columns (labels stripped
    of their leading space, "?" renamed "Unknown") and a boolean ``approved`` column
    (income ">50K").
    """
    from xai.data import load_census

    raw = load_census()
    frame = raw[list(FEATURE_NAMES)].copy()
    for name in CATEGORICAL_FEATURES:
        frame[name] = frame[name].str.strip().replace("?", UNKNOWN_CATEGORY)
    frame[LABEL] = raw["loan"].str.strip() == ">50K"
    return frame


def build_schema(frame: pd.DataFrame) -> FeatureSchema:
    """The feature schema of ``frame``: each categorical feature's labels, sorted."""
    return FeatureSchema({name: tuple(sorted(frame[name].unique())) for name in CATEGORICAL_FEATURES})


def encode_frame(frame: pd.DataFrame, schema: FeatureSchema) -> np.ndarray:
    """Encoded rows of ``frame``: ndarray of float64, shape (n_rows, n_features)."""
    return schema.encode_records(frame[list(schema.feature_names)].to_dict("records"))


def train_test_split(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic shuffle, then the first :data:`N_TRAIN` rows for training, the rest held out."""
    shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return shuffled.iloc[:N_TRAIN].reset_index(drop=True), shuffled.iloc[N_TRAIN:].reset_index(drop=True)
