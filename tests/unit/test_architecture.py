"""The stages depend on each other one way (import-linter's contracts in .importlinter)."""
import shutil
import subprocess
import sys
from pathlib import Path

from loanxai.artifacts import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(root):
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / ".importlinter"), "--no-cache"], cwd=root,
                          capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_contracts_are_kept():
    result = lint(REPO_ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_serving_importing_training_breaks_them(tmp_path):
    shutil.copytree(REPO_ROOT / "loanxai", tmp_path / "loanxai", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / ".importlinter", tmp_path)
    with open(tmp_path / "loanxai" / "serving" / "common.py", "a") as handle:
        handle.write("\nfrom loanxai.training import train  # noqa: E402\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "Serving never imports training" in result.stdout and "BROKEN" in result.stdout
    assert "loanxai.serving.common -> loanxai.training.train" in result.stdout
