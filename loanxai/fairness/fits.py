"""The search's fits: each job fitted on its folds, on every core, its answers kept on disk.

A job (:class:`FitJob`) is one candidate's pipeline, or one fairlearn GridSearch's (the
candidates of its grid points), with the training data it fits on. :func:`fold_approvals` fits
every job on every fold and predicts the fold's held-out rows, as the classifier would serve
them (:func:`served_approval`):

- in parallel: joblib, a process per core, one thread each (the trees and fairlearn then do
  the same arithmetic in every process, so the answers do not depend on the machine's cores);
- shown: a progress bar on a terminal, a log line every tenth of the way otherwise;
- kept: joblib's ``Memory`` keeps each answer, keyed by the job and its fold, the sources of
  the code that fits (:mod:`loanxai.core`, this module, :mod:`~loanxai.fairness.candidates`,
  and the answering function's module, such as :mod:`~loanxai.fairness.randomized`) and the
  versions of :data:`KEYED_PACKAGES`: an interrupted search resumes where it stopped, a
  repeated one costs no fit, and a changed line of that code or a new library version fits
  again; past :data:`CACHE_LIMIT`, the answers used least recently go.
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.reductions import GridSearch
from joblib import Memory, Parallel, delayed
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from loanxai.core.elderly import served_rows
from loanxai.core.pipeline import CLASSIFIER_STEP, PREPROCESSOR_STEP, SAMPLE_WEIGHT, build_pipeline, one_job
from loanxai.core.schema import FeatureSchema
from loanxai.fairness.candidates import CONSTRAINTS

__all__ = ["CACHE_LIMIT", "KEYED_PACKAGES", "FitJob", "fit_pipelines", "fold_approvals", "served_approval"]

logger = logging.getLogger(__name__)

#: the libraries whose versions key the kept answers
KEYED_PACKAGES = ("scikit-learn", "fairlearn", "numpy", "pandas")
#: the kept answers' size past which the least recently used go (a census search keeps 65 MB;
#: every change of the code that fits starts a new set)
CACHE_LIMIT = "1G"


@dataclass(frozen=True)
class FitJob:
    """The fits of the candidates sharing one ``fit_key``: the pipeline (``family`` with
    ``settings`` and ``seed``), and for a GridSearch its ``constraint``, its Lagrange multipliers
    (``grid``, a column per point) and the ``points`` its candidates are; the data: encoded rows
    ``X``, shape (n, features), labels ``y``, sample ``weights`` and the constraint's ``sides``,
    each shape (n,) or None."""

    schema: FeatureSchema
    family: str
    settings: dict[str, Any]
    seed: int
    constraint: str | None
    grid: pd.DataFrame | None
    points: tuple[int, ...]
    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None
    sides: np.ndarray | None


def served_approval(pipeline: Pipeline, X: np.ndarray, schema: FeatureSchema) -> np.ndarray:
    """The probabilities of approval the classifier would serve for encoded rows ``X``, shape (n,):
    the pipeline's, with the elderly rule (:func:`loanxai.core.elderly.served_rows`)."""
    asked = served_rows(X, schema, pipeline.named_steps[PREPROCESSOR_STEP], pipeline.named_steps[CLASSIFIER_STEP])
    return pipeline.predict_proba(asked)[:, 1]


def fit_pipelines(job: FitJob, rows: np.ndarray | None = None) -> list[Pipeline]:
    """The job's pipelines fitted on its ``rows`` (indices; None: every row), in one thread: one,
    or one per grid point of ``job.points``. A forest then predicts in one thread too: threads
    add the trees' probabilities in the order they finish, and the last bits of a sum would
    differ from run to run."""
    every = slice(None) if rows is None else rows
    X, y = job.X[every], job.y[every]
    with threadpool_limits(1):
        pipeline = build_pipeline(job.schema, job.seed, job.family, **job.settings)
        if job.constraint is None:
            pipeline.fit(X, y, **{SAMPLE_WEIGHT: None if job.weights is None else job.weights[every]})
            fitted = [pipeline]
        else:
            grid = job.grid.iloc[:, list(job.points)]
            reduction = GridSearch(pipeline, CONSTRAINTS[job.constraint](), grid=grid, sample_weight_name=SAMPLE_WEIGHT)
            reduction.fit(X, y, sensitive_features=job.sides[every])
            fitted = list(reduction.predictors_)
    for one in fitted:
        one_job(one.named_steps[CLASSIFIER_STEP])
    return fitted


def _fold_answers(job: FitJob, fit_rows: np.ndarray, score_rows: np.ndarray, code: str) -> list[np.ndarray]:
    """One job on one fold: each of its candidates' served probabilities for ``score_rows``, shape
    (len(score_rows),) each (``code``, unused here, keys the kept answers: :func:`_code_key`)."""
    with threadpool_limits(1):
        return [served_approval(pipeline, job.X[score_rows], job.schema) for pipeline in fit_pipelines(job, fit_rows)]


def _code_key(fold_answers: Callable[..., list[np.ndarray]]) -> str:
    """What the kept answers of ``fold_answers`` depend on beyond their arguments: the sources of
    the code that fits and predicts (its own module's among them), and the libraries' versions.
    The rule, the assessment, the gate and the report are not kept, and may change freely."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve()
    answering = Path(inspect.getfile(fold_answers)).resolve()
    for path in sorted({*(here.parents[1] / "core").glob("*.py"), here, here.with_name("candidates.py"), answering}):
        digest.update(path.read_bytes())
    for package in KEYED_PACKAGES:
        digest.update(f"{package}={metadata.version(package)}".encode())
    return digest.hexdigest()


def fold_approvals(jobs: Sequence[Any], folds: Sequence[tuple[np.ndarray, np.ndarray]], cache: Path | None,
                   description: str, fold_answers: Callable[..., list[np.ndarray]] = _fold_answers,
                   ) -> list[list[list[np.ndarray]]]:
    """Every job fitted on each fold's fit rows (``folds``: (fit rows, score rows) indices) and
    its candidates' served probabilities for the fold's score rows: ``[job][fold][candidate]``.
    ``cache``: the folder the answers are kept in (None: nothing kept); ``description`` names the
    progress shown; ``fold_answers(job, fit_rows, score_rows, code)``: one job's answers on one
    fold (default: a :class:`FitJob`'s pipelines')."""
    memory = Memory(None if cache is None else str(cache), verbose=0)
    answer = memory.cache(fold_answers)
    code = _code_key(fold_answers)
    tasks = [delayed(answer)(job, fit_rows, score_rows, code) for job in jobs for fit_rows, score_rows in folds]
    answers: list[list[np.ndarray]] = []
    runner = Parallel(n_jobs=os.cpu_count() or 1, return_as="generator")
    with tqdm(total=len(tasks), desc=description, unit="job", disable=None, leave=False) as bar:
        for done, fold_answers in enumerate(runner(tasks), 1):
            answers.append(fold_answers)
            bar.update()
            if bar.disable and done * 10 // len(tasks) > (done - 1) * 10 // len(tasks):
                logger.info("%s: %d of %d jobs", description, done, len(tasks))
    if cache is not None:
        memory.reduce_size(bytes_limit=CACHE_LIMIT)
    return [answers[i * len(folds):(i + 1) * len(folds)] for i in range(len(jobs))]
