"""NetworkManager's bookkeeping with fake links and a fake iptables: no root needed."""

from __future__ import annotations

import json
import socket
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from skiff.errors import Conflict, Forbidden, InvalidArgument, NotFound
from skiff.network import NetworkConfig, NetworkManager, PortBinding
from skiff.testing.network import FakeIptables, FakeLinks


def make(tmp_path: Path, links: FakeLinks | None = None) -> tuple[NetworkManager, FakeLinks]:
    links = links or FakeLinks()
    cfg = NetworkConfig(
        state_dir=str(tmp_path / "net"),
        chain_prefix="SKU",
        default_bridge="sku0",
        bridge_prefix="sku-",
        address_pools=[("10.213.0.0/16", 24)],
        dns_upstreams=[("127.0.0.1", 9)],
        port_range=(0, 0),
        ip_forward=False,
    )
    mgr = NetworkManager(cfg, links=links, iptables=FakeIptables("SKU"))
    mgr.restore()
    return mgr, links


@pytest.fixture
def netns(tmp_path: Path) -> str:
    """Stands in for /proc/PID/ns/net: any file whose inode stays the same."""
    p = tmp_path / "ns1"
    p.write_text("")
    return str(p)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_default_network_and_user_networks(tmp_path: Path) -> None:
    mgr, links = make(tmp_path)
    try:
        default = mgr.network("bridge")
        assert default.default
        assert default.bridge == "sku0"
        assert default.subnet == "10.213.0.0/24"
        assert links.links["sku0"] == "bridge"
        app = mgr.create_network("app")
        assert app.subnet == "10.213.1.0/24"
        assert app.gateway == "10.213.1.1"
        assert app.bridge == ("sku-" + app.id)[:15]
        assert mgr.network(app.id[:6]) is app
        with pytest.raises(Conflict, match="network with name app already exists"):
            mgr.create_network("app")
        with pytest.raises(
            Forbidden, match=r"^Pool overlaps with other one on this address space$"
        ):
            mgr.create_network("other", subnet="10.213.1.128/25")
        with pytest.raises(Forbidden):
            mgr.create_network("onhost", subnet="192.0.2.0/24")  # the host's eth0 route
        with pytest.raises(Forbidden, match="pre-defined"):
            mgr.remove_network("bridge")
        mgr.remove_network("app")
        assert ("remove_link", app.bridge) in links.calls
        with pytest.raises(NotFound, match="network app not found"):
            mgr.network("app")
    finally:
        mgr.destroy()
    assert not links.links


def test_connect_allocates_and_persists(tmp_path: Path, netns: str) -> None:
    mgr, links = make(tmp_path)
    try:
        mgr.create_network("app", subnet="10.213.50.0/24")
        ep = mgr.connect("app", "c" * 64, netns, name="web", aliases=["www"])
        assert ep.ip == "10.213.50.2/24"
        assert ep.mac == "02:42:0a:d5:32:02"
        assert ep.ifname == "eth0"
        att = links.attached[ep.host_veth]
        assert att.gateway == IPv4Address("10.213.50.1")
        assert att.netns == netns
        ep2 = mgr.connect("bridge", "c" * 64, netns)
        assert ep2.ifname == "eth1"
        assert links.attached[ep2.host_veth].gateway is None
        with pytest.raises(Forbidden, match="already exists in network app"):
            mgr.connect("app", "c" * 64, netns)
        with pytest.raises(InvalidArgument, match="user defined networks only"):
            mgr.connect("bridge", "d" * 64, netns, ip="10.213.0.9")
        saved = json.loads((tmp_path / "net" / "endpoints.json").read_text())
        assert saved["endpoints"][ep.id]["ip"] == "10.213.50.2/24"
        with pytest.raises(Conflict, match="has active endpoints"):
            mgr.remove_network("app")
        mgr.disconnect("app", "c" * 64)
        assert ep.host_veth not in links.links
        # round robin: the next container does not get .2 back at once
        assert mgr.connect("app", "e" * 64, netns).ip == "10.213.50.3/24"
        assert mgr.connect("app", "f" * 64, netns, ip="10.213.50.2").ip == "10.213.50.2/24"
    finally:
        mgr.destroy()


def test_dns_view(tmp_path: Path, netns: str) -> None:
    mgr, links = make(tmp_path)
    other_ns = tmp_path / "ns2"
    other_ns.write_text("")
    try:
        mgr.create_network("app")
        mgr.create_network("other")
        a = mgr.connect("app", "a" * 64, netns, name="web", aliases=["www"])
        b = mgr.connect("app", "b" * 64, str(other_ns), name="db")
        mgr.connect("other", "a" * 64, netns, name="web")
        assert set(links.dns) == {netns, str(other_ns)}
        assert mgr.lookup(str(other_ns), "WEB.") == [IPv4Address(a.address)]
        assert mgr.lookup(str(other_ns), "www.app") == [IPv4Address(a.address)]
        assert mgr.lookup(str(other_ns), "a" * 12) == [IPv4Address(a.address)]
        assert mgr.lookup(netns, "db") == [IPv4Address(b.address)]
        assert mgr.lookup(netns, "nothere") is None
        assert mgr.reverse(netns, IPv4Address(b.address)) == "db.app"
        assert "nameserver 127.0.0.11" in mgr.resolv_conf("a" * 64)
        mgr.disconnect("app", "b" * 64)
        assert str(other_ns) not in links.dns
        assert ("close_dns", str(other_ns)) in links.calls
        assert mgr.lookup(netns, "db") is None
    finally:
        mgr.destroy()


def test_default_bridge_has_no_dns(tmp_path: Path, netns: str) -> None:
    mgr, links = make(tmp_path)
    try:
        mgr.connect("bridge", "a" * 64, netns, name="web")
        assert not links.dns
        assert "127.0.0.11" not in mgr.resolv_conf("a" * 64)
        assert mgr.hosts("a" * 64, "aaaa").endswith("10.213.0.2\taaaa\n")
    finally:
        mgr.destroy()


def test_ports_published_and_conflicts_leave_nothing(tmp_path: Path, netns: str) -> None:
    mgr, links = make(tmp_path)
    port = free_port()
    ipt = mgr.iptables
    assert isinstance(ipt, FakeIptables)
    try:
        ep = mgr.connect(
            "bridge", "a" * 64, netns, ports=[PortBinding(80, "tcp", "127.0.0.1", port)]
        )
        assert f"--dport {port} -j DNAT --to-destination {ep.address}:80" in ipt.loaded
        before = dict(links.links)
        with pytest.raises(
            Conflict, match=f"Bind for 127.0.0.1:{port} failed: port is already allocated"
        ):
            mgr.connect(
                "bridge", "b" * 64, netns, ports=[PortBinding(80, "tcp", "127.0.0.1", port)]
            )
        assert links.links == before
        assert len(mgr.endpoints()) == 1
        # a host process holding the port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            held = s.getsockname()[1]
            with pytest.raises(Conflict, match="port is already allocated"):
                mgr.connect(
                    "bridge", "b" * 64, netns, ports=[PortBinding(80, "tcp", "127.0.0.1", held)]
                )
        # a failed attach releases the address and the port it reserved
        links.fail_attach = OSError("boom")
        p2 = free_port()
        with pytest.raises(OSError, match="boom"):
            mgr.connect("bridge", "b" * 64, netns, ports=[PortBinding(80, "tcp", "127.0.0.1", p2)])
        links.fail_attach = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", p2))  # free again
        assert mgr.ports("a" * 64) == [PortBinding(80, "tcp", "127.0.0.1", port)]
    finally:
        mgr.destroy()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # destroy let the reservation go


def test_restart_restores_and_forgets_dead(tmp_path: Path, netns: str) -> None:
    mgr, links = make(tmp_path)
    port = free_port()
    dead = tmp_path / "dead"
    dead.write_text("")
    mgr.create_network("app")
    live = mgr.connect(
        "app", "a" * 64, netns, name="web", ports=[PortBinding(80, "tcp", "127.0.0.1", port)]
    )
    gone = mgr.connect("app", "b" * 64, str(dead), name="db")
    mgr.close()  # the daemon stops; the network stays
    dead.unlink()
    links.calls.clear()
    mgr2, _ = make(tmp_path, links)
    try:
        assert not [c for c in links.calls if c[0] == "attach"]  # running veths untouched
        assert [e.id for e in mgr2.endpoints()] == [live.id]
        assert gone.host_veth not in links.links
        with pytest.raises(Conflict):  # the port is reserved again
            mgr2.connect("app", "c" * 64, netns, ports=[PortBinding(80, "tcp", "127.0.0.1", port)])
        assert mgr2.lookup(netns, "web") == [IPv4Address(live.address)]
        assert mgr2.network("app").last == gone.address  # round robin survives restarts
        # a bridge deleted behind skiff's back comes back with its veths on it
        bridge = mgr2.network("app").bridge
        links.remove_link(bridge)
        links.calls.clear()
        mgr2.restore()
        assert ("ensure_bridge", bridge) in links.calls
        assert ("enslave", live.host_veth) in links.calls
    finally:
        mgr2.destroy()
