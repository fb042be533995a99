"""The module ``seldon-core-microservice LoanExplainer`` imports (and the s2i builder's
``MODEL_NAME``): the explainer of :mod:`loanxai.serving.explainer`, reading its artifacts from
the ``artifacts/`` folder beside this file unless ``LOAN_ARTIFACTS_DIR`` says otherwise."""
from pathlib import Path

from loanxai.serving import explainer


class LoanExplainer(explainer.LoanExplainer):
    """The explainer, its artifacts in the ``artifacts/`` folder beside this module."""

    default_artifacts = Path(__file__).resolve().parent / "artifacts"
