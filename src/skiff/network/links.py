"""Bridges and veth pairs over netlink (pyroute2), behind the small `Links` seam.

Per container, `attach` does:

    host netns                                  container netns (a path: /proc/PID/ns/net
                                                 or a bind-mounted file like /run/netns/X)
    bridge <─ master ─ vethXXXXXXX ══ veth ══ eth0  02:42:<ip>  <ip>/<len>  up
                                                 default via <gateway>;  lo up

The container's end is created directly in its netns (IFLA_NET_NS_FD), then renamed and
configured from a short-lived thread that joined that netns with setns(2): a netlink
socket belongs to the netns it was made in, and joining a network namespace is
per-thread, so skiffd needs neither fork (unsafe in a threaded daemon; pyroute2's own
`netns=` forks) nor `ip netns exec`. The same thread hop runs anything else that must
happen inside (DNS sockets, the container's nat rules; see manager.py).

The calls block: from asyncio, run them in a worker thread (pyroute2's sync API also
refuses to run inside a running event loop).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Protocol, TypeVar

from skiff.linux.syscalls import CLONE_NEWNET, setns
from skiff.network import firewall

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Attachment:
    bridge: str
    host_veth: str
    netns: str
    address: IPv4Interface
    mac: str
    gateway: IPv4Address | None  # None: no default route (a second network)
    ifname: str = "eth0"
    mtu: int = 1500


class Links(Protocol):
    def ensure_bridge(self, name: str, gateway: IPv4Interface, mtu: int = 1500) -> bool:
        """Create (or complete) the bridge with its address, up; True if it was missing."""

    def remove_link(self, name: str) -> None:
        """Delete a link of the host netns; no error if it is gone."""

    def exists(self, name: str) -> bool: ...

    def routes(self) -> list[IPv4Network]:
        """Destinations of the host's IPv4 routes (to avoid shadowing them)."""

    def attach(self, a: Attachment) -> None: ...

    def enslave(self, name: str, bridge: str) -> None:
        """Put an existing host veth back on its (re-created) bridge."""

    def open_dns(
        self, netns: str, udp_port: int, tcp_port: int
    ) -> tuple[socket.socket, socket.socket]:
        """Bind DNS sockets on 127.0.0.11 inside `netns` (the given ports if free, else any)
        and point the container's 127.0.0.11:53 at them."""

    def close_dns(self, netns: str) -> None:
        """Stop sending the container's 127.0.0.11:53 anywhere (its netns still exists)."""


def in_netns(path: str, fn: Callable[[], T]) -> T:
    """Run `fn` in a fresh thread that joined the network namespace at `path`."""
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as e:
            error.append(e)

    # The thread ends here, so its changed namespace can never leak into other work.
    thread = threading.Thread(target=body, name="skiff-netns")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def write_sysctl(name: str, value: str) -> None:
    with open("/proc/sys/" + name.replace(".", "/"), "w") as f:
        f.write(value)


class NetlinkLinks:
    """The real `Links`, with pyroute2's IPRoute (one socket per call, in the caller thread)."""

    def _ipr(self) -> Any:
        from pyroute2 import IPRoute  # imported lazily: the CLI never needs it

        return IPRoute()

    def exists(self, name: str) -> bool:
        with self._ipr() as ipr:
            return bool(ipr.link_lookup(ifname=name))

    def ensure_bridge(self, name: str, gateway: IPv4Interface, mtu: int = 1500) -> bool:
        created = False
        with self._ipr() as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
                found = ipr.link_lookup(ifname=name)
                created = True
            index = found[0]
            have = {
                (a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                for a in ipr.get_addr(index=index, family=2)
            }
            if (str(gateway.ip), gateway.network.prefixlen) not in have:
                ipr.addr(
                    "add", index=index, address=str(gateway.ip), prefixlen=gateway.network.prefixlen
                )
            ipr.link("set", index=index, state="up")
        # Published ports from 127.0.0.1: a loopback source may leave through this bridge.
        write_sysctl(f"net.ipv4.conf.{name}.route_localnet", "1")
        return created

    def remove_link(self, name: str) -> None:
        with self._ipr() as ipr:
            for index in ipr.link_lookup(ifname=name):
                with contextlib.suppress(Exception):
                    ipr.link("del", index=index)

    def enslave(self, name: str, bridge: str) -> None:
        with self._ipr() as ipr:
            master = ipr.link_lookup(ifname=bridge)[0]
            for index in ipr.link_lookup(ifname=name):
                ipr.link("set", index=index, master=master, state="up")

    def routes(self) -> list[IPv4Network]:
        out = []
        with self._ipr() as ipr:
            for r in ipr.get_routes(family=2, table=254):
                dst = r.get_attr("RTA_DST")
                if dst:
                    out.append(IPv4Network(f"{dst}/{r['dst_len']}", strict=False))
        return out

    def attach(self, a: Attachment) -> None:
        peer = a.host_veth + "c"
        with self._ipr() as ipr:
            bridge = ipr.link_lookup(ifname=a.bridge)
            if not bridge:
                raise RuntimeError(f"bridge {a.bridge} is missing")
            ipr.link(
                "add",
                ifname=a.host_veth,
                kind="veth",
                mtu=a.mtu,
                peer={"ifname": peer, "net_ns_fd": a.netns, "mtu": a.mtu},
            )
            try:
                index = ipr.link_lookup(ifname=a.host_veth)[0]
                ipr.link("set", index=index, master=bridge[0])
                try:
                    # Hairpin: a container reaching itself through a published port.
                    ipr.brport("set", index=index, mode=1)
                except Exception as e:
                    log.debug("hairpin mode on %s: %s", a.host_veth, e)
                ipr.link("set", index=index, state="up")
                in_netns(a.netns, lambda: _configure_inside(peer, a))
            except BaseException:
                with contextlib.suppress(Exception):
                    ipr.link("del", ifname=a.host_veth)
                raise

    def open_dns(
        self, netns: str, udp_port: int, tcp_port: int
    ) -> tuple[socket.socket, socket.socket]:
        return in_netns(netns, lambda: _open_dns_inside(udp_port, tcp_port))

    def close_dns(self, netns: str) -> None:
        in_netns(netns, _close_dns_inside)


def _bind(kind: int, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((firewall.EMBEDDED_DNS, port))
        except OSError:
            if not port:
                raise
            sock.bind((firewall.EMBEDDED_DNS, 0))  # taken by the container: any other
        if kind == socket.SOCK_STREAM:
            sock.listen(64)
        return sock
    except BaseException:
        sock.close()
        raise


def _dns_jump_exists() -> bool:
    try:
        firewall.run(["iptables", "-w", "-t", "nat", "-C", "OUTPUT", *firewall.DNS_JUMP], None)
        return True
    except firewall.FirewallError:
        return False


def _open_dns_inside(udp_port: int, tcp_port: int) -> tuple[socket.socket, socket.socket]:
    # Runs in the container's netns: the sockets stay there, the iptables child too.
    udp = _bind(socket.SOCK_DGRAM, udp_port)
    try:
        tcp = _bind(socket.SOCK_STREAM, tcp_port)
        try:
            text = firewall.render_container_dns(
                udp.getsockname()[1], tcp.getsockname()[1], add_jump=not _dns_jump_exists()
            )
            firewall.run(["iptables-restore", "-w", "--noflush"], text)
            return udp, tcp
        except BaseException:
            tcp.close()
            raise
    except BaseException:
        udp.close()
        raise


def _close_dns_inside() -> None:
    firewall.run(
        ["iptables-restore", "-w", "--noflush"], f"*nat\n:{firewall.DNS_CHAIN} - [0:0]\nCOMMIT\n"
    )


def _configure_inside(peer: str, a: Attachment) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=peer)[0]
        ipr.link("set", index=index, ifname=a.ifname, address=a.mac)
        ipr.addr(
            "add", index=index, address=str(a.address.ip), prefixlen=a.address.network.prefixlen
        )
        ipr.link("set", index=index, state="up")
        for lo in ipr.link_lookup(ifname="lo"):
            ipr.link("set", index=lo, state="up")
        if a.gateway is not None:
            ipr.route("replace", dst="0.0.0.0/0", gateway=str(a.gateway))
