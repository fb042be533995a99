"""Recourse for a rejection: applications like the applicant's that the classifier approves.

DiCE's model-agnostic random search (``dice-ml``, MIT; alibi's counterfactual methods need
gradients, which forests do not have) proposes counterfactual applications, asking the
classifier over REST as the anchor explainer does (DiCE is shown the classifier's decisions at its
cutoff as its scores: approved is 1, rejected 0, so DiCE's own 0.5 threshold is the cutoff). Only the features
the dataset description marks ``actionable`` change, each in its ``direction`` (education only
upwards, debts only downwards), to values seen in the training rows; a feature ``derived_from``
another follows it (years of education follow education). Every proposal is then verified by
one more call to the classifier, and only approved ones are kept: the fewest changes first, each
changing another set of features. Before that each proposal is made minimal
(:meth:`RecourseFinder._pull_back`): no change can be undone, and no amount lowered by a step
(:func:`pull_back_step`), without a rejection.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from raiutils.exceptions import UserConfigValidationException

from loanxai.core.schema import CLASS_NAMES, FeatureSchema, plain_value
from loanxai.explain.result import Change, Counterfactual, Recourse
from loanxai.explain.seeding import sample_seed, seed_generators

os.environ.setdefault("TQDM_DISABLE", "1")  # DiCE draws a progress bar on every call
import dice_ml  # noqa: E402  (after the line above)

__all__ = ["PROPOSALS_PER_COUNTERFACTUAL", "PULL_BACK_RESOLUTION", "PULL_BACK_ROUNDS", "SAMPLE_SIZE",
           "RecourseFinder", "pull_back_step"]

logger = logging.getLogger(__name__)

#: proposals DiCE is asked for, per counterfactual wanted: more than k, as some fail verification
#: or change more than they need to
PROPOSALS_PER_COUNTERFACTUAL = 4
#: random candidates DiCE draws per round (one classifier call of this many rows per round)
SAMPLE_SIZE = 1000
#: the share of a numeric feature's training range a pulled-back amount is exact to (at least 1 for
#: a feature of whole numbers): capital gains to 100 on the census
PULL_BACK_RESOLUTION = 0.001
#: at most this many passes over a proposal's changes while pulling it back (it stops when nothing moves)
PULL_BACK_ROUNDS = 4


def pull_back_step(training_range: list[float], integral: bool) -> float:
    """The step a numeric change is pulled back in: :data:`PULL_BACK_RESOLUTION` of the
    feature's training range (``[min, max]``), at least 1 (and whole) for whole numbers."""
    step = (training_range[1] - training_range[0]) * PULL_BACK_RESOLUTION
    return max(1.0, float(np.ceil(step))) if integral else max(step, 1e-9)


class RecourseFinder:
    """Counterfactual search for one schema.

    Parameters
    ----------
    schema : the model's feature schema.
    rules : from :func:`loanxai.data.dataset.recourse_rules` (the explainer's manifest):
        ``actionable`` {feature: {direction, order}},
        ``derived`` {feature: {source, values}}, ``ranges`` {numeric feature: [min, max] in training}.
    titles : how sentences name each feature.
    classify : encoded rows (n, n_features) -> the classifier's probabilities of approval, shape
        (n,), and its decisions at its cutoff (True: approved), shape (n,).
    """

    def __init__(self, schema: FeatureSchema, rules: dict[str, Any], titles: dict[str, str],
                 classify: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> None:
        self.schema = schema
        self.rules = rules
        self.titles = titles
        self.classify = classify
        ranges = {name: [plain_value(v) for v in bounds] for name, bounds in rules["ranges"].items()}
        features = {name: (list(schema.category_map[name]) if name in schema.category_map else ranges[name])
                    for name in schema.feature_names}
        precision = {name: "int" if all(float(v).is_integer() for v in bounds) else ["float", 2]
                     for name, bounds in ranges.items()}
        data = dice_ml.Data(features=features, outcome_name="approved", type_and_precision=precision)
        self.dice = dice_ml.Dice(data, dice_ml.Model(model=_Classifier(self), backend="sklearn"), method="random")
        self.actionable = [name for name in rules["actionable"] if name in schema.feature_names]

    def find(self, x: np.ndarray, k: int, seed: int, model_sha256: str) -> Recourse:
        """Up to ``k`` verified counterfactuals for the encoded application ``x``, shape (n_features,).

        Seeded from ``x``, the model and the request's ``seed`` (:mod:`loanxai.explain.seeding`):
        one search at a time per process.
        """
        record = self.schema.decode(x)[0]
        [approval], [approved] = self.classify(x[None, :])
        answer = {"decision": CLASS_NAMES[int(approved)], "approval_probability": float(approval),
                  "actionable": self.actionable}
        if approved:
            return Recourse(**answer, message="the application is approved: no recourse is needed")
        permitted = {name: self._permitted(name, record[name]) for name in self.actionable}
        varied = [name for name, values in permitted.items() if values is not None]
        if not varied:
            return Recourse(**answer, message="nothing the applicant may change can move further in its allowed direction")
        seed = sample_seed(x, model_sha256, seed)
        seed_generators(seed)
        not_found = f"no approved application was found changing only {', '.join(varied)} within the search"
        try:
            result = self.dice.generate_counterfactuals(
                pd.DataFrame([record]), total_CFs=k * PROPOSALS_PER_COUNTERFACTUAL, desired_class=1,
                features_to_vary=varied, permitted_range={name: permitted[name] for name in varied},
                random_seed=seed, sample_size=SAMPLE_SIZE, posthoc_sparsity_param=None)
        except UserConfigValidationException:  # DiCE's way of saying it found none
            return Recourse(**answer, message=not_found)
        proposals = result.cf_examples_list[0].final_cfs_df
        if proposals is None or proposals.empty:
            return Recourse(**answer, message=not_found)
        candidates = self._follow_derived(proposals.drop(columns=["approved"]))
        X = self._pull_back(self.schema.encode_records(candidates.to_dict("records")), x)
        # the classifier's own answer (asked now, or earlier in this explanation): only what it approves is kept
        verified, approved = self.classify(X)
        found = []
        for row, probability, yes in zip(self.schema.decode(X), verified, approved):
            changes = tuple(self._change(name, record[name], row[name]) for name in self.schema.feature_names
                            if row[name] != record[name])
            if yes and changes:
                found.append(Counterfactual(changes, float(probability), row))
        found.sort(key=lambda cf: (len(cf.changes), -cf.approval_probability))
        chosen = _diverse(found, k)
        if not chosen:
            return Recourse(**answer, message="the proposals were not approved when verified by the classifier")
        return Recourse(**answer, counterfactuals=tuple(chosen))

    def _pull_back(self, X: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Each proposal made minimal: DiCE draws amounts at random (its own post-hoc sparsity
        step needs the training rows, which the explainer does not keep). Until nothing moves,
        each categorical change is undone where the classifier still approves without it, and
        each numeric change is brought down to the smallest amount the classifier approves, the
        other changes as they stand, scanned from the applicant's value in steps of
        :func:`pull_back_step`. At the end no change can be undone, nor any amount lowered by a
        step, without a rejection, whatever the order the features are visited in."""
        X = X.copy()
        derived = set(self.rules["derived"])
        numeric = [j for j in self.schema.numeric_indices if self.schema.feature_names[j] not in derived]
        for _ in range(PULL_BACK_ROUNDS):
            moved = self._undo_categorical(X, x)
            for j in numeric:
                moved |= self._lower(X, x, j)
            if not moved:
                break
        return X

    def _undo_categorical(self, X: np.ndarray, x: np.ndarray) -> bool:
        """Undo each categorical change the classifier approves without (one call); whether any was."""
        tries, where = [], []
        for j in self.schema.categorical_indices:
            for p in np.flatnonzero(X[:, j] != x[j]):
                row = X[p].copy()
                row[j] = x[j]
                for k in self._followers(j):
                    row[k] = x[k]
                tries.append(row)
                where.append((p, j))
        if not tries:
            return False
        approved = self.classify(np.array(tries))[1]
        undone = set()
        for (p, j), yes in zip(where, approved):
            if yes and p not in undone:  # one change per proposal and round: the others were tried with it
                X[p, j] = x[j]
                for k in self._followers(j):
                    X[p, k] = x[k]
                undone.add(p)
        return bool(undone)

    def _lower(self, X: np.ndarray, x: np.ndarray, j: int) -> bool:
        """Each proposal's change of numeric feature ``j`` brought to the smallest amount approved,
        scanned from the applicant's value in steps (one call); whether any moved."""
        changed = np.flatnonzero(X[:, j] != x[j])
        if not len(changed):
            return False
        step = pull_back_step(self.rules["ranges"][self.schema.feature_names[j]],
                              integral=float(x[j]).is_integer() and bool(np.all(np.mod(X[changed, j], 1) == 0)))
        grids = []
        for p in changed:
            distance = abs(X[p, j] - x[j])
            amounts = np.minimum(np.arange(int(np.ceil(distance / step)) + 1) * step, distance)
            grids.append(x[j] + np.sign(X[p, j] - x[j]) * amounts)
        tries = np.repeat(X[changed], [len(g) for g in grids], axis=0)
        tries[:, j] = np.concatenate(grids)
        approved = self.classify(tries)[1]
        moved, start = False, 0
        for p, grid in zip(changed, grids):
            first = int(np.argmax(approved[start:start + len(grid)]))  # the proposal itself was approved
            if approved[start + first] and grid[first] != X[p, j]:
                X[p, j] = grid[first]
                moved = True
            start += len(grid)
        return moved

    def _followers(self, j: int) -> list[int]:
        """Positions of the features derived from feature ``j``."""
        name = self.schema.feature_names[j]
        return [self.schema.feature_names.index(d) for d, rule in self.rules["derived"].items()
                if rule["source"] == name and d in self.schema.feature_names]

    def _permitted(self, name: str, value: Any) -> list[Any] | None:
        """The values ``name`` may take from ``value`` on (None: it cannot move)."""
        rule = self.rules["actionable"][name]
        direction, order = rule["direction"], rule["order"]
        if name in self.schema.category_map:
            labels = [label for label in self.schema.category_map[name] if label != self.schema.missing_category]
            if direction != "any" and value in order:
                ranked = order[order.index(value):] if direction == "increase" else order[: order.index(value) + 1]
                labels = [label for label in ranked if label in labels]
            return labels if len(labels) > 1 else None
        low, high = (plain_value(v) for v in self.rules["ranges"][name])
        if direction == "increase":
            low = plain_value(max(low, value))
        elif direction == "decrease":
            high = plain_value(min(high, value))
        return [low, high] if low < high else None

    def _follow_derived(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Derived features set from the feature they follow (years of education from education)."""
        frame = frame.copy()
        for name, rule in self.rules["derived"].items():
            if name in frame.columns:
                frame[name] = frame[rule["source"]].astype(str).map(rule["values"]).fillna(frame[name])
        for name in self.schema.numeric_features:
            frame[name] = pd.to_numeric(frame[name])
        return frame

    def _change(self, name: str, before: Any, after: Any) -> Change:
        verb = "from" if name in self.schema.category_map else ("up from" if after > before else "down from")
        return Change(name, before, after, f"{self.titles.get(name, name)} {after} ({verb} {before})")


class _Classifier:
    """What DiCE calls: ``predict_proba`` on a frame of labelled applications, derived
    features following their source, answered with the classifier's decisions, shape (n, 2):
    (1, 0) rejected, (0, 1) approved."""

    def __init__(self, finder: RecourseFinder) -> None:
        self.finder = finder

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        rows = self.finder._follow_derived(frame[list(self.finder.schema.feature_names)])
        approved = self.finder.classify(self.finder.schema.encode_records(rows.to_dict("records")))[1]
        return np.column_stack([~approved, approved]).astype(np.float64)


def _diverse(found: list[Counterfactual], k: int) -> list[Counterfactual]:
    """Up to ``k`` of ``found`` (in order), each changing another set of features: distinct
    options for the applicant, never one change with several amounts."""
    chosen, seen = [], set()
    for counterfactual in found:
        features = frozenset(change.feature for change in counterfactual.changes)
        if features not in seen:
            chosen.append(counterfactual)
            seen.add(features)
    return chosen[:k]
