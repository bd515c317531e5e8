from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from skiff.errors import Conflict
from skiff.pki import FILES, init_tls


def test_init_writes_a_usable_chain(tmp_path: Path) -> None:
    d = tmp_path / "certs"
    init_tls(str(d), hosts=["skiff.example", "10.1.2.3"])
    assert sorted(os.listdir(d)) == sorted(FILES)
    assert (d / "key.pem").stat().st_mode & 0o777 == 0o600
    server = x509.load_pem_x509_certificate((d / "server-cert.pem").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "skiff.example" in sans.get_values_for_type(x509.DNSName)
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} >= {
        "127.0.0.1",
        "10.1.2.3",
    }
    # both sides load into ssl contexts the way skiffd and the client use them
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(d / "ca.pem"))
    server_ctx.load_cert_chain(str(d / "server-cert.pem"), str(d / "server-key.pem"))
    client_ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    client_ctx.load_cert_chain(str(d / "cert.pem"), str(d / "key.pem"))


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    init_tls(str(tmp_path))
    with pytest.raises(Conflict, match="already exists"):
        init_tls(str(tmp_path))
    init_tls(str(tmp_path), force=True)
