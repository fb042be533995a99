"""Who is calling, with ``LOAN_AUTH=on``: bearer tokens (JWTs) checked with PyJWT, and their roles.

A token is accepted when it is signed by one of the keys of ``LOAN_AUTH_KEYS`` (a PEM public
key, or a JWKS file as an identity provider publishes it) with an asymmetric algorithm of
:data:`ALGORITHMS` (never ``none``, never a shared secret), and carries ``iss``
(``LOAN_AUTH_ISSUER``), ``aud`` (``LOAN_AUTH_AUDIENCE``), ``sub`` and an unexpired ``exp``. Its
roles are the claim ``LOAN_AUTH_ROLES_CLAIM`` (a list of strings, or one string), read among
:data:`loanxai.core.roles.ROLES`:

- ``decide``: the lender's systems deciding applications: the classifier's predictions and
  feedback (the explainer calls the classifier with a ``decide`` token of its own);
- ``explain``: credit officers; ``audit``: auditors and examiners: the explainer's anchors and
  recourse, within a budget per caller (:mod:`loanxai.serving.budget`).

A token valid for longer than ``LOAN_AUTH_MAX_LIFETIME`` is refused, whatever signed it; every
way a token can fail is a 401 naming why, never a 500.

Health endpoints stay open for probes. The same roles are what Istio's ``AuthorizationPolicy``
objects in ``deploy/base/auth.yaml`` let through at the mesh. The caller of the request being
answered is :data:`current_caller` (set by the server's guard, read by the serving class).

Sampling is not deciding: the rows an explainer makes up (``meta.tags.purpose: explanation``)
are answered unrecorded, so only the explainer may ask for them, whatever ``LOAN_AUTH`` says: its
requests carry the sampling key (``LOAN_SAMPLING_KEY_FILE``, header :data:`SAMPLING_HEADER`), a
secret it shares with the classifier and no caller holds. :data:`may_sample` says whether the
request being answered carries it.
"""
from __future__ import annotations

import hmac
import json
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from loanxai.config import ServiceSettings
from loanxai.core.roles import ROLES
from loanxai.core.text import check_text
from loanxai.errors import Forbidden, InputError, SettingError, Unauthenticated

__all__ = ["ALGORITHMS", "LEEWAY_S", "MAX_SUBJECT_CHARACTERS", "SAMPLING_HEADER", "Caller", "SecretFile",
           "TokenVerifier", "current_caller", "may_sample", "verifier_of"]

logger = logging.getLogger(__name__)

#: the signature algorithms accepted: asymmetric only (a service holds no key that can sign), by
#: the type of key each verifies with
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")
_KEY_TYPES = {"RS": RSAPublicKey, "PS": RSAPublicKey, "ES": EllipticCurvePublicKey}
#: the header an explainer's requests for sampled rows carry the sampling key in
SAMPLING_HEADER = "X-Loan-Sampling-Key"
#: seconds of clock difference allowed on ``exp``, ``nbf`` and ``iat``
LEEWAY_S = 30
#: longest ``sub`` accepted (it goes on the record and into budgets)
MAX_SUBJECT_CHARACTERS = 256


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its token's ``sub`` and the role it calls this endpoint in."""

    subject: str
    role: str

    def to_dict(self) -> dict[str, str]:
        """As it goes on the record."""
        return {"subject": self.subject, "role": self.role}


#: the caller of the request this thread answers (None with LOAN_AUTH=off, or on a health endpoint)
current_caller: ContextVar[Caller | None] = ContextVar("current_caller", default=None)
#: whether the request this thread answers carries the sampling key (never over gRPC)
may_sample: ContextVar[bool] = ContextVar("may_sample", default=False)


class SecretFile:
    """A secret kept in a file (a token, the sampling key), read again whenever the file changes:
    secrets are rotated without a restart. ``setting`` names the variable in messages."""

    def __init__(self, path: Path, setting: str) -> None:
        self.path, self.setting = path, setting
        self._read: tuple[float, str] | None = None

    def value(self) -> str:
        """The secret; :class:`~loanxai.errors.SettingError` naming the setting when it cannot be read or is empty."""
        try:
            changed = self.path.stat().st_mtime
            if self._read is None or self._read[0] != changed:
                self._read = (changed, self.path.read_text().strip())
        except OSError as error:
            raise SettingError(f"{self.setting}: cannot read {self.path}: {error.strerror}") from None
        if not self._read[1]:
            raise SettingError(f"{self.setting}: {self.path} is empty")
        return self._read[1]

    def matches(self, offered: str | None) -> bool:
        """Whether ``offered`` is the secret (compared in constant time); never, while the file cannot be read."""
        try:
            secret = self.value()
        except SettingError as error:
            logger.error("%s", error.message)
            return False
        return offered is not None and hmac.compare_digest(offered.encode(), secret.encode())


class TokenVerifier:
    """Checks bearer tokens against the keys of ``keys_file``; see the module's docstring."""

    def __init__(self, keys_file: Path, issuer: str, audience: str, roles_claim: str,
                 max_lifetime: float = 86400.0) -> None:
        self.issuer, self.audience, self.roles_claim, self.max_lifetime = issuer, audience, roles_claim, max_lifetime
        self.keys = _read_keys(keys_file)

    def caller(self, authorization: str | None, allowed: frozenset[str], endpoint: str) -> Caller:
        """The caller of a request with the ``Authorization`` header ``authorization``, in the
        first of its roles that ``allowed`` holds; 401 without a valid token, 403 without such a role."""
        token = _bearer(authorization, endpoint)
        claims = self._claims(token)
        subject = claims["sub"]
        try:  # who asked goes on the record: a line of text
            check_text(subject, "the token's sub", MAX_SUBJECT_CHARACTERS)
        except InputError as error:
            raise Unauthenticated(error.message, True) from None
        roles = claims.get(self.roles_claim, [])
        roles = [roles] if isinstance(roles, str) else roles
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthenticated(f"the token's {self.roles_claim} claim must be a string or a list of strings", True)
        granted = [role for role in roles if role in allowed]
        if not granted:
            held = ", ".join(repr(r[:32]) for r in roles[:len(ROLES) + 1]) or "none"
            raise Forbidden(f"{endpoint} takes the role {' or '.join(sorted(allowed))}; the token of "
                            f"{subject[:64]!r} has {held} (claim {self.roles_claim})")
        return Caller(subject, granted[0])

    def _claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"the bearer token is not a JWT ({str(error)[:80]})", True) from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise Unauthenticated(f"the token's algorithm {str(algorithm)[:16]!r} is not accepted (only "
                                  f"{', '.join(ALGORITHMS)})", True)
        key = self._key(header.get("kid"))
        if not isinstance(key, _KEY_TYPES[algorithm[:2]]):
            raise Unauthenticated(f"the token's algorithm {algorithm} does not fit its key (a "
                                  f"{type(key).__name__.removesuffix('PublicKey').removeprefix('_')} key)", True)
        try:
            claims = jwt.decode(token, key, algorithms=[algorithm], audience=self.audience, issuer=self.issuer,
                                leeway=LEEWAY_S, options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired", True) from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"the token is not for this audience ({self.audience}, LOAN_AUTH_AUDIENCE)", True) from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"the token is not from the issuer {self.issuer} (LOAN_AUTH_ISSUER)", True) from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"the token has no {error.claim} claim", True) from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the token's signature does not verify with the keys of LOAN_AUTH_KEYS", True) from None
        except jwt.PyJWTError as error:  # any other: a malformed token, a key it cannot be checked with
            raise Unauthenticated(f"the token is not valid: {str(error)[:120]}", True) from None
        self._check_lifetime(claims)
        return claims

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """Refuse a token valid for longer than the maximum lifetime, from its ``iat`` (or from now)."""
        issued = claims.get("iat")
        start = issued if isinstance(issued, (int, float)) and not isinstance(issued, bool) else time.time()
        lifetime = claims["exp"] - start
        if lifetime > self.max_lifetime + LEEWAY_S:
            raise Unauthenticated(f"the token is valid for {lifetime:.0f} s, longer than the {self.max_lifetime:g} s "
                                  "accepted (LOAN_AUTH_MAX_LIFETIME)", True)

    def _key(self, kid: Any) -> Any:
        # one PEM key has no id: it is the key, whatever id a token names; so is a JWKS's only key for a token naming none
        if None in self.keys or (kid is None and len(self.keys) == 1):
            return next(iter(self.keys.values()))
        if not isinstance(kid, str) or kid not in self.keys:
            raise Unauthenticated(f"the token's key id {str(kid)[:64]!r} is none of LOAN_AUTH_KEYS'"
                                  + ("" if kid is not None else " (a token must name its key: there are several)"), True)
        return self.keys[kid]


def verifier_of(settings: ServiceSettings) -> TokenVerifier | None:
    """The token check ``LOAN_AUTH`` asks for: None when off (said loudly in the log: not for production)."""
    if not settings.auth:
        logger.warning("LOAN_AUTH=off: ANYONE WHO REACHES THIS SERVICE MAY CALL IT (not for production)")
        return None
    return TokenVerifier(settings.auth_keys, settings.auth_issuer, settings.auth_audience,  # type: ignore[arg-type]
                         settings.auth_roles_claim, settings.auth_max_lifetime)


def _bearer(authorization: str | None, endpoint: str) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(f"{endpoint} needs a bearer token (Authorization: Bearer <JWT>)", bool(authorization))
    return token.strip()


def _read_keys(path: Path) -> dict[str | None, Any]:
    """The verification keys of ``path`` by key id: a JWKS (JSON) or one PEM public key (id None)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise SettingError(f"LOAN_AUTH_KEYS: cannot read {path}: {error.strerror}") from None
    try:
        if text.lstrip().startswith("{"):
            keys = {key.key_id: key.key for key in jwt.PyJWKSet.from_dict(json.loads(text)).keys}
        else:
            keys = {None: load_pem_public_key(text.encode())}
    except (ValueError, jwt.PyJWKError, jwt.PyJWKSetError) as error:
        raise SettingError(f"LOAN_AUTH_KEYS: {path} is neither a JWKS nor a PEM public key: {str(error)[:200]}") from None
    if None in keys and len(keys) > 1:
        raise SettingError(f"LOAN_AUTH_KEYS: every key of the JWKS {path} needs a kid (there are several)")
    return keys
