"""The one command line: every command answers under the name the docs give it, exits as documented,
and the list of commands is the same wherever it appears (it is declared once, in loanxai.core.cli)."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from loanxai.artifacts import REPO_ROOT
from loanxai.core.cli import COMMANDS

NAMES = [command.name for command in COMMANDS]
PACKAGE = REPO_ROOT / "loanxai"
BIN = Path(sys.executable).parent
#: how a command is called: `-m loanxai X`, `"-m", "loanxai", "X"`, `loanxai X` in code, `$ loanxai X`, `bin/loanxai X`
INVOCATION = r'(?:-m loanxai |"loanxai", "|`loanxai |\$ loanxai |/bin/loanxai )([a-z][\w-]*)'


def loanxai(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loanxai", *arguments], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", NAMES)
def test_every_command_answers_help_under_its_name(name):
    result = loanxai(name, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: loanxai {name} ")


def test_the_console_scripts_are_the_one_command_line():
    overview = subprocess.run([str(BIN / "loanxai"), "--help"], capture_output=True, text=True, timeout=120)
    assert overview.returncode == 0 and all(f"\n  {name} " in overview.stdout for name in NAMES), overview.stdout
    # the images' command, in place of seldon-core-microservice: `loanxai serve` under that name
    served = subprocess.run([str(BIN / "loanxai-microservice"), "--help"], capture_output=True, text=True, timeout=120)
    assert served.returncode == 0 and served.stdout.startswith("usage: loanxai serve ")
    assert "(default: PREDICTIVE_UNIT_HTTP_SERVICE_PORT, else 9000)" in " ".join(served.stdout.split())


def test_the_exit_statuses_are_as_documented(tmp_path):
    bare = loanxai()
    assert bare.returncode == 2 and "commands:" in bare.stderr
    misspelt = loanxai("trian")
    assert misspelt.returncode == 2 and "no command 'trian'; the commands: train, " in misspelt.stderr
    usage = loanxai("gate", "--no-such-option")
    assert usage.returncode == 2 and "usage: loanxai gate" in usage.stderr
    # our errors: the command's name and the message, no traceback
    refused = loanxai("gate", "--artifacts", str(tmp_path / "none"))
    assert refused.returncode == 1 and f"loanxai gate: no manifest.json in {tmp_path / 'none'}" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    # an OSError (a file the user named): its own words
    missing = loanxai("score", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "out.csv"),
                      "--classifier-url", "http://127.0.0.1:9")
    assert missing.returncode == 1 and "loanxai score: " in missing.stderr and "Traceback" not in missing.stderr


def _top_level_functions(path: Path) -> set[str]:
    return {node.name for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)}


def test_no_command_lives_outside_the_one_command_line():
    # the package root holds the shared modules and `python -m loanxai`, nothing a command runs
    assert {p.name for p in PACKAGE.glob("*.py")} == {"__init__.py", "__main__.py", "artifacts.py", "config.py", "errors.py"}
    assert [p for p in PACKAGE.rglob("__main__.py") if p.parent != PACKAGE] == []
    commands = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        assert 'if __name__ == "__main__"' not in text, module
        assert "def main(" not in text or module == "loanxai.core.cli", module  # the one entry point
        assert "basicConfig(" not in text or module == "loanxai.core.cli", module  # logging configured once
        if {"parser", "run"} <= _top_level_functions(path):
            commands.add(module)
    assert commands == {command.module for command in COMMANDS}


def test_every_place_that_names_a_command_names_one_of_the_commands():
    # the reference page: generated from COMMANDS, a section each
    page = (REPO_ROOT / "docs" / "reference" / "commands.md").read_text()
    assert re.findall(r"^### `loanxai (\w+)`", page, re.M) == NAMES
    # the Makefile, the scripts, the docs, the manifests and the images: `loanxai <command>` with a command that
    # exists, and no `python -m loanxai.<command>` left
    places = [REPO_ROOT / "Makefile", REPO_ROOT / "README.md", *(REPO_ROOT / "scripts").glob("*"),
              *(REPO_ROOT / "docs").rglob("*.md"), *(REPO_ROOT / "deploy").rglob("*.yaml"),
              *(REPO_ROOT / "models").rglob("Dockerfile")]
    named = set()
    for path in places:
        text = path.read_text()
        assert not re.search(r"-m,? loanxai\.[a-z]", text), path
        named |= {(path.name, word) for word in re.findall(INVOCATION, text, re.M)}
    assert {(place, word) for place, word in named if word not in NAMES} == set()
    assert {word for _, word in named} >= {"train", "report", "records", "run", "gate", "images", "tokens", "serve"}
