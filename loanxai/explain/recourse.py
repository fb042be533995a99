"""Recourse for a rejection: applications like the applicant's that the classifier approves.

DiCE's model-agnostic random search (``dice-ml``, MIT; alibi's counterfactual methods need
gradients, which forests do not have) proposes counterfactual applications, asking the
classifier over REST as the anchor explainer does (DiCE is shown the classifier's decisions at its
cutoff as its scores: approved is 1, rejected 0, so DiCE's own 0.5 threshold is the cutoff). Only the features
the dataset description marks ``actionable`` change, each in its ``direction`` (education only
upwards, debts only downwards), to values seen in the training rows; a feature ``derived_from``
another follows it (years of education follow education). Every proposal is then verified by
one more call to the classifier, and only approved ones are kept: the fewest changes first.
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

__all__ = ["PROPOSALS_PER_COUNTERFACTUAL", "PULL_BACK_STEPS", "SAMPLE_SIZE", "RecourseFinder"]

logger = logging.getLogger(__name__)

#: proposals DiCE is asked for, per counterfactual wanted: more than k, as some fail verification
#: or change more than they need to
PROPOSALS_PER_COUNTERFACTUAL = 4
#: random candidates DiCE draws per round (one classifier call of this many rows per round)
SAMPLE_SIZE = 1000
#: values tried between the applicant's and a proposal's, per numeric change, when pulling it back
PULL_BACK_STEPS = 32


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
        verified, approved = self.classify(X)  # one more real call: only what the classifier approves is kept
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
        """Each proposal's numeric changes moved as close to the applicant's values as they can
        while the classifier still approves: DiCE draws amounts at random (its own post-hoc
        sparsity step needs the training rows, which the explainer does not keep). One
        classifier call per numeric feature, all proposals and :data:`PULL_BACK_STEPS` values in it."""
        X = X.copy()
        derived = set(self.rules["derived"])
        for j in self.schema.numeric_indices:
            if self.schema.feature_names[j] in derived:
                continue  # it follows the feature it derives from
            changed = np.flatnonzero(X[:, j] != x[j])
            if not len(changed):
                continue
            # from no change at all (the change was not needed) to the proposal itself
            fractions = np.linspace(0.0, 1.0, PULL_BACK_STEPS + 1)
            tries = np.repeat(X[changed], len(fractions), axis=0)
            values = x[j] + np.outer(X[changed, j] - x[j], fractions).ravel()
            integral = float(x[j]).is_integer() and np.all(np.mod(X[changed, j], 1) == 0)
            tries[:, j] = np.where(values > x[j], np.ceil(values), np.floor(values)) if integral else values
            approved = self.classify(tries)[1].reshape(len(changed), len(fractions))
            first = approved.argmax(axis=1)  # the smallest change approved (the proposal itself was)
            X[changed, j] = tries.reshape(len(changed), len(fractions), -1)[np.arange(len(changed)), first, j]
        return X

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
    """Up to ``k`` of ``found`` (in order), each changing another set of features while it can:
    distinct options for the applicant rather than one change with several amounts."""
    chosen, seen = [], set()
    for counterfactual in found:
        features = frozenset(change.feature for change in counterfactual.changes)
        if features not in seen:
            chosen.append(counterfactual)
            seen.add(features)
    rest = [cf for cf in found if cf not in chosen]
    return (chosen + rest)[:k]
