"""Token checks with real keys: roles, refusals, key files."""
import json
import time

import jwt
import pytest

from loanxai.errors import Forbidden, SettingError, Unauthenticated
from loanxai.ops.tokens import JWKS_FILE, SIGNING_KEY_FILE, mint
from loanxai.serving.auth import TokenVerifier

ISSUER, AUDIENCE = "https://idp.example", "loanxai"
EXPLAINER_ROLES = frozenset({"explain", "audit"})


@pytest.fixture(scope="module")
def verifier(keys):
    return TokenVerifier(keys / JWKS_FILE, ISSUER, AUDIENCE, "roles")


def bearer(keys, roles, subject="officer-7", **claims):
    return "Bearer " + mint(keys / SIGNING_KEY_FILE, subject, roles, claims.get("issuer", ISSUER),
                            claims.get("audience", AUDIENCE), claims.get("minutes", 5))


def test_a_caller_is_its_subject_in_the_first_role_the_endpoint_takes(keys, verifier):
    caller = verifier.caller(bearer(keys, ["decide", "audit"]), EXPLAINER_ROLES, "/api/v1.0/predictions")
    assert (caller.subject, caller.role) == ("officer-7", "audit")
    assert caller.to_dict() == {"subject": "officer-7", "role": "audit"}


def test_a_role_the_endpoint_does_not_take_is_403_naming_both(keys, verifier):
    with pytest.raises(Forbidden) as refused:
        verifier.caller(bearer(keys, ["decide"]), EXPLAINER_ROLES, "/api/v1.0/predictions")
    assert refused.value.status_code == 403
    assert refused.value.message == ("/api/v1.0/predictions takes the role audit or explain; the token of 'officer-7' "
                                     "has 'decide' (claim roles)")


@pytest.mark.parametrize("header, words, invalid_token", [
    (None, "needs a bearer token", False),
    ("Basic dXNlcjpwYXNz", "needs a bearer token", True),
    ("Bearer ", "needs a bearer token", True),
    ("Bearer not-a-jwt", "not a JWT", True),
])
def test_no_token_is_401_with_the_challenge(verifier, header, words, invalid_token):
    with pytest.raises(Unauthenticated) as refused:
        verifier.caller(header, EXPLAINER_ROLES, "/p")
    assert words in refused.value.message
    assert refused.value.headers["WWW-Authenticate"].startswith('Bearer realm="loanxai"')
    assert ('error="invalid_token"' in refused.value.headers["WWW-Authenticate"]) is invalid_token


def test_a_token_without_sub_or_with_roles_of_another_type_is_refused(keys, verifier):
    key = (keys / SIGNING_KEY_FILE).read_bytes()
    kid = json.loads((keys / JWKS_FILE).read_text())["keys"][0]["kid"]
    base = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600}
    for claims, words in (({"roles": ["audit"]}, "no sub claim"),
                          ({"sub": "x", "roles": {"audit": True}}, "must be a string or a list of strings"),
                          ({"sub": "x" * 300, "roles": ["audit"]}, "sub must be a string of 1 to 256"),
                          ({"sub": "a\x00b", "roles": ["audit"]}, "sub holds the character U\\+0000"),
                          ({"sub": "x", "roles": ["audit"], "exp": 2**40}, "longer than the 86400 s accepted")):
        token = jwt.encode(base | claims, key, algorithm="RS256", headers={"kid": kid})
        with pytest.raises(Unauthenticated, match=words):
            verifier.caller(f"Bearer {token}", EXPLAINER_ROLES, "/p")
    one_role = jwt.encode(base | {"sub": "x", "roles": "audit"}, key, algorithm="RS256", headers={"kid": kid})
    assert verifier.caller(f"Bearer {one_role}", EXPLAINER_ROLES, "/p").role == "audit"


def test_a_pem_public_key_serves_as_well(keys, tmp_path):
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key((keys / SIGNING_KEY_FILE).read_bytes(), None)
    pem = tmp_path / "public.pem"
    pem.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    verifier = TokenVerifier(pem, ISSUER, AUDIENCE, "roles")
    assert verifier.caller(bearer(keys, ["explain"]), EXPLAINER_ROLES, "/p").role == "explain"


@pytest.mark.parametrize("content, words", [
    (None, "cannot read"),
    ("not a key", "neither a JWKS nor a PEM public key"),
    ('{"keys": []}', "neither a JWKS nor a PEM public key"),
])
def test_a_key_file_that_holds_no_key_stops_the_start_naming_it(tmp_path, content, words):
    path = tmp_path / "keys.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SettingError, match=words) as refused:
        TokenVerifier(path, ISSUER, AUDIENCE, "roles")
    assert "LOAN_AUTH_KEYS" in refused.value.message and str(path) in refused.value.message
