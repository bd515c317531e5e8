from __future__ import annotations

import os
from pathlib import Path

import pytest

from skiff.daemon.config import build_parser, config_from_args
from skiff.daemon.server import write_pidfile
from skiff.errors import Conflict, InvalidArgument
from skiff.hosts import Host, parse_host


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("unix:///run/x.sock", Host("unix", path="/run/x.sock")),
        ("/run/y.sock", Host("unix", path="/run/y.sock")),
        ("tcp://127.0.0.1:2376", Host("tcp", address="127.0.0.1", port=2376)),
        ("tcp://0.0.0.0", Host("tcp", address="0.0.0.0", port=2376)),
        ("tcp://[::1]:9", Host("tcp", address="::1", port=9)),
    ],
)
def test_parse_host(text: str, host: Host) -> None:
    assert parse_host(text) == host


@pytest.mark.parametrize("text", ["ftp://x", "nonsense", "tcp://h:notaport", "tcp://h:1/path"])
def test_parse_host_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument, match="Invalid bind address format"):
        parse_host(text)


def parse(*argv: str) -> object:
    return config_from_args(build_parser().parse_args(list(argv)))


def test_defaults_follow_exec_root(tmp_path: Path) -> None:
    cfg = config_from_args(build_parser().parse_args(["--exec-root", str(tmp_path)]))
    assert cfg.hosts == [Host("unix", path=str(tmp_path / "skiff.sock"))]
    assert cfg.pidfile == str(tmp_path / "skiffd.pid")
    assert cfg.log_file == str(tmp_path / "skiffd.log")


def test_tcp_needs_tls_or_explicit_insecure() -> None:
    with pytest.raises(InvalidArgument, match="refusing to listen on TCP without TLS"):
        parse("-H", "tcp://127.0.0.1:2376")
    with pytest.raises(InvalidArgument, match="--tlsverify needs"):
        parse("-H", "tcp://127.0.0.1:2376", "--tlsverify", "--tlscacert", "ca.pem")
    assert parse("-H", "tcp://127.0.0.1:2376", "--insecure-tcp")


def test_pidfile_refuses_a_live_daemon(tmp_path: Path) -> None:
    path = tmp_path / "d.pid"
    path.write_text("1\n")  # init is alive
    with pytest.raises(Conflict, match="pid file found"):
        write_pidfile(str(path))
    path.write_text("999999999\n")  # stale
    write_pidfile(str(path))
    assert path.read_text().strip() == str(os.getpid())
