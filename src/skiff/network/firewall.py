"""skiff's iptables rules: rendered from state (pure), applied in one iptables-restore.

Every rule lives in skiff's own chains; the built-in chains get one jump each, added once
and removed on teardown. Chain names carry a prefix (`SKIFF` for the daemon; tests use
their own) so two instances never touch each other's rules:

    filter FORWARD     -j P-FORWARD      accept traffic of skiff bridges (policy DROP safe)
           P-FORWARD   -j P-ISOLATE      first: drop bridge -> other skiff bridge
           P-ISOLATE   -i B ! -o B -j P-ISOLATE2 ;  P-ISOLATE2  -o B -j DROP (for every B)
    nat    PREROUTING  -m addrtype --dst-type LOCAL -j P-PORTS   published ports (DNAT)
           OUTPUT      -m addrtype --dst-type LOCAL -j P-PORTS   ... from the host itself
           POSTROUTING -j P-POSTROUTING  MASQUERADE: outbound, from 127/8, hairpin

A change re-renders all of skiff's chains and loads them with `iptables-restore
--noflush`: declaring a chain flushes just that chain, so the update is atomic, idempotent
and heals rules someone deleted by hand. The host's chains and policies are never flushed.

Published ports reach containers from 127.0.0.1 without a proxy process:
`route_localnet=1` on the bridge lets a packet with a loopback source leave through it
(after the OUTPUT DNAT) and the 127.0.0.0/8 MASQUERADE gives the container an address to
answer. Like dockerd with `--userland-proxy=false`, this costs no process per port (the
issue's budget is 2 MiB per container and fast parallel starts); the host port is still
reserved by a bound socket in skiffd (see ports.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Runner = Callable[[Sequence[str], str | None], str]
"""Runs argv with optional stdin; returns stdout; raises FirewallError on failure."""


class FirewallError(RuntimeError):
    pass


def run(argv: Sequence[str], stdin: str | None = None) -> str:
    proc = subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, check=False, timeout=60
    )
    if proc.returncode != 0:
        raise FirewallError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


@dataclass(frozen=True)
class BridgeRule:
    bridge: str
    subnet: str
    internal: bool = False


@dataclass(frozen=True)
class Dnat:
    proto: str
    host_ip: str  # "" every address
    host_port: int
    container_ip: str
    container_port: int


class Chains:
    def __init__(self, prefix: str) -> None:
        if not prefix or len(prefix) > 16 or not prefix.replace("-", "").isalnum():
            raise ValueError(f"bad chain prefix {prefix!r}")
        self.forward = f"{prefix}-FORWARD"
        self.isolate = f"{prefix}-ISOLATE"
        self.isolate2 = f"{prefix}-ISOLATE2"
        self.ports = f"{prefix}-PORTS"
        self.postrouting = f"{prefix}-POSTROUTING"

    def jumps(self) -> list[tuple[str, str, list[str]]]:
        """(table, built-in chain, rule spec) of each jump into skiff's chains."""
        local = ["-m", "addrtype", "--dst-type", "LOCAL", "-j", self.ports]
        return [
            ("filter", "FORWARD", ["-j", self.forward]),
            ("nat", "PREROUTING", local),
            ("nat", "OUTPUT", local),
            ("nat", "POSTROUTING", ["-j", self.postrouting]),
        ]

    def own(self) -> dict[str, list[str]]:
        return {
            "filter": [self.forward, self.isolate, self.isolate2],
            "nat": [self.ports, self.postrouting],
        }


def render(chains: Chains, bridges: Iterable[BridgeRule], dnats: Iterable[Dnat]) -> str:
    """The whole content of skiff's chains as iptables-restore input."""
    bridges = sorted(bridges, key=lambda b: b.bridge)
    f = ["*filter"] + [f":{c} - [0:0]" for c in chains.own()["filter"]]
    f.append(f"-A {chains.forward} -j {chains.isolate}")
    f.append(f"-A {chains.isolate} -m conntrack --ctstate DNAT -j RETURN")
    for b in bridges:
        f.append(f"-A {chains.isolate} -i {b.bridge} ! -o {b.bridge} -j {chains.isolate2}")
        f.append(f"-A {chains.isolate2} -o {b.bridge} -j DROP")
        if b.internal:
            f.append(f"-A {chains.forward} -i {b.bridge} ! -o {b.bridge} -j DROP")
            f.append(f"-A {chains.forward} ! -i {b.bridge} -o {b.bridge} -j DROP")
            f.append(f"-A {chains.forward} -i {b.bridge} -o {b.bridge} -j ACCEPT")
            continue
        f.append(
            f"-A {chains.forward} -o {b.bridge} -m conntrack --ctstate RELATED,ESTABLISHED"
            " -j ACCEPT"
        )
        f.append(f"-A {chains.forward} -o {b.bridge} -m conntrack --ctstate DNAT -j ACCEPT")
        f.append(f"-A {chains.forward} -i {b.bridge} -j ACCEPT")
    f.append("COMMIT")

    n = ["*nat"] + [f":{c} - [0:0]" for c in chains.own()["nat"]]
    for d in sorted(dnats, key=lambda d: (d.proto, d.host_port, d.host_ip)):
        dest = f"-d {d.host_ip}/32 " if d.host_ip else ""
        n.append(
            f"-A {chains.ports} {dest}-p {d.proto} -m {d.proto} --dport {d.host_port}"
            f" -j DNAT --to-destination {d.container_ip}:{d.container_port}"
        )
    for b in bridges:
        if not b.internal:
            n.append(f"-A {chains.postrouting} -s {b.subnet} ! -o {b.bridge} -j MASQUERADE")
        n.append(f"-A {chains.postrouting} -s 127.0.0.0/8 -o {b.bridge} -j MASQUERADE")
        n.append(
            f"-A {chains.postrouting} -s {b.subnet} -o {b.bridge} -m conntrack --ctstate DNAT"
            " -j MASQUERADE"
        )
    n.append("COMMIT")
    return "\n".join(f + n) + "\n"


def render_removal(chains: Chains) -> str:
    out = []
    for table, names in chains.own().items():
        out.append(f"*{table}")
        out += [f":{c} - [0:0]" for c in names]  # flushes them, so they can go
        out += [f"-X {c}" for c in names]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


class Iptables:
    """Applies rendered rules to the host's iptables (whichever backend `iptables` is)."""

    def __init__(self, chains: Chains, runner: Runner = run) -> None:
        self.chains = chains
        self.run = runner
        self.jumps_checked = False  # the jumps are checked once per daemon, not per change
        self.loaded_text = ""

    def apply(self, bridges: Iterable[BridgeRule], dnats: Iterable[Dnat]) -> None:
        text = render(self.chains, bridges, dnats)
        if text != self.loaded_text or not self.jumps_checked:  # most changes move no rule
            self.run(["iptables-restore", "-w", "--noflush"], text)
            self.loaded_text = text
        if not self.jumps_checked:
            self.ensure_jumps()
            self.jumps_checked = True

    def ensure_jumps(self) -> None:
        for table, chain, spec in self.chains.jumps():
            try:
                self.run(["iptables", "-w", "-t", table, "-C", chain, *spec], None)
            except FirewallError:
                self.run(["iptables", "-w", "-t", table, "-I", chain, "1", *spec], None)

    def remove(self) -> None:
        """Remove the jumps and skiff's chains; never touches anything else."""
        self.jumps_checked = False
        self.loaded_text = ""
        for table, chain, spec in self.chains.jumps():
            for _ in range(16):  # a jump added twice by a crash between -C and -I
                try:
                    self.run(["iptables", "-w", "-t", table, "-D", chain, *spec], None)
                except FirewallError:
                    break
        existing = self.run(["iptables-save"], None)
        if any(f":{c} " in existing for cs in self.chains.own().values() for c in cs):
            self.run(["iptables-restore", "-w", "--noflush"], render_removal(self.chains))

    def save(self) -> str:
        return self.run(["iptables-save"], None)


DNS_CHAIN = "SKIFF-DNS"
EMBEDDED_DNS = "127.0.0.11"
DNS_JUMP = ["-d", f"{EMBEDDED_DNS}/32", "-j", DNS_CHAIN]


def render_container_dns(udp_port: int, tcp_port: int, add_jump: bool) -> str:
    """nat rules inside a container's netns sending 127.0.0.11:53 to the daemon's sockets."""
    lines = [
        "*nat",
        f":{DNS_CHAIN} - [0:0]",
        f"-A {DNS_CHAIN} -d 127.0.0.11/32 -p udp -m udp --dport 53"
        f" -j DNAT --to-destination 127.0.0.11:{udp_port}",
        f"-A {DNS_CHAIN} -d 127.0.0.11/32 -p tcp -m tcp --dport 53"
        f" -j DNAT --to-destination 127.0.0.11:{tcp_port}",
    ]
    if add_jump:
        lines.append("-A OUTPUT " + " ".join(DNS_JUMP))
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"
