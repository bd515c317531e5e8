"""A real skiffd on a temporary data root and socket (never the default paths), driven by
the docker CLI, the Docker SDK for Python, the skiff CLI and raw sockets; plus TCP with
mutual TLS."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from skiff.pki import init_tls
from skiff.testing.daemon import PrivateSkiffd, SkiffdFlags

DOCKER = shutil.which("docker")


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    root: Path
    socket: str
    port: int
    certs: Path
    other_certs: Path

    @property
    def unix_host(self) -> str:
        return "unix://" + self.socket


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("skiffd")
    certs, other = root / "certs", root / "other-certs"
    init_tls(str(certs))
    init_tls(str(other))
    port = _free_port()
    tcp = ["-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(certs / "ca.pem")]
    tcp += ["--tlscert", str(certs / "server-cert.pem"), "--tlskey", str(certs / "server-key.pem")]
    skiffd = PrivateSkiffd(root, flags=SkiffdFlags(debug=True, extra=tuple(tcp)))
    try:
        proc = skiffd.start().proc
        assert proc is not None
        yield Daemon(proc, root, skiffd.socket, port, certs, other)
    finally:
        skiffd.stop()


def docker_cli(
    d: Daemon, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert DOCKER is not None
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(d.root),
        "DOCKER_CONFIG": str(d.root / "docker-config"),
        "DOCKER_HOST": d.unix_host,
    }
    return subprocess.run(
        [DOCKER, *args],
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


needs_docker = pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")


@needs_docker
def test_docker_version(daemon: Daemon) -> None:
    result = docker_cli(daemon, "version")
    assert result.returncode == 0, result.stderr
    assert "Server: skiff" in result.stdout
    assert "1.44 (minimum version 1.24)" in result.stdout


@needs_docker
def test_docker_info(daemon: Daemon) -> None:
    result = docker_cli(daemon, "info")
    assert result.returncode == 0, result.stderr
    assert "Storage Driver: overlay2" in result.stdout
    assert f"Docker Root Dir: {daemon.root / 'data'}" in result.stdout
    formatted = docker_cli(daemon, "info", "--format", "{{.Driver}} {{.CgroupDriver}}")
    assert formatted.stdout.strip() == "overlay2 cgroupfs"


@needs_docker
def test_docker_system_df(daemon: Daemon) -> None:
    result = docker_cli(daemon, "system", "df")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert lines[1].split()[:2] == ["Images", "0"]


@needs_docker
def test_docker_events_since_until_ends(daemon: Daemon) -> None:
    started = time.monotonic()
    result = docker_cli(
        daemon, "events", "--since", "1m", "--until", "1s", "--filter", "type=container"
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15


def test_sdk(daemon: Daemon) -> None:
    client = docker.DockerClient(base_url=daemon.unix_host, version="1.44", timeout=10)
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"] == "1.44"
        info = client.info()
        assert info["Driver"] == "overlay2"
        assert info["NCPU"] >= 1
        assert client.df()["Images"] == []
        now = time.time()
        assert list(client.events(since=now - 5, until=now, decode=True)) == []
    finally:
        client.close()


def test_skiff_cli(daemon: Daemon) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "skiff.cli.main", "-H", daemon.unix_host, "version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Server: skiff" in result.stdout


def _raw(daemon: Daemon, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(daemon.socket)
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data


def test_malformed_requests_get_4xx_and_daemon_keeps_serving(daemon: Daemon) -> None:
    reply = _raw(
        daemon, b"GET /v1.44/events?since=soon HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert "message" in json.loads(body)
    reply = _raw(daemon, b"\x16\x03\x01 not http at all\r\n\r\n")
    assert reply.split(b" ")[1].startswith(b"4")
    ping = _raw(daemon, b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ping.startswith(b"HTTP/1.1 200")
    assert ping.endswith(b"OK")


@needs_docker
def test_tls_with_good_client_cert(daemon: Daemon) -> None:
    env = {
        "DOCKER_HOST": f"tcp://127.0.0.1:{daemon.port}",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(daemon.certs),
    }
    result = docker_cli(daemon, "version", "--format", "{{.Server.APIVersion}}", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.44"


def _tls_ping(daemon: Daemon, cert: Path | None, key: Path | None, tls12: bool = False) -> bytes:
    ctx = ssl.create_default_context(cafile=str(daemon.certs / "ca.pem"))
    if tls12:  # the client certificate is checked inside the TLS 1.2 handshake itself
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    with (
        socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return tls.recv(100)


def test_tls_handshake_accepts_our_ca_and_refuses_others(daemon: Daemon) -> None:
    good = (daemon.certs / "cert.pem", daemon.certs / "key.pem")
    assert _tls_ping(daemon, *good).startswith(b"HTTP/1.1 200")
    assert _tls_ping(daemon, *good, tls12=True).startswith(b"HTTP/1.1 200")
    other = (daemon.other_certs / "cert.pem", daemon.other_certs / "key.pem")
    for cert, key in (other, (None, None)):
        with pytest.raises(ssl.SSLError):
            _tls_ping(daemon, cert, key, tls12=True)
        # TLS 1.3 finishes the client's side first; the refusal shows on the first read
        try:
            reply = _tls_ping(daemon, cert, key)
        except (ssl.SSLError, ConnectionResetError):
            reply = b""
        assert reply == b""


@needs_docker
def test_docker_cli_with_cert_from_another_ca_is_refused(daemon: Daemon, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(daemon.certs / "ca.pem", mixed / "ca.pem")
    shutil.copy(daemon.other_certs / "cert.pem", mixed / "cert.pem")
    shutil.copy(daemon.other_certs / "key.pem", mixed / "key.pem")
    env = {
        "DOCKER_HOST": f"tcp://127.0.0.1:{daemon.port}",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(mixed),
    }
    result = docker_cli(daemon, "version", env=env)
    assert result.returncode != 0
    assert "Server: skiff" not in result.stdout


def test_zz_sigterm_cleans_up(daemon: Daemon) -> None:
    """Runs last in this module: stop the daemon by its pid; nothing is left behind."""
    os.kill(daemon.proc.pid, signal.SIGTERM)
    assert daemon.proc.wait(15) == 0
    assert not os.path.exists(daemon.socket)
    assert not (daemon.root / "exec" / "skiffd.pid").exists()
    log = (daemon.root / "exec" / "skiffd.log").read_text().splitlines()
    entries = [json.loads(line) for line in log]
    assert any(e["msg"] == "skiffd stopped" for e in entries)
    assert any(e.get("request_id") for e in entries)
