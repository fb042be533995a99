"""Keys and tokens for ``LOAN_AUTH=on`` where no identity provider issues them: locally, on kind, in tests.

``loanxai tokens keys --out DIR`` writes a new RSA key pair: ``signing-key.pem`` (the
private key, mode 0600: whoever holds it mints tokens) and ``jwks.json`` (the public key as a
JWKS, what the services' ``LOAN_AUTH_KEYS`` and Istio's ``RequestAuthentication`` read).
``loanxai tokens token --key DIR/signing-key.pem --subject officer-7 --role explain``
prints a signed JWT (RS256) with ``iss``, ``aud``, ``sub``, the roles claim, ``iat`` and ``exp``.
In production the lender's identity provider issues the tokens and publishes its JWKS; these
commands stand in for it. ``loanxai tokens sampling-key --out FILE`` writes a new
sampling key (mode 0600), the secret the explainer and the classifier share
(``LOAN_SAMPLING_KEY_FILE``), whatever ``LOAN_AUTH`` says.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from loanxai.config import Settings
from loanxai.core.cli import command_parser
from loanxai.core.roles import ROLES
from loanxai.errors import SettingError

__all__ = ["JWKS_FILE", "SIGNING_KEY_FILE", "make_keys", "make_sampling_key", "mint", "parser", "run"]

SIGNING_KEY_FILE = "signing-key.pem"
JWKS_FILE = "jwks.json"
#: the issuer of the tokens minted here when LOAN_AUTH_ISSUER is unset
DEFAULT_ISSUER = "loanxai-local"


def make_keys(folder: Path) -> tuple[Path, Path]:
    """Write a new RSA key pair to ``folder``; return the signing key's path and the JWKS's."""
    folder.mkdir(parents=True, exist_ok=True)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    jwks = {"keys": [public | {"kid": _key_id(public), "use": "sig", "alg": "RS256"}]}
    key_path, jwks_path = folder / SIGNING_KEY_FILE, folder / JWKS_FILE
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    jwks_path.write_text(json.dumps(jwks, indent=2) + "\n")
    return key_path, jwks_path


def make_sampling_key(path: Path) -> Path:
    """Write a new sampling key (256 random bits, base64url; mode 0600) to ``path``; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(32) + "\n")
    return path


def _key_id(public_jwk: dict[str, str]) -> str:
    """The key's id: its RFC 7638 thumbprint (SHA-256 of its required members, in order), base64url."""
    canonical = json.dumps({k: public_jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def mint(key_file: Path, subject: str, roles: list[str], issuer: str, audience: str, minutes: float,
         claim: str = "roles") -> str:
    """A token signed with the RSA key of ``key_file`` (its thumbprint the kid), valid ``minutes``."""
    private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    kid = _key_id(json.loads(RSAAlgorithm.to_jwk(private.public_key())))
    now = int(time.time())
    claims = {"iss": issuer, "aud": audience, "sub": subject, claim: roles, "iat": now, "exp": now + int(minutes * 60)}
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})


def parser() -> argparse.ArgumentParser:
    """The command's arguments (the docs' command reference prints its help)."""
    parser = command_parser(__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="write a new key pair (signing-key.pem, jwks.json)")
    keys.add_argument("--out", type=Path, required=True, help="the folder to write them to")
    token = commands.add_parser("token", help="print a signed token")
    token.add_argument("--key", type=Path, required=True, help="the signing key (signing-key.pem)")
    token.add_argument("--subject", required=True, help="the caller (sub): a system, an officer, an auditor")
    token.add_argument("--role", action="append", choices=ROLES, required=True, help="a role (repeat for several)")
    token.add_argument("--issuer", help=f"iss (default: LOAN_AUTH_ISSUER, else {DEFAULT_ISSUER})")
    token.add_argument("--audience", help="aud (default: LOAN_AUTH_AUDIENCE)")
    token.add_argument("--minutes", type=float, default=60.0, help="how long it is valid")
    sampling = commands.add_parser("sampling-key", help="write a new sampling key (LOAN_SAMPLING_KEY_FILE)")
    sampling.add_argument("--out", type=Path, required=True, help="the file to write it to")
    return parser


def run(args: argparse.Namespace, settings: Settings) -> None:
    """Write keys, or print a token, as ``args`` say (``loanxai tokens``)."""
    if args.command == "keys":
        key_path, jwks_path = make_keys(args.out)
        sys.stdout.write(f"signing key: {key_path} (keep it secret)\nJWKS: {jwks_path} (LOAN_AUTH_KEYS)\n")
    elif args.command == "sampling-key":
        sys.stdout.write(f"sampling key: {make_sampling_key(args.out)} (keep it secret; LOAN_SAMPLING_KEY_FILE)\n")
    else:
        try:
            service = settings.service
            token = mint(args.key, args.subject, args.role, args.issuer or service.auth_issuer or DEFAULT_ISSUER,
                         args.audience or service.auth_audience, args.minutes, service.auth_roles_claim)
        except (OSError, ValueError) as error:
            raise SettingError(f"cannot sign with {args.key}: {error}") from None
        sys.stdout.write(token + "\n")
