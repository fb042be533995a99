"""The module ``seldon-core-microservice LoanClassifier`` imports (and the s2i builder's
``MODEL_NAME``): the classifier of :mod:`loanxai.serving.classifier`, reading its artifacts
from the ``artifacts/`` folder beside this file unless ``LOAN_ARTIFACTS_DIR`` says otherwise."""
from pathlib import Path

from loanxai.serving import classifier


class LoanClassifier(classifier.LoanClassifier):
    """The classifier, its artifacts in the ``artifacts/`` folder beside this module."""

    default_artifacts = Path(__file__).resolve().parent / "artifacts"
