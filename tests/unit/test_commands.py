"""Every documented command answers --help under the name the docs give it."""
import subprocess
import sys
from pathlib import Path

import pytest

from loanxai.artifacts import REPO_ROOT

COMMANDS = ["train", "report", "score", "gate", "rules", "dashboard", "client", "images", "replay", "microservice", "records",
            "figures", "compare", "promote", "tokens", "cluster", "console"]


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


def command_modules() -> set[str]:
    """What ``python -m loanxai.<name>`` runs, read from the package itself: the thin modules at its
    root and the sub-packages with a ``__main__``."""
    package = REPO_ROOT / "loanxai"
    shared = {"__init__", "artifacts", "config", "errors"}
    return ({p.stem for p in package.glob("*.py")} - shared) | {p.parent.name for p in package.glob("*/__main__.py")}


def test_every_place_that_lists_the_commands_lists_the_same_ones():
    import configparser

    import loanxai
    from loanxai.ops import reference

    commands = command_modules()
    assert set(COMMANDS) == commands
    contracts = configparser.ConfigParser()
    contracts.read(REPO_ROOT / ".importlinter")
    top_layer = contracts["importlinter:contract:layers"]["layers"].strip().splitlines()[0]
    roots = {p.stem for p in (REPO_ROOT / "loanxai").glob("*.py")} & commands
    assert {name.strip().removeprefix("loanxai.") for name in top_layer.split("|")} == roots
    docstring = " ".join(loanxai.__doc__.split())
    assert all(f"``.{name}``" in docstring or f"``python -m loanxai.{name}``" in docstring for name in commands), docstring
    referenced = {command.removeprefix("python -m loanxai.") for command, _ in reference._commands()}
    assert commands - {"microservice"} <= referenced and "loanxai-microservice" in referenced  # its console script
