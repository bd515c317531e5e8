"""A CA, a server and a client certificate for skiffd's TLS, so nobody needs openssl.

Files (named as docker documents them, so DOCKER_CERT_PATH / SKIFF_CERT_PATH point at DIR):

    ca.pem, ca-key.pem                 the CA (keep ca-key.pem offline once done)
    server-cert.pem, server-key.pem    skiffd --tlscacert ca.pem --tlscert ... --tlskey ...
    cert.pem, key.pem                  the client's (with ca.pem, for the CLI and the SDK)
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from skiff.errors import Conflict

DEFAULT_DAYS = 365


@dataclass(frozen=True)
class _Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "skiff"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    subject: str,
    days: int,
    issuer: _Issued | None,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
    sans: Sequence[x509.GeneralName] = (),
) -> _Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else _name(subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=not ca,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), False
        )
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), False)
    return _Issued(key, builder.sign(signer_key, hashes.SHA256()))


def _san(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def _write(path: str, data: bytes, mode: int) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


FILES = ("ca.pem", "ca-key.pem", "server-cert.pem", "server-key.pem", "cert.pem", "key.pem")


def init_tls(
    directory: str,
    *,
    hosts: Sequence[str] = (),
    days: int = DEFAULT_DAYS,
    force: bool = False,
) -> list[str]:
    """Write the six files; the server certificate is valid for localhost, 127.0.0.1, ::1,
    this machine's name and every name or address in `hosts`. Returns the paths written."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    paths = [os.path.join(directory, name) for name in FILES]
    existing = [p for p in paths if os.path.exists(p)]
    if existing and not force:
        raise Conflict(f"{existing[0]} already exists (use --force to replace)")
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), *hosts]
    unique = list(dict.fromkeys(names))
    ca = _issue("skiff CA", days, None, ca=True)
    server = _issue(
        "skiffd",
        days,
        ca,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        sans=[_san(n) for n in unique],
    )
    client = _issue("client", days, ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    contents = [
        (_cert_pem(ca.cert), 0o644),
        (_key_pem(ca.key), 0o600),
        (_cert_pem(server.cert), 0o644),
        (_key_pem(server.key), 0o600),
        (_cert_pem(client.cert), 0o644),
        (_key_pem(client.key), 0o600),
    ]
    for path, (data, mode) in zip(paths, contents, strict=True):
        _write(path, data, mode)
    return paths
