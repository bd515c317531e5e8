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
class NetworkFlags:
    """dockerd's networking flags."""

    bridge: str = "skiff0"  # "none": no default network
    bip: str = ""  # the default bridge's gateway/len ("" chooses a free subnet)
    fixed_cidr: str = ""  # the part of the subnet handed to containers
    iptables: bool = True
    ip_forward: bool = True
    address_pools: tuple[tuple[str, int], ...] = ()  # --default-address-pool base=,size=
    chain_prefix: str = ""  # "": SKIFF for skiff0, else derived from the bridge name
    mtu: int = 1500

    def prefix(self) -> str:
        if self.chain_prefix:
            return self.chain_prefix
        if self.bridge in ("skiff0", "none", ""):
            return "SKIFF"
        tail = "".join(ch for ch in self.bridge.upper() if ch.isalnum())
        return ("SK-" + tail)[:16]


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
    network: NetworkFlags = field(default_factory=NetworkFlags)


def _bool_flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on", ""):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def _address_pool(text: str) -> tuple[str, int]:
    fields = dict(part.partition("=")[::2] for part in text.split(","))
    try:
        return fields["base"], int(fields["size"])
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(
            f"invalid default address pool {text!r} (want base=CIDR,size=N)"
        ) from None


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
    n = p.add_argument_group("networking (dockerd's flags)")
    n.add_argument(
        "-b", "--bridge", default="skiff0", help="default bridge name; none: no default network"
    )
    n.add_argument("--bip", default="", help="default bridge address and prefix (CIDR)")
    n.add_argument("--fixed-cidr", default="", help="addresses of the default bridge given out")
    n.add_argument("--iptables", type=_bool_flag, nargs="?", const=True, default=True)
    n.add_argument("--ip-forward", type=_bool_flag, nargs="?", const=True, default=True)
    n.add_argument("--default-address-pool", type=_address_pool, action="append", default=[])
    n.add_argument(
        "--iptables-chain-prefix",
        default="",
        help="skiff's iptables chains' prefix (default SKIFF, or one derived from --bridge)",
    )
    n.add_argument("--mtu", type=int, default=1500)
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
        network=NetworkFlags(
            bridge=ns.bridge,
            bip=ns.bip,
            fixed_cidr=ns.fixed_cidr,
            iptables=ns.iptables,
            ip_forward=ns.ip_forward,
            address_pools=tuple(ns.default_address_pool),
            chain_prefix=ns.iptables_chain_prefix,
            mtu=ns.mtu,
        ),
    )
