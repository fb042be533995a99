"""The reliability suite's figures, written once every test of the session has run (a module's teardown
would miss the modules after it)."""
import pytest

from tests.reliability.test_reliability import write_report


@pytest.fixture(scope="session", autouse=True)
def report():
    yield
    write_report()
