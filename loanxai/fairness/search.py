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
drives the rule only when it is large enough to judge reliably: the policy's approval rate
would approve at least ``selection.reliable_approvals`` of its training rows (100: the ratio
then known to about +-20%; the census's Other, 54, to about +-25% at best), a count that does
not depend on any candidate's decisions, so no candidate escapes judgement by approving a group
less. Smaller groups keep their ratios and intervals in the record and the report, marked too
small to judge reliably. A reference candidate, every declared attribute an input, shows what
the prohibited bases would buy; it is never chosen. The manifest records every point and what
the search covered (:meth:`~loanxai.fairness.results.SearchResult.coverage`).

**Running it.** The fits are independent jobs (one candidate's, or one GridSearch's, on one
fold), run on every core and kept on disk by :mod:`loanxai.fairness.fits`: an interrupted
search resumes where it stopped, and a repeated one costs only its assessment.

**The randomized reference.** Beside the candidates, ExponentiatedGradient's randomized
classifiers (:mod:`loanxai.fairness.randomized`) are cross-validated on the same folds and
judged as the candidates are, on one draw of their decisions: what randomization would buy,
never chosen.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from loanxai.artifacts import MANIFEST_FILE
from loanxai.core.manifest import ClassifierManifest
from loanxai.core.schema import FeatureSchema
from loanxai.data.dataset import Dataset, build_schema, group_column
from loanxai.data.description import LABEL
from loanxai.errors import ArtifactError, DataError, UnknownCandidate
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
from loanxai.fairness.fits import FitJob, fit_pipelines, fold_approvals, served_approval
from loanxai.fairness.metrics import (
    adverse_impact,
    evaluate,
    fairness_gaps,
    policy_cutoff,
    policy_rate,
    standardized_mean_difference,
)
from loanxai.fairness.proxies import proxy_auc
from loanxai.fairness.randomized import BOUNDS, ITERATIONS, RandomizedJob, mixture_approval
from loanxai.fairness.randomized import QUICK as QUICK_RANDOMIZED
from loanxai.fairness.results import CONTENDERS, SPLITS, Assessment, SearchResult, choosable

__all__ = ["held_out_check", "search"]

logger = logging.getLogger(__name__)

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
        self.cache = cache
        self.sides = {a: binary_groups(self.groups[a], self.y) for a in self.screened}
        approved_rows = len(self.y) * policy_rate(self.policy, self.base_rate)
        self.unreliable = {}
        for attribute in self.screened:
            shares = self.groups[attribute].value_counts(normalize=True)
            self.unreliable[attribute] = {
                str(g): {"rows": int(round(share * len(self.y))), "expected_approvals": round(share * approved_rows, 1)}
                for g, share in shares.items() if share * approved_rows < self.reliable_approvals}
        #: each screened attribute's groups as the rule judges them: those too small to judge reliably left out (None)
        self.reliable_groups = {a: self.groups[a].astype(str).where(lambda g, a=a: ~g.isin(self.unreliable[a]), None)
                                .tolist() for a in self.screened}
        # Kamiran-Calders weights over the intersection of the screened attributes, once: each
        # reweighing strength raises them to its power
        cells = pd.concat([self.groups[a].astype(str) for a in self.screened], axis=1).agg(" / ".join, axis=1)
        self.reweighing = kamiran_calders_weights(cells, self.y)
        self.grids: dict[tuple[str, str], pd.DataFrame] = {}

    @property
    def judged_reliably(self) -> list[str]:
        """The screened attributes with two groups or more large enough to judge reliably: the
        rule's worst ratio is over theirs (none: no candidate has one)."""
        return [a for a in self.screened if self.groups[a].nunique() - len(self.unreliable[a]) >= 2]

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

    def incumbent(self, manifest: ClassifierManifest) -> Spec:
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

    def job(self, specs: Sequence[Spec]) -> FitJob:
        """The job fitting ``specs`` (one ``fit_key``) with its data: encoded rows, labels, weights, sides."""
        first = specs[0]
        schema = self.schema(first.features)
        weights = None
        if first.weighting:
            weights = self.reweighing ** first.weighting
        constraint = grid = sides = None
        points: tuple[int, ...] = ()
        if first.reduction is not None:
            constraint, attribute, _ = first.reduction
            sides = self.sides[attribute]
            if (constraint, attribute) not in self.grids:  # one grid for every family and every split
                self.grids[constraint, attribute] = lambda_grid(constraint, sides, self.y, self.grid_size)
            grid = self.grids[constraint, attribute]
            points = tuple(s.reduction[2] for s in specs)
        return FitJob(schema, first.family, first.estimator_settings(self.trees),
                      self.seed if first.seed is None else first.seed, constraint, grid, points,
                      self.encoded[tuple(first.features)], self.y, weights, sides)

    def approvals(self, specs: Sequence[Spec], seed: int, description: str) -> dict[str, np.ndarray]:
        """Each candidate's cross-validated probabilities of approval, shape (n,), on the folds of ``seed``."""
        groups: dict[tuple, list[Spec]] = {}
        for spec in specs:
            groups.setdefault(spec.fit_key, []).append(spec)
        folds = self.folds(seed)
        answers = fold_approvals([self.job(members) for members in groups.values()], folds, self.cache, description)
        approval = {s.name: np.zeros(len(self.y)) for s in specs}
        for members, by_fold in zip(groups.values(), answers):
            for (_, score_rows), fold_answers in zip(folds, by_fold):
                for spec, fold_approval in zip(members, fold_answers):
                    approval[spec.name][score_rows] = fold_approval
        return approval

    def refit(self, spec: Spec) -> Pipeline:
        """The pipeline ``spec`` gives, fitted on every training row."""
        return fit_pipelines(self.job([spec]))[0]

    # --- assessing -------------------------------------------------------------------------------------

    def assess(self, spec: Spec, approval: np.ndarray) -> Assessment:
        cutoff = policy_cutoff(approval, self.policy, self.base_rate)
        decisions = approval >= cutoff
        min_rows = self.gate["min_group_rows"]
        air, rule_air, worst = self.ratios(decisions)
        smd = {a: standardized_mean_difference(approval, groups.tolist(), min_rows) for a, groups in self.groups.items()}
        return Assessment(spec, evaluate(approval, self.y, cutoff), air, smd, rule_air, worst,
                          self.gaps(decisions, air), approval)

    def ratios(self, decisions: np.ndarray) -> tuple[dict[str, Any], dict[str, Any], float | None]:
        """For decisions (bool, shape (n,)): each declared attribute's adverse impact ratio, each
        screened attribute's over its groups judged reliably, and the worst of those."""
        min_rows = self.gate["min_group_rows"]
        air = {a: adverse_impact(decisions, groups.tolist(), min_rows) for a, groups in self.groups.items()}
        rule_air = {}
        for attribute, groups in self.reliable_groups.items():
            figure = adverse_impact(decisions, groups, min_rows)
            rule_air[attribute] = {k: figure[k] for k in ("ratio", "low", "high", "lowest", "highest")}
        ratios = [f["ratio"] for f in rule_air.values() if f["ratio"] is not None]
        return air, rule_air, min(ratios) if ratios else None

    def randomized(self) -> list[dict[str, Any]]:
        """The randomized reference (:mod:`loanxai.fairness.randomized`): for each bound, its
        cross-validated ROC AUC, its metrics and ratios on one seeded draw of its decisions."""
        bounds, iterations = ((QUICK_RANDOMIZED["bounds"], QUICK_RANDOMIZED["iterations"]) if self.quick
                              else (BOUNDS, ITERATIONS))
        family = self.choose_from[0]
        inputs = self.description.feature_names
        cells = pd.concat([pd.Series(self.sides[a]) for a in self.screened], axis=1).agg(" / ".join, axis=1)
        base = replace(self.job([Spec("randomized", inputs, family, next(iter(FAMILIES[family])))]),
                       sides=cells.to_numpy())
        rate = policy_rate(self.policy, self.base_rate)
        jobs = [RandomizedJob(base, bound, iterations, rate) for bound in bounds]
        folds = self.folds(self.seed)
        answers = fold_approvals(jobs, folds, self.cache, "randomized reference", mixture_approval)
        points = []
        for job, by_fold in zip(jobs, answers):
            approval = np.zeros(len(self.y))
            for (_, score_rows), [fold_approval] in zip(folds, by_fold):
                approval[score_rows] = fold_approval
            # one draw per row, as serving the mixture would decide
            decisions = np.random.default_rng(self.seed).random(len(approval)) < approval
            air, rule_air, worst = self.ratios(decisions)
            metrics = evaluate(decisions.astype(float), self.y, 0.5) | {
                "roc_auc": float(roc_auc_score(self.y, approval)), "cutoff": None}
            points.append({"bound": job.bound, "iterations": iterations, "family": family, "metrics": metrics,
                           "air": air, "rule_air": rule_air, "worst_air": worst})
        return points

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
        rivals = [a for a in assessments if choosable(a.spec, self.choose_from) and a.worst_air is not None]
        best_auc = max(a.metrics["roc_auc"] for a in rivals)
        contenders = sorted((a for a in rivals if a.metrics["roc_auc"] >= best_auc - tolerance),
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


def search(dataset: Dataset, seed: int = 0, requested: str = "auto", n_estimators: int | None = None,
           only: Sequence[str] | None = None, quick: bool = False, cache: Path | None = None,
           incumbent: ClassifierManifest | None = None) -> SearchResult:
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
    if not any(choosable(s, run.choose_from) for s in specs):
        raise UnknownCandidate("no candidate of the families the rule may choose from (selection.choose_from: "
                               + ", ".join(run.choose_from) + ") is among those asked for")
    if requested == "auto" and not run.judged_reliably:  # before the search's minutes, not after
        raise DataError(
            f"{dataset.description.name}: the rule cannot choose, as no screened attribute ({', '.join(run.screened)}) "
            f"has two groups the policy would approve {run.reliable_approvals} or more of its {len(run.y)} training "
            f"rows from (selection.reliable_approvals): too few rows to judge any candidate's adverse impact ratio. "
            "Give more rows, lower selection.reliable_approvals in the description, or name the candidate to serve "
            "(--candidate NAME)")
    folds = int(dataset.description.selection["folds"])
    logger.info("searching %d candidates of %s (%d-fold cross-validation)", len(specs), ", ".join(run.families), folds)
    approvals = run.approvals(specs, seed, "search")
    assessments = [run.assess(spec, approvals[spec.name]) for spec in specs]
    for assessed in assessments:
        m = assessed.metrics
        logger.debug("%-60s ROC AUC %.3f, recall %.3f, worst AIR %s", assessed.spec.name, m["roc_auc"], m["recall"],
                     "n/a" if assessed.worst_air is None else f"{assessed.worst_air:.3f}")
    tolerance = float(dataset.description.selection["tolerance"])
    best_auc = max(a.metrics["roc_auc"] for a in assessments if choosable(a.spec, run.choose_from))
    repeated = None
    if requested == "auto":
        chosen, repeated = run.repeated(assessments, tolerance)
    else:
        chosen = next(a for a in assessments if a.spec.name == wanted)
    pipeline = run.refit(chosen.spec)
    randomized = run.randomized() if only is None else None
    data_air = {a: adverse_impact(run.y.astype(bool), run.groups[a].tolist(), run.gate["min_group_rows"])["ratio"]
                for a in run.screened}
    return SearchResult(assessments, chosen, requested, best_auc, tolerance, folds, pipeline,
                        run.schema(chosen.spec.features), float(policy_cutoff(chosen.approval, run.policy, run.base_rate)),
                        time.perf_counter() - started, data_air, run.choose_from, run.families, run.unreliable,
                        run.reliable_approvals, seed, run.trees, run.grid_size, repeated, incumbent_record, randomized)


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
