"""The local cluster's certificates (EC P-256, one CA made at start) and kubeconfigs."""
from __future__ import annotations

import base64
import datetime
import ipaddress
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from loanxai.ops.cluster.network import SERVICE_IP

__all__ = ["kubeconfig", "make_certificates"]


def _issue(name: str, key: ec.EllipticCurvePrivateKey, ca: tuple[x509.Certificate, Any] | None, *, org: str | None = None,
           hosts: tuple[str, ...] = (), client: bool = False) -> x509.Certificate:
    """A certificate for ``key`` (self-signed CA when ``ca`` is None), valid one year from an hour ago."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]
                        + ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []))
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca[0].subject if ca else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True))
    if ca is not None:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if hosts:
        names = [x509.IPAddress(ipaddress.ip_address(h)) if h[0].isdigit() else x509.DNSName(h) for h in hosts]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca[1] if ca else key, hashes.SHA256())


def _write_pair(folder: Path, stem: str, key: Any, cert: x509.Certificate | None = None) -> None:
    """Write ``<stem>.key`` (PKCS#8 PEM, mode 0600) and ``<stem>.crt`` (or ``.pub`` without a cert)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    (folder / f"{stem}.key").chmod(0o600)
    if cert is None:
        (folder / f"{stem}.pub").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    else:
        (folder / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_certificates(folder: Path, ip: str, webhook_dir: Path) -> None:
    """The run's PKI (EC P-256): CA, API server serving, admin client (system:masters), SA keys, webhook serving.

    Parameters
    ----------
    folder : the ``pki`` folder: ``ca``, ``apiserver``, ``admin`` (``.crt``/``.key``) and ``sa.key``/``sa.pub``
    ip : the API server's and the webhook's address (the namespace's end of the veth)
    webhook_dir : the operator's serving-certs folder (``tls.crt``, ``tls.key``)
    """
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (_issue("loanxai-cluster-ca", ca_key, None), ca_key)
    _write_pair(folder, "ca", ca_key, ca[0])
    hosts = (ip, "127.0.0.1", SERVICE_IP, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local", "localhost")
    for stem, name, org, names, client in (("apiserver", "kube-apiserver", None, hosts, False),
                                           ("admin", "loanxai-admin", "system:masters", (), True)):
        key = ec.generate_private_key(ec.SECP256R1())
        _write_pair(folder, stem, key, _issue(name, key, ca, org=org, hosts=names, client=client))
    _write_pair(folder, "sa", ec.generate_private_key(ec.SECP256R1()))
    key = ec.generate_private_key(ec.SECP256R1())
    _write_pair(webhook_dir, "tls", key, _issue("seldon-webhook", key, ca, hosts=(ip,)))


def kubeconfig(server: str, ca: Path, user: dict[str, str]) -> str:
    """A kubeconfig (JSON, which is YAML) for one cluster and one user, certificates embedded."""
    def data(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()
    cluster = {"server": server, "certificate-authority-data": data(ca)}
    user = {k: data(Path(v)) if k.endswith("-data") else v for k, v in user.items()}
    return json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "loanxai",
                       "clusters": [{"name": "loanxai", "cluster": cluster}], "users": [{"name": "loanxai", "user": user}],
                       "contexts": [{"name": "loanxai", "context": {"cluster": "loanxai", "user": "loanxai"}}]}, indent=1)
