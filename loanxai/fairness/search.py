"""The search for a less discriminatory alternative: candidates compared as a lender compares them.

A flagged disparity must be met with a search for an alternative that serves the lender's
legitimate need about as well and discriminates less (disparate-impact burden shifting; the
regulators expect the search). The candidates are :mod:`loanxai.fairness.candidates`'. Each is
estimated by k-fold cross-validation on the training rows (``selection.folds``): ROC AUC, and
at the policy's cutoff (the same approval rate for every candidate) recall, precision and each
declared attribute's adverse impact ratio with its interval; and, whatever the cutoff, each
attribute's standardized mean difference of the scores with its interval. Accuracy is shown
beside the always-reject baseline and never chooses.

**The rule.** Among the eligible candidates of the families the description lets it choose
(``selection.choose_from``) whose ROC AUC is within ``selection.tolerance`` of the best of
them, the :data:`CONTENDERS` with the highest worst adverse impact ratio over the screened
attributes are estimated again on :data:`SPLITS` - 1 more fold splits, and the one of the
highest mean worst ratio is chosen (ties: the higher mean AUC): on one split, near-equal
candidates trade places by the folds' noise alone (:meth:`_Search.repeated`; the record shows
each split's own choice and whether any contender beats the choice materially on one). A group
drives the rule only when it is large enough to judge reliably: the
policy's approval rate would approve at least ``selection.reliable_approvals`` of its training
rows (100: the ratio then known to about +-20%; the census's "Other", 53, only to about +-30%),
a count that does not depend on any candidate's decisions, so no candidate escapes judgement by
approving a group less. Smaller groups keep their ratios and intervals in the record and the
report, marked too small to judge reliably. A reference candidate, every declared attribute an input,
shows what the prohibited bases would buy; it is never chosen. The manifest records every point
and what the search covered (:meth:`SearchResult.coverage`).

**Running it.** The fits are independent jobs (one candidate's, or one GridSearch's, on one
fold), run by joblib on every core (one thread each), with a progress bar on a terminal and a
log line every tenth otherwise. Each job's answer is kept on disk (joblib's ``Memory``, keyed by
its inputs, the library versions and this package's sources): an interrupted search resumes
where it stopped, and a repeated one costs only its assessment.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.reductions import GridSearch
from joblib import Memory, Parallel, delayed
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from loanxai.artifacts import MANIFEST_FILE
from loanxai.core.elderly import served_rows
from loanxai.core.manifest import Manifest
from loanxai.core.pipeline import CLASSIFIER_STEP, FOREST, PREPROCESSOR_STEP, SAMPLE_WEIGHT, build_pipeline
from loanxai.core.schema import FeatureSchema
from loanxai.data.dataset import Dataset, build_schema, group_column
from loanxai.data.description import LABEL
from loanxai.errors import ArtifactError, UnknownCandidate
from loanxai.fairness.candidates import (
    CONSTRAINTS,
    FAMILIES,
    GRID_SIZE,
    PROXIES_DROPPED,
    QUICK,
    SEED_REFERENCE,
    WEIGHTINGS,
    Spec,
    binary_groups,
    incumbent_spec,
    kamiran_calders_weights,
    lambda_grid,
)
from loanxai.fairness.metrics import (
    adverse_impact,
    evaluate,
    fairness_gaps,
    policy_cutoff,
    standardized_mean_difference,
)
from loanxai.fairness.proxies import proxy_auc

__all__ = ["CONTENDERS", "SPLITS", "Assessment", "SearchResult", "held_out_check", "search", "served_approval"]

logger = logging.getLogger(__name__)

#: fold splits the rule's contenders are estimated on: one split's ranking of near-equal
#: candidates is mostly the folds' noise (measured on the census: 0.01-0.03 of worst ratio)
SPLITS = 3
#: the candidates of the highest worst ratio within the tolerance that the rule re-estimates
CONTENDERS = 8
#: the packages whose versions key the kept answers, beside this package's sources
_KEYED_PACKAGES = ("scikit-learn", "fairlearn", "numpy", "pandas")


@dataclass
class Assessment:
    """A candidate's cross-validated estimates: its metrics at its cutoff, each declared
    attribute's adverse impact ratio and standardized mean difference of scores, each screened
    attribute's ratio over its groups judged reliably (``rule_air``) and the worst of those
    (what the rule ranks by), and each screened attribute's other gaps between its judged
    groups (:func:`~loanxai.fairness.metrics.fairness_gaps`)."""

    spec: Spec
    metrics: dict[str, Any]
    air: dict[str, dict[str, Any]]
    smd: dict[str, dict[str, Any]]
    rule_air: dict[str, dict[str, Any]]
    worst_air: float | None
    gaps: dict[str, dict[str, float]]
    approval: np.ndarray = field(repr=False)

    def point(self) -> dict[str, Any]:
        """What the manifest and the report keep of it."""
        return {"name": self.spec.name, "summary": self.spec.summary, "eligible": self.spec.eligible,
                "family": self.spec.family, "features": list(self.spec.features), "metrics": self.metrics,
                "air": self.air, "smd": self.smd, "rule_air": self.rule_air, "worst_air": self.worst_air,
                "gaps": self.gaps}


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
    #: the families the rule chose from, and every family searched
    choose_from: tuple[str, ...]
    families: tuple[str, ...]
    #: each screened attribute's groups too small to judge reliably: their rows and expected approvals
    unreliable: dict[str, dict[str, dict[str, float]]]
    reliable_approvals: int
    #: the seed of the folds and the models; trees (or boosting iterations), when not the settings' own; grid points
    seed: int
    trees: int | None
    grid_size: int
    #: the rule's second step, its contenders on more fold splits (None: a named candidate was requested)
    repeated: dict[str, Any] | None = None
    #: the served model whose recipe was re-assessed as the candidate "incumbent": its manifest, candidate, date
    incumbent: dict[str, Any] | None = None

    @property
    def within_tolerance(self) -> list[Assessment]:
        """The candidates the rule chooses among: eligible, of a family it may choose, and within
        the tolerance of the best ROC AUC."""
        return [a for a in self.assessments if _choosable(a.spec, self.choose_from)
                and a.metrics["roc_auc"] >= self.best_auc - self.tolerance]

    def coverage(self, threshold: float | None) -> dict[str, Any]:
        """What the search covered and found, per family: its candidates, its best ROC AUC, and
        the best worst ratio within the tolerance of that AUC, with its 95% interval; and whether
        any candidate reaches the screen's ``threshold``."""
        families = {}
        for family in self.families:
            assessed = [a for a in self.assessments if a.spec.eligible and a.spec.family == family]
            if not assessed:  # none asked for (``only``)
                continue
            best = max(a.metrics["roc_auc"] for a in assessed)
            within = [a for a in assessed if a.metrics["roc_auc"] >= best - self.tolerance and a.worst_air is not None]
            top = max(within, key=lambda a: (a.worst_air, a.metrics["roc_auc"]), default=None)
            families[family] = {"candidates": len(assessed), "best_roc_auc": best,
                                "best_worst_air": None if top is None else _worst_figure(top),
                                "reaching_threshold": None if threshold is None else sum(
                                    1 for a in assessed if a.worst_air is not None and a.worst_air >= threshold)}
        reaching = [a for a in self.assessments if a.spec.eligible and threshold is not None
                    and a.worst_air is not None and a.worst_air >= threshold]
        first = max(reaching, key=lambda a: a.metrics["roc_auc"], default=None)
        return {"families": families, "threshold": threshold,
                "best_reaching_threshold": None if first is None else
                {"name": first.spec.name, "roc_auc": first.metrics["roc_auc"], "worst_air": first.worst_air}}

    def record(self, threshold: float | None = None) -> dict[str, Any]:
        """The manifest's ``search`` section: the rule, what it covered, the frontier's every point, the choice."""
        return {
            "rule": f"among the {' and '.join(self.choose_from)} candidates whose cross-validated ROC AUC is within "
                    f"{self.tolerance} of the best of them ({self.best_auc:.3f}), the {CONTENDERS} of the highest worst "
                    f"adverse impact ratio over the screened attributes' groups judged reliably (a group the policy's "
                    f"rate would approve at least {self.reliable_approvals} of) are estimated on {SPLITS} fold splits; "
                    f"the one of the highest mean worst ratio is chosen",
            "requested": self.requested, "chosen": self.chosen.spec.name, "best_roc_auc": self.best_auc,
            "tolerance": self.tolerance, "folds": self.folds, "seconds": round(self.seconds, 1),
            "families": list(self.families), "choose_from": list(self.choose_from),
            "reliable_approvals": self.reliable_approvals, "unreliable": self.unreliable,
            "coverage": self.coverage(threshold), "repeated": self.repeated, "incumbent": self.incumbent,
            "settings": self.chosen.spec.settings(self.seed, self.trees, self.grid_size),
            "data_air": self.data_air, "candidates": [a.point() for a in self.assessments],
        }


def served_approval(pipeline: Pipeline, X: np.ndarray, schema: FeatureSchema) -> np.ndarray:
    """The probabilities of approval the classifier would serve for encoded rows ``X``, shape (n,):
    the pipeline's, with the elderly rule (:func:`loanxai.core.elderly.served_rows`)."""
    asked = served_rows(X, schema, pipeline.named_steps[PREPROCESSOR_STEP], pipeline.named_steps[CLASSIFIER_STEP])
    return pipeline.predict_proba(asked)[:, 1]


def _choosable(spec: Spec, families: Sequence[str]) -> bool:
    return spec.eligible and spec.family in families


def _worst_figure(assessed: Assessment) -> dict[str, Any]:
    """The worst reliably judged ratio of a candidate, its attribute and its 95% interval."""
    attribute = min((f["ratio"], a) for a, f in assessed.rule_air.items() if f["ratio"] is not None)[1]
    figure = assessed.rule_air[attribute]
    return {"name": assessed.spec.name, "roc_auc": assessed.metrics["roc_auc"], "attribute": attribute,
            "ratio": figure["ratio"], "low": figure["low"], "high": figure["high"]}


@dataclass(frozen=True)
class _Fit:
    """One job: the fits of the candidates sharing ``fit_key`` (one, or a GridSearch's points) on
    ``fit_rows``, and their served probabilities of approval for ``score_rows``."""

    schema: FeatureSchema
    family: str
    settings: dict[str, Any]
    seed: int
    constraint: str | None
    grid: pd.DataFrame | None
    points: tuple[int, ...]


def _fit_pipelines(job: _Fit, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None,
                   sides: np.ndarray | None) -> list[Pipeline]:
    """The job's pipelines fitted on ``X``, ``y``: one, or one per grid point of ``job.points``."""
    pipeline = build_pipeline(job.schema, job.seed, job.family, **job.settings)
    if job.constraint is None:
        pipeline.fit(X, y, **{SAMPLE_WEIGHT: weights})
        fitted = [pipeline]
    else:
        grid = job.grid.iloc[:, list(job.points)]
        reduction = GridSearch(pipeline, CONSTRAINTS[job.constraint](), grid=grid, sample_weight_name=SAMPLE_WEIGHT)
        reduction.fit(X, y, sensitive_features=sides)
        fitted = list(reduction.predictors_)
    for one in fitted:  # threads would add the trees' probabilities in the order they finish
        if job.family == FOREST:
            one.named_steps[CLASSIFIER_STEP].n_jobs = 1
    return fitted


def _fold_answers(job: _Fit, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None, sides: np.ndarray | None,
                  fit_rows: np.ndarray, score_rows: np.ndarray, salt: str) -> list[np.ndarray]:
    """One job on one fold: each of its candidates' served probabilities for ``score_rows``, in
    one thread (``salt``, unused here, keys the kept answers to the code and library versions)."""
    with threadpool_limits(1):
        fitted = _fit_pipelines(job, X[fit_rows], y[fit_rows], None if weights is None else weights[fit_rows],
                                None if sides is None else sides[fit_rows])
        return [served_approval(pipeline, X[score_rows], job.schema) for pipeline in fitted]


def _salt() -> str:
    """What the kept answers depend on beyond their arguments: the sources of the code that fits
    and predicts (:mod:`loanxai.core`, this module, :mod:`~loanxai.fairness.candidates`) and the
    libraries' versions. The assessment, the gate and the report are not kept, and may change freely."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve()
    for path in sorted([*(here.parents[1] / "core").glob("*.py"), here, here.with_name("candidates.py")]):
        digest.update(path.read_bytes())
    for package in _KEYED_PACKAGES:
        digest.update(f"{package}={metadata.version(package)}".encode())
    return digest.hexdigest()


class _Search:
    """One search over a dataset's training rows (see the module's documentation)."""

    def __init__(self, dataset: Dataset, seed: int, trees: int | None, quick: bool, cache: Path | None) -> None:
        self.dataset, self.seed, self.quick = dataset, seed, quick
        self.trees = QUICK["trees"] if quick and trees is None else trees
        self.grid_size = QUICK["grid_size"] if quick else GRID_SIZE
        self.description = description = dataset.description
        self.train = dataset.train
        self.y = self.train[LABEL].to_numpy().astype(int)
        self.base_rate = float(self.y.mean())
        self.policy, self.gate, self.screened = description.decision, description.gate, description.screened
        self.groups = {a: group_column(self.train, dataset.schema, a) for a in description.protected}
        self.families = tuple(description.selection["families"])
        self.choose_from = tuple(description.selection["choose_from"])
        self.reliable_approvals = int(description.selection["reliable_approvals"])
        self.schemas: dict[tuple[str, ...], FeatureSchema] = {}
        self.encoded: dict[tuple[str, ...], np.ndarray] = {}
        self.memory = Memory(None if cache is None else str(cache), verbose=0)
        self.salt = _salt()
        self.sides = {a: binary_groups(self.groups[a], self.y) for a in self.screened}
        approved_rows = len(self.y) * _approval_rate(self.policy, self.base_rate)
        self.unreliable = {}
        for attribute in self.screened:
            shares = self.groups[attribute].value_counts(normalize=True)
            self.unreliable[attribute] = {
                str(g): {"rows": int(round(share * len(self.y))), "expected_approvals": round(share * approved_rows, 1)}
                for g, share in shares.items() if share * approved_rows < self.reliable_approvals}

    def schema(self, features: Sequence[str]) -> FeatureSchema:
        key = tuple(features)
        if key not in self.schemas:
            self.schemas[key] = build_schema(self.dataset.frame, self.description, inputs=list(key))
            self.encoded[key] = self.schemas[key].encode_frame(self.train)
        return self.schemas[key]

    def folds(self, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        splitter = StratifiedKFold(self.description.selection["folds"], shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(self.y)), self.y))

    # --- the candidates -----------------------------------------------------------------------------

    def specs(self) -> list[Spec]:
        inputs = self.description.feature_names
        sets = {"all": inputs}
        for attribute in self.screened:
            for proxy in self.strongest_proxies(attribute, inputs):
                sets.setdefault(f"no {proxy}", tuple(f for f in inputs if f != proxy))
        specs = []
        for family in self.families:
            settings = list(FAMILIES[family])[:1] if self.quick else list(FAMILIES[family])
            for set_name, features in sets.items():
                for setting in settings:
                    for weighting in WEIGHTINGS:
                        specs.append(Spec(
                            f"{set_name}, {setting}" + (f", reweighing {weighting:g}" if weighting else ""), features,
                            family, setting, weighting,
                            summary=("every model input" if set_name == "all" else f"every model input but {set_name[3:]}")
                            + f"; {setting} ({family})"
                            + (f"; Kamiran-Calders reweighing at {weighting:g}" if weighting else "")))
            setting = settings[0]
            for attribute in self.screened:
                for constraint in CONSTRAINTS:
                    for point in range(self.grid_size):
                        specs.append(Spec(
                            f"{constraint} for {attribute} #{point}, {setting}", inputs, family, setting,
                            reduction=(constraint, attribute, point),
                            summary=f"every model input; {setting} ({family}); fairlearn GridSearch under {constraint} "
                                    f"for {attribute} (binary groups), grid point {point} of {self.grid_size}"))
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

    def incumbent(self, manifest: Manifest) -> Spec:
        """The served model's recipe as a candidate (:func:`~loanxai.fairness.candidates.incumbent_spec`),
        if it was trained on this dataset's very files."""
        where = str(manifest.directory / MANIFEST_FILE)
        record = manifest.dataset
        if record.name != self.description.name or dict(record.sources) != dict(self.dataset.source_sha256):
            raise ArtifactError(f"{where}: the incumbent was trained on dataset {record.name!r} (sources "
                                f"{dict(record.sources)}), not on {self.description.name!r} as given now: its recipe "
                                "cannot be compared on these folds")
        columns = (*self.description.feature_names, *self.description.protected)
        return incumbent_spec(manifest.search["settings"], columns, self.grid_size, where)

    # --- fitting ---------------------------------------------------------------------------------------

    def job(self, specs: Sequence[Spec]) -> tuple[_Fit, tuple]:
        """The job fitting ``specs`` (one ``fit_key``), and its data: encoded rows, labels, weights, sides."""
        first = specs[0]
        schema = self.schema(first.features)
        weights = None
        if first.weighting:
            cells = pd.concat([self.groups[a].astype(str) for a in self.screened], axis=1).agg(" / ".join, axis=1)
            weights = kamiran_calders_weights(cells, self.y) ** first.weighting
        constraint = grid = sides = None
        points: tuple[int, ...] = ()
        if first.reduction is not None:
            constraint, attribute, _ = first.reduction
            sides = self.sides[attribute]
            grid = lambda_grid(constraint, sides, self.y, self.grid_size)
            points = tuple(s.reduction[2] for s in specs)
        job = _Fit(schema, first.family, first.estimator_settings(self.trees), self.seed if first.seed is None else first.seed,
                   constraint, grid, points)
        return job, (self.encoded[tuple(first.features)], self.y, weights, sides)

    def approvals(self, specs: Sequence[Spec], seed: int, description: str) -> dict[str, np.ndarray]:
        """Each candidate's cross-validated probabilities of approval, shape (n,), on the folds of ``seed``."""
        groups: dict[tuple, list[Spec]] = {}
        for spec in specs:
            groups.setdefault(spec.fit_key, []).append(spec)
        folds = self.folds(seed)
        answer = self.memory.cache(_fold_answers)
        tasks, order = [], []
        for members in groups.values():
            job, data = self.job(members)
            for fold, (fit_rows, score_rows) in enumerate(folds):
                tasks.append(delayed(answer)(job, *data, fit_rows, score_rows, self.salt))
                order.append((members, fold))
        approval = {s.name: np.zeros(len(self.y)) for s in specs}
        runner = Parallel(n_jobs=os.cpu_count() or 1, return_as="generator")
        with tqdm(total=len(tasks), desc=description, unit="job", disable=None, leave=False) as bar:
            for done, (answers, (members, fold)) in enumerate(zip(runner(tasks), order), 1):
                for spec, fold_approval in zip(members, answers):
                    approval[spec.name][folds[fold][1]] = fold_approval
                bar.update()
                if bar.disable and done * 10 // len(tasks) > (done - 1) * 10 // len(tasks):
                    logger.info("%s: %d of %d jobs", description, done, len(tasks))
        return approval

    def refit(self, spec: Spec) -> Pipeline:
        """The pipeline ``spec`` gives, fitted on every training row."""
        job, (X, y, weights, sides) = self.job([spec])
        with threadpool_limits(1):
            return _fit_pipelines(job, X, y, weights, sides)[0]

    # --- assessing -------------------------------------------------------------------------------------

    def assess(self, spec: Spec, approval: np.ndarray) -> Assessment:
        cutoff = policy_cutoff(approval, self.policy, self.base_rate)
        decisions = approval >= cutoff
        min_rows = self.gate["min_group_rows"]
        air = {a: adverse_impact(decisions, groups.tolist(), min_rows) for a, groups in self.groups.items()}
        smd = {a: standardized_mean_difference(approval, groups.tolist(), min_rows) for a, groups in self.groups.items()}
        rule_air = {}
        for attribute in self.screened:
            reliable = self.groups[attribute].astype(str).where(
                lambda g, a=attribute: ~g.isin(self.unreliable[a]), None)
            figure = adverse_impact(decisions, reliable.tolist(), min_rows)
            rule_air[attribute] = {k: figure[k] for k in ("ratio", "low", "high", "lowest", "highest")}
        ratios = [f["ratio"] for f in rule_air.values() if f["ratio"] is not None]
        return Assessment(spec, evaluate(approval, self.y, cutoff), air, smd, rule_air, min(ratios) if ratios else None,
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

    def repeated(self, assessments: Sequence[Assessment], tolerance: float) -> tuple[Assessment, dict[str, Any]]:
        """The rule's second step: the :data:`CONTENDERS` candidates of the highest worst ratio
        within the tolerance (on the search's folds) estimated on :data:`SPLITS` - 1 more fold
        splits (seeds ``seed + 1``, ...), and the one of the highest mean worst ratio over all the
        splits chosen (ties: the higher mean ROC AUC).

        Returns the choice and the record: each contender's worst ratio and ROC AUC on each split
        and their means, each split's own choice, and on each split the gap between its best
        contender's worst ratio and the choice's; ``stable`` when no gap exceeds the gate's
        ``material_difference``: on no split is a contender materially less discriminatory."""
        choosable = [a for a in assessments if _choosable(a.spec, self.choose_from) and a.worst_air is not None]
        best_auc = max(a.metrics["roc_auc"] for a in choosable)
        contenders = sorted((a for a in choosable if a.metrics["roc_auc"] >= best_auc - tolerance),
                            key=lambda a: (-a.worst_air, -a.metrics["roc_auc"]))[:CONTENDERS]
        figures = {a.spec.name: {"worst_air": [a.worst_air], "roc_auc": [a.metrics["roc_auc"]]} for a in contenders}
        seeds = [self.seed + split for split in range(SPLITS)]
        for split, seed in enumerate(seeds[1:], 2):
            approvals = self.approvals([a.spec for a in contenders], seed, f"split {split} of {SPLITS}")
            for contender in contenders:
                again = self.assess(contender.spec, approvals[contender.spec.name])
                figures[contender.spec.name]["worst_air"].append(-1.0 if again.worst_air is None else again.worst_air)
                figures[contender.spec.name]["roc_auc"].append(again.metrics["roc_auc"])
        means = {name: (float(np.mean(f["worst_air"])), float(np.mean(f["roc_auc"]))) for name, f in figures.items()}
        chosen = max(contenders, key=lambda a: means[a.spec.name])
        gaps = [max(f["worst_air"][i] for f in figures.values()) - figures[chosen.spec.name]["worst_air"][i]
                for i in range(SPLITS)]
        return chosen, {
            "fold_seeds": seeds,
            "contenders": [{"name": name, **f, "mean_worst_air": means[name][0], "mean_roc_auc": means[name][1]}
                           for name, f in figures.items()],
            "split_choices": [max(figures, key=lambda n, i=i: (figures[n]["worst_air"][i], figures[n]["roc_auc"][i]))
                              for i in range(SPLITS)],
            "gaps": gaps, "material_difference": self.gate["material_difference"],
            "stable": max(gaps) <= self.gate["material_difference"],
        }


def _approval_rate(policy: dict[str, Any], base_rate: float) -> float:
    """The share of applications the policy approves: its approval rate (``base``: the training
    data's), or the base rate when the policy fixes a cutoff instead."""
    rate = policy.get("approval_rate", "base")
    return base_rate if rate == "base" else float(rate)


def search(dataset: Dataset, seed: int = 0, requested: str = "auto", n_estimators: int | None = None,
           only: Sequence[str] | None = None, quick: bool = False, cache: Path | None = None,
           incumbent: Manifest | None = None) -> SearchResult:
    """Assess every candidate (``only``: those names, and the reference), choose by the rule (or
    the ``requested`` name; ``none``: the reference), and refit the choice on every training row. Its cutoff is set
    on its cross-validated probabilities (the training rows', each from a model that did not see
    it: how the refitted model will score new applications).

    ``n_estimators`` replaces every candidate's number of trees (or boosting iterations);
    ``quick``: each family's first setting, 10 trees and 5 grid points (tests); ``cache``: the
    folder the fits' answers are kept in (None: nothing kept); ``incumbent``: the served model's
    classifier manifest, whose recipe is re-assessed on the same folds beside the candidates."""
    started = time.perf_counter()
    run = _Search(dataset, seed, n_estimators, quick, cache)
    specs = run.specs()
    if only is not None:
        specs = [s for s in specs if s.name in only or s.name == SEED_REFERENCE]
    names = [s.name for s in specs]
    incumbent_record = None
    if incumbent is not None:
        specs.append(run.incumbent(incumbent))
        incumbent_record = {"directory": str(incumbent.directory), "candidate": incumbent.candidate,
                            "trained_at": incumbent.created_at, "manifest_sha256": incumbent.sha256}
    wanted = SEED_REFERENCE if requested == "none" else requested
    unknown = [name for name in [*(only or ()), *([] if requested == "auto" else [wanted])] if name not in names]
    if unknown:  # before the search's minutes, not after
        raise UnknownCandidate(f"unknown candidate {unknown[0]!r}; the candidates: auto, none, " + ", ".join(names))
    if not any(_choosable(s, run.choose_from) for s in specs):
        raise UnknownCandidate("no candidate of the families the rule may choose from (selection.choose_from: "
                               + ", ".join(run.choose_from) + ") is among those asked for")
    logger.info("searching %d candidates of %s (%d-fold cross-validation)", len(specs), ", ".join(run.families),
                len(run.folds(seed)))
    approvals = run.approvals(specs, seed, "search")
    assessments = [run.assess(spec, approvals[spec.name]) for spec in specs]
    for assessed in assessments:
        m = assessed.metrics
        logger.debug("%-60s ROC AUC %.3f, recall %.3f, worst AIR %s", assessed.spec.name, m["roc_auc"], m["recall"],
                     "n/a" if assessed.worst_air is None else f"{assessed.worst_air:.3f}")
    tolerance = float(dataset.description.selection["tolerance"])
    best_auc = max(a.metrics["roc_auc"] for a in assessments if _choosable(a.spec, run.choose_from))
    repeated = None
    if requested == "auto":
        chosen, repeated = run.repeated(assessments, tolerance)
    else:
        chosen = next(a for a in assessments if a.spec.name == wanted)
    pipeline = run.refit(chosen.spec)
    data_air = {a: adverse_impact(run.y.astype(bool), run.groups[a].tolist(), run.gate["min_group_rows"])["ratio"]
                for a in run.screened}
    return SearchResult(assessments, chosen, requested, best_auc, tolerance, len(run.folds(seed)), pipeline,
                        run.schema(chosen.spec.features), float(policy_cutoff(chosen.approval, run.policy, run.base_rate)),
                        time.perf_counter() - started, data_air, run.choose_from, run.families, run.unreliable,
                        run.reliable_approvals, seed, run.trees, run.grid_size, repeated, incumbent_record)


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
