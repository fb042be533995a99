"""What accesscheck holds the mesh's policy for the reviewer console to (``CONSOLE_REQUESTS``: who
the console takes each request from), asked of the real console (LOAN_AUTH=on): every request of
the table, with a token of each role and with none, is taken exactly when the table says."""
import re

import pytest

from loanxai.console.session import CSRF_FIELD
from loanxai.core.roles import ROLES
from loanxai.ops.accesscheck import CONSOLE_REQUESTS
from loanxai.ops.services import console_service, free_port
from tests.conftest import running
from tests.integration.test_auth import auth_env, call, token

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def console(artifacts, keys, tmp_path_factory):
    logs = tmp_path_factory.mktemp("mesh-roles")
    url = f"sqlite:///{logs}/decisions.sqlite"
    service = console_service(free_port(), {**auth_env(keys), "LOAN_RECORDS_URL": url,
                                            "LOAN_REVIEW_ARTIFACTS": str(artifacts.classifier_dir)})
    service.start(logs / "console.log")
    with running(service):
        yield service


def ask(console, keys, method, path, bearer):
    """The request as a browser or the lender's system sends it: a form with the session's CSRF token, the
    login form with a valid token, an API call with an empty JSON object."""
    if path.startswith("/api/"):
        return call(method, console.url + path, bearer, json={}, allow_redirects=False)
    if path == "/login":
        return call(method, console.url + path, bearer, data={"token": token(keys, "review")}, allow_redirects=False)
    fields = {}
    if method == "POST" and bearer:
        page = call("GET", console.url + "/", bearer)
        fields = dict(re.findall(rf'name="({CSRF_FIELD})" value="([0-9a-f]+)"', page.text))
    return call(method, console.url + path, bearer, data=fields, allow_redirects=False)


def taken(answer):
    """Whether the console took the request past who may: not 401, 403 or 405, nor sent to the login page
    without a session (signing out also ends there, deleting the cookie)."""
    to_login = answer.is_redirect and answer.headers["Location"].endswith("/login") and "Set-Cookie" not in answer.headers
    return answer.status_code not in (401, 403, 405) and not to_login


@pytest.mark.parametrize("method, path", list(CONSOLE_REQUESTS))
def test_the_console_takes_each_request_from_the_roles_the_mesh_lets_through(console, keys, method, path):
    roles = CONSOLE_REQUESTS[(method, path)]
    for role in (*ROLES, None):
        answer = ask(console, keys, method, path, token(keys, role, subject=f"{role}-1") if role else None)
        assert taken(answer) == (roles is None or role in roles), (role, answer.status_code, answer.text[:300])
