"""Settings: each declared once, read from the environment by one rule per type, checked at construction."""
import re
from dataclasses import fields

import pytest

from loanxai.artifacts import REPO_ROOT
from loanxai.config import SCRIPT_SETTINGS, ServerSettings, ServiceSettings, ToolSettings
from loanxai.errors import SettingError

CLASSES = (ServiceSettings, ServerSettings, ToolSettings)


def test_defaults_with_nothing_set():
    settings = ServiceSettings.from_env({})
    assert settings.max_batch_rows == 1000
    assert settings.classifier_url == "http://127.0.0.1:9000/api/v1.0/predictions"
    assert settings.artifacts_dir is None and settings.metrics is True
    assert ServerSettings.from_env({}).cors_origins == ()


def test_the_environment_overrides_and_each_type_is_read_by_its_rule(tmp_path):
    settings = ServiceSettings.from_env({"LOAN_ARTIFACTS_DIR": str(tmp_path), "LOAN_MAX_BATCH_ROWS": "5",
                                         "LOAN_CLASSIFIER_RETRIES": "0", "LOAN_METRICS": "off",
                                         "LOAN_EXPLAIN_BUDGET": " 2.5 ", "LOAN_PREDICTION_PATH": ""})
    assert (settings.artifacts_dir, settings.max_batch_rows, settings.classifier_retries) == (tmp_path, 5, 0)
    assert settings.metrics is False and settings.explain_budget == 2.5
    assert settings.prediction_path == "auto"  # empty: the default
    server = ServerSettings.from_env({"LOAN_CORS_ORIGINS": "https://a.example, https://b.example,",
                                      "SELDON_LOG_LEVEL": "debug"})
    assert server.cors_origins == ("https://a.example", "https://b.example") and server.log_level == "DEBUG"
    assert ToolSettings.from_env({"LOAN_SCORE_PROGRESS": "on"}).score_progress is True


@pytest.mark.parametrize("name, value, words", [
    ("LOAN_MAX_BATCH_ROWS", "many", "is not a number"),
    ("LOAN_MAX_BATCH_ROWS", "0", "at least 1"),
    ("LOAN_CLASSIFIER_RETRIES", "1.5", "is not an integer"),
    ("LOAN_EXPLAIN_THRESHOLD", "2", r"a number in \(0, 1\]"),
    ("LOAN_METRICS", "maybe", "is not on or off"),
    ("LOAN_PREDICTION_PATH", "fast", "is not one of: auto, scikit-learn"),
])
def test_bad_values_are_refused_with_the_variable_name(name, value, words):
    with pytest.raises(SettingError, match=f"{name}={value!r}.*{words}|{name}=.*{words}"):
        ServiceSettings.from_env({name: value})


def test_values_passed_in_code_are_checked_too():
    with pytest.raises(SettingError, match="GUNICORN_THREADS=1: at least 2"):
        ServerSettings(threads=1)


def test_every_setting_has_one_variable_and_a_meaning():
    variables = [f.metadata["setting"].env for cls in CLASSES for f in fields(cls)]
    variables += [s.env for s in SCRIPT_SETTINGS]
    assert len(variables) == len(set(variables)), "a variable is declared twice"
    assert all(f.metadata["setting"].meaning for cls in CLASSES for f in fields(cls))


def test_every_variable_the_code_reads_is_declared():
    """No module reads the environment behind the declarations' back (the wrapper's own
    variables excepted, which it reads itself)."""
    declared = {f.metadata["setting"].env for cls in CLASSES for f in fields(cls)}
    for path in (REPO_ROOT / "loanxai").rglob("*.py"):
        if path.name == "config.py":
            continue
        read = set(re.findall(r"environ(?:\.get)?\(?\[?[\"']((?:LOAN|GUNICORN|GRPC|SELDON)_[A-Z_]+)", path.read_text()))
        assert read <= declared, f"{path} reads {read - declared} without a declaration in loanxai/config.py"


def shell_defaults(text, name):
    """Each default of ``${name:-default}`` in a shell script (braces inside the default matched)."""
    found = []
    for start in (m.end() for m in re.finditer(r"\$\{" + name + ":-", text)):
        depth, end = 1, start
        while depth:
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        found.append(text[start:end - 1])
    return found


@pytest.mark.parametrize("declared", SCRIPT_SETTINGS, ids=lambda s: s.env)
def test_each_script_reads_its_variable_with_the_declared_default(declared):
    for script in declared.scripts:
        text = (REPO_ROOT / "scripts" / script).read_text()
        defaults = shell_defaults(text, declared.env)
        assert defaults, f"scripts/{script} does not read {declared.env}"
        for default in defaults:
            shown = re.sub(r"^(\$root/|\$\(.*\)/|<repo>/)", "", default)  # a path in the checkout, shown relative
            assert shown in declared.default or (declared.env == "DEBIAN_MIRROR" and "debian_mirror" in default), \
                f"scripts/{script}: {declared.env} defaults to {default!r}, declared {declared.default!r}"
