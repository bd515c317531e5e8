"""Bridges and veth pairs over netlink (pyroute2), behind the small `Links` seam.

Per container, `attach` does:

    host netns                                  container netns (a path: /proc/PID/ns/net
                                                 or a bind-mounted file like /run/netns/X)
    bridge <─ master ─ vethXXXXXXX ══ veth ══ eth0  02:42:<ip>  <ip>/<len>  up
                                                 default via <gateway>;  lo up

One netlink request makes the pair: the host end enslaved and up, the container's end
created directly in its netns (IFLA_NET_NS_FD) with its final name and MAC. Its address
and link state, lo and the route are then set from a short-lived thread that joined
that netns with setns(2): a netlink socket belongs to the netns it was made in, and
joining a network namespace is per-thread, so skiffd needs neither fork (unsafe in a
threaded daemon; pyroute2's own `netns=` forks) nor `ip netns exec`. The same thread hop runs anything else that must
happen inside (DNS sockets, the container's nat rules; see manager.py).

The calls block: from asyncio, run them in a worker thread (pyroute2's sync API also
refuses to run inside a running event loop).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Protocol, TypeVar

from skiff.linux.syscalls import CLONE_NEWNET, setns
from skiff.network import firewall

log = logging.getLogger(__name__)
T = TypeVar("T")
LOOPBACK_INDEX = 1  # lo is always index 1 of a network namespace
IFF_UP = 1
NETLINK_ROUTE = 0
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4
RTN_UNICAST = 1


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

    def close(self) -> None:
        """Let go of netlink sockets and threads (daemon shutdown)."""


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
    """The real `Links`, over pyroute2's IPRoute.

    Host-side requests go to a few long-lived netlink sockets, each owned by one thread
    of a small pool: a socket costs ~2 ms to open (pyroute2 sets up an event loop for
    it), and pyroute2's sync IPRoute keeps per-thread state, so a socket is never shared
    between threads. Several threads, because deleting a veth waits ~20 ms for the
    kernel (an RCU grace period) and other containers' requests need not queue behind it.
    """

    THREADS = 4

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None  # made on first use, again after close
        self._pool_lock = threading.Lock()
        self._local = threading.local()

    def _socket(self) -> Any:
        ipr = getattr(self._local, "ipr", None)
        if ipr is None:
            from pyroute2 import IPRoute  # imported lazily: the CLI never needs it

            ipr = self._local.ipr = IPRoute()
        return ipr

    def _call(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(ipr)` on a pool thread with that thread's own socket."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.THREADS, thread_name_prefix="skiff-netlink")
            pool = self._pool
        return pool.submit(lambda: fn(self._socket())).result()

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        # Each socket is closed by its own thread (pyroute2 keeps per-thread state): one
        # task per thread, held at a barrier so that no thread takes two.
        barrier = threading.Barrier(self.THREADS)

        def close_own() -> None:
            ipr, self._local.ipr = getattr(self._local, "ipr", None), None
            if ipr is not None:
                with contextlib.suppress(Exception):
                    ipr.close()
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=10)

        for _ in range(self.THREADS):
            pool.submit(close_own)
        pool.shutdown(wait=True)

    def exists(self, name: str) -> bool:
        return _index(name) is not None

    def ensure_bridge(self, name: str, gateway: IPv4Interface, mtu: int = 1500) -> bool:
        def body(ipr: Any) -> bool:
            created = False
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
            return created

        created = self._call(body)
        # Published ports from 127.0.0.1: a loopback source may leave through this bridge.
        write_sysctl(f"net.ipv4.conf.{name}.route_localnet", "1")
        return created

    def remove_link(self, name: str) -> None:
        index = _index(name)
        if index is None:
            return

        def body(ipr: Any) -> None:
            with contextlib.suppress(Exception):  # gone meanwhile (with its netns, say)
                ipr.link("del", index=index)

        self._call(body)

    def enslave(self, name: str, bridge: str) -> None:
        def body(ipr: Any) -> None:
            master = ipr.link_lookup(ifname=bridge)[0]
            for index in ipr.link_lookup(ifname=name):
                ipr.link("set", index=index, master=master, state="up")

        self._call(body)

    def routes(self) -> list[IPv4Network]:
        def body(ipr: Any) -> list[IPv4Network]:
            out = []
            for r in ipr.get_routes(family=2, table=254):
                dst = r.get_attr("RTA_DST")
                if dst:
                    out.append(IPv4Network(f"{dst}/{r['dst_len']}", strict=False))
            return out

        return self._call(body)

    def attach(self, a: Attachment) -> None:
        # One request makes the pair: the host end on its bridge and up, the container's
        # end created in its netns under its final name and MAC, so nothing is renamed or
        # moved afterwards. (pyroute2 sends no flags for the peer: it is set up inside.)
        bridge = _index(a.bridge)
        if bridge is None:
            raise RuntimeError(f"bridge {a.bridge} is missing")

        def create(ipr: Any) -> None:
            ipr.link(
                "add",
                ifname=a.host_veth,
                kind="veth",
                mtu=a.mtu,
                master=bridge,
                state="up",
                peer={"ifname": a.ifname, "net_ns_fd": a.netns, "mtu": a.mtu, "address": a.mac},
            )
            try:
                # Hairpin: a container reaching itself through a published port. (Not
                # through sysfs: its store spins on the RTNL lock while others hold it.)
                ipr.brport("set", index=_index(a.host_veth), mode=1)
            except Exception as e:
                log.debug("hairpin mode on %s: %s", a.host_veth, e)

        self._call(create)
        try:
            in_netns(a.netns, lambda: _configure_inside(a))
        except BaseException:
            with contextlib.suppress(Exception):
                self.remove_link(a.host_veth)
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


def _configure_inside(a: Attachment) -> None:
    """Address, link up, lo up, default route: on a plain netlink socket made in the
    container's netns (pyroute2 encodes the messages; its IPRoute would cost a new
    event loop per netns, more than these four requests together)."""
    from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE
    from pyroute2.netlink.rtnl import RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    index = socket.if_nametoindex(a.ifname)
    with _Rtnl() as rtnl:
        addr = ifaddrmsg()
        addr["family"] = socket.AF_INET
        addr["prefixlen"] = a.address.network.prefixlen
        addr["index"] = index
        addr["attrs"] = [("IFA_LOCAL", str(a.address.ip)), ("IFA_ADDRESS", str(a.address.ip))]
        rtnl.request(addr, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL)
        for link_index in (index, LOOPBACK_INDEX):
            link = ifinfmsg()
            link["index"] = link_index
            link["flags"] = link["change"] = IFF_UP
            rtnl.request(link, RTM_NEWLINK)
        if a.gateway is not None:
            route = rtmsg()
            route["family"] = socket.AF_INET
            route["table"] = RT_TABLE_MAIN
            route["proto"] = RTPROT_STATIC
            route["type"] = RTN_UNICAST
            route["attrs"] = [("RTA_GATEWAY", str(a.gateway))]
            rtnl.request(route, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE)


class _Rtnl:
    """A route netlink socket of the calling thread's netns, one request at a time."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def __enter__(self) -> _Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def request(self, msg: Any, kind: int, flags: int = 0) -> None:
        """Send `msg` (a pyroute2 message) and wait for its ack; an error is an OSError."""
        self.seq += 1
        msg["header"]["type"] = kind
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        self.sock.send(msg.data)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + NLMSG_HEADER.size <= len(data):
                length, kind_, _, seq, _ = NLMSG_HEADER.unpack_from(data, offset)
                if kind_ == NLMSG_ERROR and seq == self.seq:
                    (error,) = struct.unpack_from("=i", data, offset + NLMSG_HEADER.size)
                    if error:
                        raise OSError(-error, f"netlink: {os.strerror(-error)}")
                    return
                offset += max(length, NLMSG_HEADER.size)


def _index(name: str) -> int | None:
    """The index of a link of the calling thread's netns (None: no such link). An ioctl:
    much cheaper than pyroute2's link_lookup, which dumps every link of the host."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None
