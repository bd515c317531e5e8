"""skiffd's configuration, from its command line (dockerd's flag names)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from skiff.errors import InvalidArgument
from skiff.hosts import DEFAULT_EXEC_ROOT, Host, parse_host

DEFAULT_DATA_ROOT = "/var/lib/skiff"
SOCKET_NAME = "skiff.sock"
LOG_NAME = "skiffd.log"
PID_NAME = "skiffd.pid"


@dataclass(frozen=True)
class TlsFiles:
    ca: str
    cert: str
    key: str


@dataclass(frozen=True)
class DaemonConfig:
    hosts: list[Host]
    data_root: str = DEFAULT_DATA_ROOT
    exec_root: str = DEFAULT_EXEC_ROOT
    pidfile: str = ""
    debug: bool = False
    tls: TlsFiles | None = None
    insecure_tcp: bool = False
    insecure_registries: list[str] = field(default_factory=list)
    log_file: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skiffd", description="The skiff daemon")
    p.add_argument(
        "-H",
        "--host",
        action="append",
        default=[],
        help="daemon socket(s) to listen on (unix:///path, tcp://ADDR:PORT); repeatable",
    )
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="root of persistent state")
    p.add_argument("--exec-root", default=DEFAULT_EXEC_ROOT, help="root of runtime state")
    p.add_argument("-p", "--pidfile", default="", help="path of the pid file")
    p.add_argument("-D", "--debug", action="store_true", help="debug logging")
    p.add_argument("--tlsverify", action="store_true", help="require TLS with client certs")
    p.add_argument("--tlscacert", default="", help="CA that signs trusted client certs")
    p.add_argument("--tlscert", default="", help="server certificate")
    p.add_argument("--tlskey", default="", help="server key")
    p.add_argument(
        "--insecure-tcp",
        action="store_true",
        help="allow plain TCP without TLS: anyone who can reach the port is root",
    )
    p.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        help="registry (HOST[:PORT]) to reach over plain HTTP; loopback ones always may be",
    )
    p.add_argument("--log-file", default="", help="JSON log file (default EXEC_ROOT/skiffd.log)")
    p.add_argument("-v", "--version", action="store_true", help="print version and exit")
    return p


def config_from_args(ns: argparse.Namespace) -> DaemonConfig:
    exec_root = os.path.abspath(ns.exec_root)
    data_root = os.path.abspath(ns.data_root)
    raw_hosts = ns.host or ["unix://" + os.path.join(exec_root, SOCKET_NAME)]
    hosts = [parse_host(h) for h in raw_hosts]
    tls: TlsFiles | None = None
    if ns.tlsverify:
        missing = [n for n in ("tlscacert", "tlscert", "tlskey") if not getattr(ns, n)]
        if missing:
            raise InvalidArgument("--tlsverify needs " + ", ".join("--" + m for m in missing))
        tls = TlsFiles(ns.tlscacert, ns.tlscert, ns.tlskey)
    if any(h.scheme == "tcp" for h in hosts) and tls is None and not ns.insecure_tcp:
        raise InvalidArgument(
            "refusing to listen on TCP without TLS: use --tlsverify --tlscacert --tlscert "
            "--tlskey (see `skiff tls init`), or --insecure-tcp if you really mean it"
        )
    return DaemonConfig(
        hosts=hosts,
        data_root=data_root,
        exec_root=exec_root,
        pidfile=os.path.abspath(ns.pidfile) if ns.pidfile else os.path.join(exec_root, PID_NAME),
        debug=ns.debug,
        tls=tls,
        insecure_tcp=ns.insecure_tcp,
        insecure_registries=list(ns.insecure_registry),
        log_file=ns.log_file or os.path.join(exec_root, LOG_NAME),
    )
