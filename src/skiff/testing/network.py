"""Fakes for skiff.network: links that only record, and an iptables that only remembers.

`FakeLinks` keeps an in-memory set of links so the manager's bookkeeping (which veth,
which bridge, which routes) runs in milliseconds without root; its `open_dns` binds real
sockets on 127.0.0.1 so the DNS server can be exercised end to end.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from ipaddress import IPv4Interface, IPv4Network

from skiff.network.firewall import Chains, FirewallError, Iptables
from skiff.network.links import Attachment


class FakeLinks:
    def __init__(self, routes: Sequence[str] = ("192.0.2.0/24",)) -> None:
        self.links: dict[str, str] = {}  # name -> kind
        self.host_routes = [IPv4Network(r) for r in routes]
        self.attached: dict[str, Attachment] = {}
        self.dns: dict[str, tuple[int, int]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_attach: Exception | None = None

    def ensure_bridge(self, name: str, gateway: IPv4Interface, mtu: int = 1500) -> bool:
        self.calls.append(("ensure_bridge", name))
        created = name not in self.links
        if created:
            self.links[name] = "bridge"
        return created

    def remove_link(self, name: str) -> None:
        self.calls.append(("remove_link", name))
        self.links.pop(name, None)
        self.attached.pop(name, None)

    def exists(self, name: str) -> bool:
        return name in self.links

    def routes(self) -> list[IPv4Network]:
        return list(self.host_routes)

    def attach(self, a: Attachment) -> None:
        self.calls.append(("attach", a.host_veth))
        if self.fail_attach is not None:
            raise self.fail_attach
        if a.bridge not in self.links:
            raise RuntimeError(f"bridge {a.bridge} is missing")
        self.links[a.host_veth] = "veth"
        self.attached[a.host_veth] = a

    def enslave(self, name: str, bridge: str) -> None:
        self.calls.append(("enslave", name))

    def open_dns(
        self, netns: str, udp_port: int, tcp_port: int
    ) -> tuple[socket.socket, socket.socket]:
        self.calls.append(("open_dns", netns))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(8)
        self.dns[netns] = (udp.getsockname()[1], tcp.getsockname()[1])
        return udp, tcp

    def close_dns(self, netns: str) -> None:
        self.calls.append(("close_dns", netns))
        self.dns.pop(netns, None)

    def close(self) -> None:
        self.calls.append(("close", ""))


class FakeIptables(Iptables):
    """Remembers the last iptables-restore input instead of running it."""

    def __init__(self, prefix: str = "SKIFF") -> None:
        self.loaded = ""
        self.commands: list[list[str]] = []
        super().__init__(Chains(prefix), self._run)

    def _run(self, argv: Sequence[str], stdin: str | None) -> str:
        self.commands.append(list(argv))
        if argv[0] == "iptables-restore":
            self.loaded = stdin or ""
            return ""
        if "-C" in argv:
            raise FirewallError("no such rule")
        return ""
