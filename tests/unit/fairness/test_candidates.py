"""What a candidate is: the binary groups of a reduction, the grid fairlearn recommends, the
families' settings, and the age thresholds of a boosted model (the elderly rule's)."""
import logging

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from loanxai.core.elderly import split_thresholds
from loanxai.fairness.candidates import (
    FAVOURED,
    GRID_SIZE,
    OTHERS,
    binary_groups,
    family_settings,
    lambda_grid,
)


def test_binary_groups_put_the_groups_approved_below_the_overall_rate_together():
    groups = pd.Series(["a"] * 4 + ["b"] * 4 + ["c"] * 2)
    y = np.array([1, 1, 1, 0, 1, 0, 0, 0, 1, 0])  # a: 0.75, b: 0.25, c: 0.5; overall 0.5
    assert binary_groups(groups, y).tolist() == [FAVOURED] * 4 + [OTHERS] * 4 + [FAVOURED] * 2


def test_the_grid_is_fairleans_own_and_draws_no_warning(caplog):
    sides = np.array([FAVOURED, OTHERS] * 50)
    y = np.array([1, 0, 0, 1] * 25)
    with caplog.at_level(logging.WARNING, logger="fairlearn"):
        parity = lambda_grid("demographic parity", sides, y, GRID_SIZE)
        odds = lambda_grid("equalized odds", sides, y, GRID_SIZE)
    assert not caplog.records  # fairlearn warns below 2**dimension points or above 4 dimensions
    assert parity.shape == (4, GRID_SIZE)  # (+, -) x the two sides, one event
    assert odds.shape == (8, GRID_SIZE)  # (+, -) x the two sides x two events
    assert len({tuple(column) for column in parity.T.to_numpy()}) == GRID_SIZE  # every point a different multiplier
    assert (parity.to_numpy() == lambda_grid("demographic parity", sides, y, GRID_SIZE).to_numpy()).all()


def test_trees_replace_a_forests_trees_and_boostings_iterations():
    assert family_settings("forest", "forest", 7)["n_estimators"] == 7
    assert family_settings("boosting", "boosting", 7)["max_iter"] == 7
    assert family_settings("forest", "forest", None)["n_estimators"] == 25


def test_a_boosted_models_thresholds_are_those_it_splits_at():
    rng = np.random.default_rng(0)
    X = rng.uniform(18, 90, size=(400, 1))
    y = (X[:, 0] > 40).astype(int)
    model = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y)
    thresholds = split_thresholds(model, 0)
    assert len(thresholds) and np.all(np.diff(thresholds) > 0)
    # between two neighbouring thresholds the model answers alike; across one it may not
    grid = np.sort(np.concatenate([thresholds, thresholds + 1e-9, [17.0, 91.0]]))
    answers = model.predict_proba(grid[:, None])[:, 1]
    changes = grid[1:][np.abs(np.diff(answers)) > 0]
    assert set(np.round(changes - 1e-9, 6)) <= set(np.round(thresholds, 6))
