"""The search for a less discriminatory alternative: candidates compared as a lender compares them.

A flagged disparity must be met with a search for an alternative that serves the lender's
legitimate need about as well and discriminates less (disparate-impact burden shifting; the
regulators expect the search). Every candidate is one deterministic scikit-learn pipeline
(imputation and scaling, one-hot encoding, one random forest), with no declared protected
attribute as an input (age excepted, under the elderly rule), nothing needed at prediction
time but the model inputs:

- **feature sets**: every model input, and every model input but one of the strongest proxies
  of a screened attribute (:data:`PROXIES_DROPPED` per attribute, measured within the training
  rows);
- **reweighing** at the strengths of :data:`WEIGHTINGS`: Kamiran-Calders weights
  ``w(g, y) = P(g) P(y) / P(g, y)`` over the intersection of the screened attributes, raised to
  the strength (0: none, 1: Kamiran-Calders);
- **forests**: the settings of :data:`FORESTS`;
- **reductions**: fairlearn's GridSearch under demographic parity, true positive rate parity
  and equalized odds for each screened attribute, every grid point a candidate (one
  deterministic model each, never the randomized mixture ExponentiatedGradient returns).

Each is estimated by k-fold cross-validation on the training rows (``selection.folds``): ROC
AUC, and at the policy's cutoff (the same approval rate for every candidate) recall,
precision and each declared attribute's adverse impact ratio with its interval; and, whatever
the cutoff, each attribute's standardized mean difference of the scores with its interval. Accuracy is
shown beside the always-reject baseline and never chooses. The rule: among the eligible
candidates whose ROC AUC is within ``selection.tolerance`` of the best, the one with the
highest worst adverse impact ratio over the screened attributes (ties: the higher AUC). A
reference candidate, every declared attribute an input, shows what the prohibited bases would
buy; it is never chosen. The manifest records every point.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.reductions import DemographicParity, EqualizedOdds, GridSearch, TruePositiveRateParity
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from loanxai.core.elderly import served_rows
from loanxai.core.pipeline import CLASSIFIER_STEP, PREPROCESSOR_STEP, SAMPLE_WEIGHT, build_pipeline
from loanxai.core.schema import FeatureSchema
from loanxai.data.dataset import Dataset, build_schema, group_column
from loanxai.data.description import LABEL
from loanxai.errors import UnknownCandidate
from loanxai.fairness.metrics import (
    adverse_impact,
    evaluate,
    fairness_gaps,
    policy_cutoff,
    standardized_mean_difference,
)
from loanxai.fairness.proxies import proxy_auc

__all__ = ["CONSTRAINTS", "FORESTS", "GRID_SIZE", "PROXIES_DROPPED", "SEED_REFERENCE", "WEIGHTINGS", "Assessment",
           "SearchResult", "Spec", "held_out_check", "kamiran_calders_weights", "search", "served_approval"]

logger = logging.getLogger(__name__)

#: forest settings: a regularised forest (leaves of at least 20 rows, depth 12: fairness
#: constraints fitted on training rows hold better out of them) and a shallower one
FORESTS: dict[str, dict[str, Any]] = {
    "forest": {"n_estimators": 25, "min_samples_leaf": 20, "max_depth": 12},
    "shallow": {"n_estimators": 25, "min_samples_leaf": 50, "max_depth": 8},
}
#: reweighing strengths: none, half, Kamiran-Calders
WEIGHTINGS = (0.0, 0.5, 1.0)
#: fairlearn's constraints a lender can defend, by name
CONSTRAINTS: dict[str, Callable[[], Any]] = {
    "demographic parity": DemographicParity,
    "true positive rate parity": TruePositiveRateParity,
    "equalized odds": EqualizedOdds,
}
#: grid points of each GridSearch
GRID_SIZE = 5
#: proxies of each screened attribute dropped in turn
PROXIES_DROPPED = 2
#: the group the reductions put the groups too small to judge in
SMALL_GROUPS = "(small groups)"
#: the reference candidate's name: every declared attribute an input (never chosen)
SEED_REFERENCE = "seed"


@dataclass(frozen=True)
class Spec:
    """A candidate's recipe. ``reduction``: (constraint, attribute, grid point) of a GridSearch."""

    name: str
    features: tuple[str, ...]
    forest: str = "forest"
    weighting: float = 0.0
    reduction: tuple[str, str, int] | None = None
    eligible: bool = True
    summary: str = ""

    def settings(self, seed: int, trees: int | None) -> dict[str, Any]:
        """What the manifest records of how it is trained."""
        forest = FORESTS[self.forest] | ({"n_estimators": trees} if trees else {})
        settings = {"random_state": seed, **forest, "features": list(self.features)}
        if self.weighting:
            settings["reweighing"] = self.weighting
        if self.reduction:
            settings["reduction"] = {"constraint": self.reduction[0], "attribute": self.reduction[1],
                                     "grid_point": self.reduction[2], "grid_size": GRID_SIZE}
        return settings


@dataclass
class Assessment:
    """A candidate's cross-validated estimates: its metrics at its cutoff, each declared
    attribute's adverse impact ratio and standardized mean difference of scores, the worst
    ratio over the screened ones, and each screened attribute's other gaps between its judged
    groups (:func:`~loanxai.fairness.metrics.fairness_gaps`)."""

    spec: Spec
    metrics: dict[str, Any]
    air: dict[str, dict[str, Any]]
    smd: dict[str, dict[str, Any]]
    worst_air: float | None
    gaps: dict[str, dict[str, float]]
    approval: np.ndarray = field(repr=False)

    def point(self) -> dict[str, Any]:
        """What the manifest and the report keep of it."""
        return {"name": self.spec.name, "summary": self.spec.summary, "eligible": self.spec.eligible,
                "features": list(self.spec.features), "metrics": self.metrics, "air": self.air, "smd": self.smd,
                "worst_air": self.worst_air, "gaps": self.gaps}


@dataclass
class SearchResult:
    """Every candidate assessed, the rule's choice, and the chosen one refitted on every training row."""

    assessments: list[Assessment]
    chosen: Assessment
    requested: str
    best_auc: float
    tolerance: float
    folds: int
    pipeline: Pipeline
    schema: FeatureSchema
    cutoff: float
    seconds: float
    #: each screened attribute's adverse impact ratio of the training rows' own decisions (the label)
    data_air: dict[str, float | None]

    @property
    def within_tolerance(self) -> list[Assessment]:
        """The eligible candidates whose ROC AUC is within the tolerance of the best."""
        return [a for a in self.assessments
                if a.spec.eligible and a.metrics["roc_auc"] >= self.best_auc - self.tolerance]

    def record(self, seed: int, trees: int | None) -> dict[str, Any]:
        """The manifest's ``search`` section: the rule, the frontier's every point, the choice."""
        return {
            "rule": f"among the candidates whose cross-validated ROC AUC is within {self.tolerance} of the best "
                    f"({self.best_auc:.3f}), the highest worst adverse impact ratio over the screened attributes",
            "requested": self.requested, "chosen": self.chosen.spec.name, "best_roc_auc": self.best_auc,
            "tolerance": self.tolerance, "folds": self.folds, "seconds": round(self.seconds, 1),
            "settings": self.chosen.spec.settings(seed, trees), "data_air": self.data_air,
            "candidates": [a.point() for a in self.assessments],
        }


def kamiran_calders_weights(groups: pd.Series, y: np.ndarray) -> np.ndarray:
    """Reweighing (Kamiran and Calders, 2012): ``w(g, y) = P(g) P(y) / P(g, y)``, shape (n,).

    Each (group, label) cell then weighs as much as it would if label and group were
    independent; the weights sum to n.
    """
    groups = pd.Series(np.asarray(groups), name="group")
    labels = pd.Series(np.asarray(y), name="label")
    p_group = groups.map(groups.value_counts(normalize=True))
    p_label = labels.map(labels.value_counts(normalize=True))
    cells = pd.concat([groups, labels], axis=1)
    p_cell = cells.groupby(["group", "label"])["group"].transform("size") / len(cells)
    return (p_group * p_label / p_cell).to_numpy(dtype=np.float64)


def served_approval(pipeline: Pipeline, X: np.ndarray, schema: FeatureSchema) -> np.ndarray:
    """The probabilities of approval the classifier would serve for encoded rows ``X``, shape (n,):
    the pipeline's, with the elderly rule (:func:`loanxai.core.elderly.served_rows`)."""
    asked = served_rows(X, schema, pipeline.named_steps[PREPROCESSOR_STEP], pipeline.named_steps[CLASSIFIER_STEP])
    return pipeline.predict_proba(asked)[:, 1]


class _Search:
    """One search over a dataset's training rows (see the module's documentation)."""

    def __init__(self, dataset: Dataset, seed: int, trees: int | None) -> None:
        self.dataset, self.seed, self.trees = dataset, seed, trees
        self.description = dataset.description
        self.train = dataset.train
        self.y = self.train[LABEL].to_numpy().astype(int)
        self.base_rate = float(self.y.mean())
        self.policy = self.description.decision
        self.gate = self.description.gate
        self.screened = self.description.screened
        self.groups = {a: group_column(self.train, dataset.schema, a) for a in self.description.protected}
        folds = StratifiedKFold(self.description.selection["folds"], shuffle=True, random_state=seed)
        self.folds = list(folds.split(np.zeros(len(self.y)), self.y))
        self.schemas: dict[tuple[str, ...], FeatureSchema] = {}
        self.grids: dict[tuple[str, str, tuple[str, ...]], Any] = {}

    def schema(self, features: Sequence[str]) -> FeatureSchema:
        key = tuple(features)
        if key not in self.schemas:
            self.schemas[key] = build_schema(self.dataset.frame, self.description, inputs=list(key))
        return self.schemas[key]

    def forest(self, name: str) -> dict[str, Any]:
        return FORESTS[name] | ({"n_estimators": self.trees} if self.trees else {})

    # --- the candidates -----------------------------------------------------------------------------

    def specs(self) -> list[Spec]:
        inputs = self.description.feature_names
        sets = {"all": inputs}
        for attribute in self.screened:
            for proxy in self.strongest_proxies(attribute, inputs):
                sets.setdefault(f"no {proxy}", tuple(f for f in inputs if f != proxy))
        specs = []
        for set_name, features in sets.items():
            for forest in FORESTS:
                for weighting in WEIGHTINGS:
                    name = f"{set_name}, {forest}" + (f", reweighing {weighting:g}" if weighting else "")
                    summary = (("every model input" if set_name == "all" else f"every model input but {set_name[3:]}")
                               + f"; the {forest} forest" + (f"; Kamiran-Calders reweighing at {weighting:g}"
                                                             if weighting else ""))
                    specs.append(Spec(name, features, forest, weighting, summary=summary))
        for attribute in self.screened:
            for constraint in CONSTRAINTS:
                for point in range(GRID_SIZE):
                    specs.append(Spec(f"{constraint} for {attribute} #{point}", inputs, reduction=(constraint, attribute, point),
                                      summary=f"every model input; fairlearn GridSearch under {constraint} for {attribute}, "
                                              f"grid point {point} of {GRID_SIZE}"))
        everything = inputs + tuple(a for a in self.description.protected if a not in inputs)
        specs.append(Spec(SEED_REFERENCE, everything, eligible=False,
                          summary="every declared protected attribute an input too: what the prohibited bases would "
                                  "buy (a reference, never chosen)"))
        return specs

    def strongest_proxies(self, attribute: str, inputs: Sequence[str]) -> list[str]:
        """The inputs that predict ``attribute`` best alone, within the training rows (fitted on
        the first three quarters, scored on the last)."""
        cut = int(len(self.train) * 0.75)
        fit, score = self.train.iloc[:cut], self.train.iloc[cut:]
        groups = self.groups[attribute]
        strength = {}
        for name in inputs:
            if name == attribute:
                continue
            strength[name] = proxy_auc(fit, groups.iloc[:cut], score, groups.iloc[cut:], self.schema([name]),
                                       self.gate["min_group_rows"] // 4 or 1)
        ranked = sorted((s, n) for n, s in strength.items() if not np.isnan(s))[::-1]
        return [name for _, name in ranked[:PROXIES_DROPPED]]

    # --- assessing -------------------------------------------------------------------------------------

    def weights(self, weighting: float) -> np.ndarray | None:
        if not weighting:
            return None
        cells = pd.concat([self.groups[a].astype(str) for a in self.screened], axis=1).agg(" / ".join, axis=1)
        return kamiran_calders_weights(cells, self.y) ** weighting

    def fit(self, spec: Spec, rows: np.ndarray) -> Pipeline:
        """The pipeline ``spec`` gives, fitted on the training rows ``rows`` (indices), its
        forest predicting in one thread: threads add the trees' probabilities in the order they
        finish, and the last bits of a sum would then differ from run to run."""
        schema = self.schema(spec.features)
        if spec.reduction is not None:
            pipeline = self.grid_search(spec, rows).predictors_[spec.reduction[2]]
        else:
            weights = self.weights(spec.weighting)
            pipeline = build_pipeline(schema, self.seed, **self.forest(spec.forest))
            pipeline.fit(schema.encode_frame(self.train.iloc[rows]), self.y[rows],
                         **{SAMPLE_WEIGHT: None if weights is None else weights[rows]})
        pipeline.named_steps[CLASSIFIER_STEP].n_jobs = 1
        return pipeline

    def constrained_groups(self, attribute: str) -> np.ndarray:
        """The groups a reduction constrains, shape (n,): the attribute's, those too small to
        judge (under ``gate.min_group_rows`` training rows) merged into one, whose rates are
        mostly noise, so that every fold holds every group."""
        groups = self.groups[attribute].astype(str)
        sizes = groups.value_counts()
        small = sizes.index[sizes < self.gate["min_group_rows"]]
        return groups.where(~groups.isin(small), SMALL_GROUPS).to_numpy()

    def grid_search(self, spec: Spec, rows: np.ndarray) -> GridSearch:
        """The GridSearch (fairlearn) fitted on ``rows``, on the grid of the whole training rows'
        (fitted first), so that a grid point is the same Lagrange multiplier in every fold (its
        own grid if a fold lacks a group)."""
        constraint, attribute, _ = spec.reduction
        everything = len(rows) == len(self.y)
        key = (constraint, attribute, "all" if everything else tuple(rows[:5]) + (len(rows),))
        if key in self.grids:
            return self.grids[key]
        schema = self.schema(spec.features)
        groups = self.constrained_groups(attribute)
        grid = None
        if not everything and set(groups[rows]) == set(groups):
            grid = self.grid_search(spec, np.arange(len(self.y))).lambda_vecs_
        search = GridSearch(build_pipeline(schema, self.seed, **self.forest(spec.forest)), CONSTRAINTS[constraint](),
                            grid_size=GRID_SIZE, grid=grid, sample_weight_name=SAMPLE_WEIGHT)
        search.fit(schema.encode_frame(self.train.iloc[rows]), self.y[rows], sensitive_features=groups[rows])
        self.grids[key] = search
        return search

    def assess(self, spec: Spec) -> Assessment:
        schema = self.schema(spec.features)
        X = schema.encode_frame(self.train)
        approval = np.zeros(len(self.y))
        for fit_rows, score_rows in self.folds:
            approval[score_rows] = served_approval(self.fit(spec, fit_rows), X[score_rows], schema)
        cutoff = policy_cutoff(approval, self.policy, self.base_rate)
        decisions = approval >= cutoff
        min_rows = self.gate["min_group_rows"]
        air = {a: adverse_impact(decisions, groups.tolist(), min_rows) for a, groups in self.groups.items()}
        smd = {a: standardized_mean_difference(approval, groups.tolist(), min_rows) for a, groups in self.groups.items()}
        ratios = [air[a]["ratio"] for a in self.screened if air[a]["ratio"] is not None]
        return Assessment(spec, evaluate(approval, self.y, cutoff), air, smd, min(ratios) if ratios else None,
                          self.gaps(decisions, air), approval)

    def gaps(self, decisions: np.ndarray, air: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
        gaps = {}
        for attribute in self.screened:
            if air[attribute]["ratio"] is None:
                continue
            groups = self.groups[attribute]
            judged = groups.isin([g for g in air[attribute]["groups"] if g not in air[attribute]["not_judged"]]).to_numpy()
            gaps[attribute] = fairness_gaps(self.y[judged], decisions[judged], groups[judged])
        return gaps


def search(dataset: Dataset, seed: int = 0, requested: str = "auto", n_estimators: int | None = None,
           only: Sequence[str] | None = None) -> SearchResult:
    """Assess every candidate (``only``: those names, and the reference), choose by the rule (or
    the ``requested`` name; ``none``: the reference), and refit the choice on every training
    row. Its cutoff is set on its cross-validated probabilities (the training rows', each from
    a model that did not see it: how the refitted model will score new applications).
    ``n_estimators`` replaces every forest's number of trees (quick runs)."""
    started = time.perf_counter()
    run = _Search(dataset, seed, n_estimators)
    specs = run.specs()
    if only is not None:
        specs = [s for s in specs if s.name in only or s.name == SEED_REFERENCE]
    names = [s.name for s in specs]
    wanted = SEED_REFERENCE if requested == "none" else requested
    unknown = [name for name in [*(only or ()), *([] if requested == "auto" else [wanted])] if name not in names]
    if unknown:  # before the search's minutes, not after
        raise UnknownCandidate(f"unknown candidate {unknown[0]!r}; the candidates: auto, none, " + ", ".join(names))
    assessments = []
    for spec in specs:
        assessed = run.assess(spec)
        m = assessed.metrics
        logger.info("%-52s ROC AUC %.3f, recall %.3f, worst AIR %s", spec.name, m["roc_auc"], m["recall"],
                    "n/a" if assessed.worst_air is None else f"{assessed.worst_air:.3f}")
        assessments.append(assessed)
    eligible = [a for a in assessments if a.spec.eligible]
    best_auc = max(a.metrics["roc_auc"] for a in eligible)
    tolerance = float(dataset.description.selection["tolerance"])
    within = [a for a in eligible if a.metrics["roc_auc"] >= best_auc - tolerance]
    if requested == "auto":
        chosen = max(within, key=lambda a: (-1.0 if a.worst_air is None else a.worst_air, a.metrics["roc_auc"]))
    else:
        chosen = next(a for a in assessments if a.spec.name == wanted)
    pipeline = run.fit(chosen.spec, np.arange(len(run.y)))
    data_air = {a: adverse_impact(run.y.astype(bool), run.groups[a].tolist(), run.gate["min_group_rows"])["ratio"]
                for a in run.screened}
    return SearchResult(assessments, chosen, requested, best_auc, tolerance, len(run.folds), pipeline,
                        run.schema(chosen.spec.features), float(policy_cutoff(chosen.approval, run.policy, run.base_rate)),
                        time.perf_counter() - started, data_air)


def held_out_check(result: SearchResult, dataset: Dataset) -> dict[str, Any]:
    """The chosen model on the held-out rows, at its cutoff: its metrics and each declared
    attribute's adverse impact ratio (the final check; the search never saw these rows)."""
    test = dataset.test
    approval = served_approval(result.pipeline, result.schema.encode_frame(test), result.schema)
    decisions = approval >= result.cutoff
    min_rows = dataset.description.gate["min_group_rows"]
    return {"metrics": evaluate(approval, test[LABEL].to_numpy(), result.cutoff),
            "air": {a: adverse_impact(decisions, group_column(test, dataset.schema, a).tolist(), min_rows)
                    for a in dataset.description.protected}}

