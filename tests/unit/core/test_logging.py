"""A command's terminal shows our lines, not the libraries' notes to their own developers."""
import os
import subprocess
import sys

# a real fairlearn GridSearch with the coarse grid it warns about, and a library deprecation
PROGRAM = """
import logging, warnings
import numpy as np
from fairlearn.reductions import DemographicParity, GridSearch
from sklearn.linear_model import LogisticRegression
from loanxai.config import Settings
from loanxai.core.cli import configure_logging
configure_logging(Settings())
rng = np.random.default_rng(0)
X, y, group = rng.normal(size=(60, 2)), rng.integers(0, 2, 60), rng.choice(["a", "b", "c"], 60)
GridSearch(LogisticRegression(), DemographicParity(), grid_size=3).fit(X, y, sensitive_features=group)
warnings.warn("a library's deprecation", FutureWarning)
logging.getLogger("loanxai.training").info("our own line")
"""


def run(**env):
    return subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}).stderr


def test_the_libraries_warnings_are_kept_from_the_terminal():
    stderr = run(LOAN_LIBRARY_LOGS="off")
    assert "our own line" in stderr
    assert "grid" not in stderr.lower() and "deprecation" not in stderr, stderr


def test_library_logs_on_lets_them_through():
    stderr = run(LOAN_LIBRARY_LOGS="on")
    assert "our own line" in stderr
    assert "grid" in stderr.lower() and "a library's deprecation" in stderr, stderr
