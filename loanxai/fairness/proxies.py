"""Proxies: how well a protected attribute can be predicted from the model's inputs.

Removing a protected attribute from the model does not remove what it explains: other inputs
can carry it. A logistic regression (one-hot categorical inputs, scaled numeric ones) is
fitted on some rows to predict the attribute's group and scored on others: the ROC AUC, one
group against the rest, averaged over the groups large enough to judge. 0.5 means the inputs
say nothing about the attribute, 1.0 that they reveal it. The search drops the strongest
proxies in turn (measured within the training rows); the report measures them on the
held-out rows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from loanxai.core.pipeline import CLASSIFIER_STEP, PREPROCESSOR_STEP, build_preprocessor
from loanxai.core.schema import FeatureSchema
from loanxai.fairness.metrics import large_groups

__all__ = ["proxy_auc"]


def proxy_auc(fit_rows: pd.DataFrame, fit_groups: pd.Series, score_rows: pd.DataFrame, score_groups: pd.Series,
              schema: FeatureSchema, min_rows: int) -> float:
    """The ROC AUC of predicting the groups (labels, one per row) from ``schema``'s inputs:
    fitted on ``fit_rows``, scored on ``score_rows``, one group against the rest averaged over
    the groups with ``min_rows`` scored rows (a binary attribute: its one AUC; NaN: none judged)."""
    known = fit_groups.notna().to_numpy()
    model = Pipeline([(PREPROCESSOR_STEP, build_preprocessor(schema)), (CLASSIFIER_STEP, LogisticRegression(max_iter=1000))])
    model.fit(schema.encode_frame(fit_rows)[known], fit_groups[known].astype(str))
    proba = pd.DataFrame(model.predict_proba(schema.encode_frame(score_rows)), columns=model.classes_)
    truth = score_groups.astype(str).reset_index(drop=True)
    groups = [g for g in large_groups(truth, min_rows) if g in proba.columns and 0 < (truth == g).sum() < len(truth)]
    if len(groups) == 2 and len(model.classes_) == 2:
        groups = groups[:1]  # one group against the other: both AUCs are the same number
    return float(np.mean([roc_auc_score(truth == g, proba[g]) for g in groups])) if groups else float("nan")
