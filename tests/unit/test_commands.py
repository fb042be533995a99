"""Every documented command answers --help under the name the docs give it."""
import subprocess
import sys
from pathlib import Path

import pytest

from loanxai.artifacts import REPO_ROOT

COMMANDS = ["train", "report", "score", "gate", "rules", "dashboard", "client", "images", "replay", "microservice", "records",
            "figures", "compare", "promote", "tokens", "cluster"]


@pytest.mark.parametrize("command", COMMANDS)
def test_python_m_loanxai_command_help(command):
    result = subprocess.run([sys.executable, "-m", f"loanxai.{command}", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage: ")


def test_the_local_runner_and_the_server_command_help():
    for command in ([sys.executable, str(REPO_ROOT / "scripts" / "run_local.py"), "--help"],
                    [str(Path(sys.executable).with_name("loanxai-microservice")), "--help"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "(default: 9000)" in result.stdout, result.stderr[-2000:]
