"""ExponentiatedGradient's randomized classifiers: a reference beside the search, never chosen.

fairlearn's ``ExponentiatedGradient`` (Agarwal et al., 2018) returns a randomized classifier: a
mixture of models, each application decided by one of them drawn at random, under a bound on
the demographic parity difference. A lender does not serve one: the same application could be
approved today and rejected tomorrow, and no principal reason explains a draw. The search shows
what randomization would buy beside its deterministic frontier, so a reviewer sees how much of
the remaining disparity a deterministic model leaves on the table:

- the constraint is demographic parity over the intersection of the screened attributes'
  binary groups (:func:`~loanxai.fairness.candidates.binary_groups`), one run per bound of
  :data:`BOUNDS`, at most :data:`ITERATIONS` iterations (fairlearn's default is 50; measured on
  the census, 2026-12-07: 20 iterations of the design forest take about 8 s a fit);
- each mixed model is the first setting of the family the rule chooses from, deciding at the
  policy's approval rate (:class:`PolicyDecider`): the mixture then approves about that rate,
  as every candidate does;
- cross-validated on the search's folds: each row's probability of approval is the mixture's
  (fairlearn's ``_pmf_predict``); its ROC AUC is of those probabilities (a mixture of yes/no
  models has few distinct scores, which lowers it), and its decisions are one draw per row
  (seeded), as serving it would decide, judged as every candidate's are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from fairlearn.reductions import DemographicParity, ExponentiatedGradient
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from loanxai.core.pipeline import CLASSIFIER_STEP, SAMPLE_WEIGHT, build_pipeline, one_job
from loanxai.fairness.fits import FitJob

__all__ = ["BOUNDS", "ITERATIONS", "QUICK", "PolicyDecider", "RandomizedJob", "mixture_approval"]

#: the demographic parity differences each run is bound by (0.08 is about where the census's
#: deterministic candidates are; 0.01 is near parity)
BOUNDS = (0.01, 0.03, 0.08)
#: ExponentiatedGradient's iterations at most
ITERATIONS = 20
#: a quick search's (tests): one bound, few iterations
QUICK = {"bounds": (0.03,), "iterations": 5}


class PolicyDecider(ClassifierMixin, BaseEstimator):
    """A pipeline that approves the ``rate`` of its training rows it scores highest: the yes/no
    model ExponentiatedGradient mixes, deciding as the lender's policy does.

    Parameters
    ----------
    pipeline : an unfitted pipeline (:func:`loanxai.core.pipeline.build_pipeline`).
    rate : the share approved, in (0, 1).
    """

    def __init__(self, pipeline: Pipeline | None = None, rate: float = 0.5) -> None:
        self.pipeline = pipeline
        self.rate = rate

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> PolicyDecider:
        """Fit the pipeline on ``X``, shape (n, n_features), and ``y``, shape (n,), weighted; set the cutoff."""
        self.pipeline_ = clone(self.pipeline).fit(X, y, **{SAMPLE_WEIGHT: sample_weight})
        self.cutoff_ = float(np.quantile(self.pipeline_.predict_proba(X)[:, 1], 1 - self.rate))
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """1 (approved) where the probability of approval is at least the cutoff, shape (n,)."""
        return (self.pipeline_.predict_proba(X)[:, 1] >= self.cutoff_).astype(int)


@dataclass(frozen=True)
class RandomizedJob:
    """One ExponentiatedGradient run: the mixed models' ``base`` job (its pipeline, data and
    ``sides``: each row's intersection group), the demographic parity ``bound``, the
    ``iterations`` at most and the policy's approval ``rate``."""

    base: FitJob
    bound: float
    iterations: int
    rate: float


def mixture_approval(job: RandomizedJob, fit_rows: np.ndarray, score_rows: np.ndarray, code: str) -> list[np.ndarray]:
    """The run fitted on ``fit_rows`` and its mixture's probability of approving each of
    ``score_rows``, shape (len(score_rows),), as a one-item list (the shape
    :func:`~loanxai.fairness.fits.fold_approvals` keeps; ``code`` keys the kept answers)."""
    base = job.base
    pipeline = build_pipeline(base.schema, base.seed, base.family, **base.settings)
    # a forest in one thread: threads sum the trees' probabilities in the order they finish, and
    # the last bits of the scores would move the decider's cutoff from run to run
    one_job(pipeline.named_steps[CLASSIFIER_STEP])
    with threadpool_limits(1):
        decider = PolicyDecider(pipeline, job.rate)
        reduction = ExponentiatedGradient(decider, DemographicParity(difference_bound=job.bound),
                                          max_iter=job.iterations)
        reduction.fit(base.X[fit_rows], base.y[fit_rows], sensitive_features=base.sides[fit_rows])
        return [reduction._pmf_predict(base.X[score_rows])[:, 1]]
