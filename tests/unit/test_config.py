import pytest

from loanxai.config import ServiceSettings


def test_defaults(monkeypatch):
    for name in ("LOAN_ARTIFACTS_DIR", "LOAN_MAX_BATCH_ROWS", "LOAN_CLASSIFIER_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = ServiceSettings.from_env()
    assert settings.max_batch_rows == 1000
    assert settings.classifier_url == "http://127.0.0.1:9000/api/v1.0/predictions"
    assert settings.artifacts_dir is None


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("LOAN_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.setenv("LOAN_MAX_BATCH_ROWS", "5")
    monkeypatch.setenv("LOAN_CLASSIFIER_RETRIES", "0")
    settings = ServiceSettings.from_env()
    assert (settings.artifacts_dir, settings.max_batch_rows, settings.classifier_retries) == (tmp_path, 5, 0)


@pytest.mark.parametrize("name, value", [("LOAN_MAX_BATCH_ROWS", "many"), ("LOAN_MAX_BATCH_ROWS", "0"),
                                          ("LOAN_CLASSIFIER_RETRIES", "1.5"), ("LOAN_EXPLAIN_THRESHOLD", "2")])
def test_bad_values_are_refused_with_the_variable_name(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        ServiceSettings.from_env()
