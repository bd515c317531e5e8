from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from skiff.errors import Conflict, Forbidden, InvalidArgument, Unavailable
from skiff.network import ipam


def pool(subnet: str = "10.0.0.0/29", **kw: object) -> ipam.AddressPool:
    net = IPv4Network(subnet)
    return ipam.AddressPool(net, net.network_address + 1, **kw)  # type: ignore[arg-type]


def test_allocates_in_order_skipping_gateway_and_never_twice() -> None:
    p = pool()
    got = [str(p.allocate()) for _ in range(5)]
    assert got == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    with pytest.raises(Unavailable, match="no available IPv4 addresses"):
        p.allocate()


def test_release_is_round_robin_not_immediate_reuse() -> None:
    p = pool("10.0.0.0/24")
    a = p.allocate()
    b = p.allocate()
    p.release(a)
    assert p.allocate() == b + 1
    # wraps around to the freed one eventually
    q = pool("10.0.0.0/29")
    addrs = [q.allocate() for _ in range(5)]
    q.release(addrs[1])
    assert q.allocate() == addrs[1]


def test_state_round_trip_keeps_last() -> None:
    p = pool("10.0.0.0/24")
    p.allocate()
    last = p.allocate()
    q = pool("10.0.0.0/24", allocated=p.allocated, last=last)
    assert q.allocate() == last + 1


def test_requested_addresses() -> None:
    p = pool("10.0.0.0/24")
    assert p.allocate("10.0.0.50") == IPv4Address("10.0.0.50")
    with pytest.raises(Conflict, match="Address already in use"):
        p.allocate("10.0.0.50")
    with pytest.raises(Conflict):
        p.allocate("10.0.0.1")  # the gateway
    with pytest.raises(InvalidArgument, match="does not belong"):
        p.allocate("10.9.0.5")


def test_ip_range_limits_dynamic_allocation() -> None:
    p = pool("10.0.0.0/24", ip_range=IPv4Network("10.0.0.128/30"))
    got = [p.allocate() for _ in range(4)]
    assert [str(a) for a in got] == ["10.0.0.128", "10.0.0.129", "10.0.0.130", "10.0.0.131"]
    with pytest.raises(Unavailable):
        p.allocate()
    assert p.allocate("10.0.0.7") == IPv4Address("10.0.0.7")  # --ip may be outside the range


def test_gateway_and_range_must_be_inside() -> None:
    with pytest.raises(InvalidArgument):
        ipam.AddressPool(IPv4Network("10.0.0.0/24"), IPv4Address("10.0.1.1"))
    with pytest.raises(InvalidArgument):
        ipam.AddressPool(
            IPv4Network("10.0.0.0/24"), IPv4Address("10.0.0.1"), IPv4Network("10.0.1.0/28")
        )


def test_choose_subnet_skips_networks_and_routes() -> None:
    cands = ipam.candidate_subnets(ipam.DEFAULT_POOLS)
    got = ipam.choose_subnet(
        cands,
        [IPv4Network("172.17.0.0/16")],
        [IPv4Network("0.0.0.0/0"), IPv4Network("172.18.5.0/24")],
    )
    assert got == IPv4Network("172.19.0.0/16")


def test_choose_subnet_exhausted() -> None:
    with pytest.raises(Unavailable):
        ipam.choose_subnet([IPv4Network("10.0.0.0/24")], [IPv4Network("10.0.0.0/16")])


def test_check_subnet_overlap_wording() -> None:
    with pytest.raises(Forbidden, match=r"^Pool overlaps with other one on this address space$"):
        ipam.check_subnet(IPv4Network("10.1.0.0/16"), [IPv4Network("10.1.2.0/24")])
    with pytest.raises(Forbidden, match="host's route"):
        ipam.check_subnet(IPv4Network("192.0.2.0/25"), [], [IPv4Network("192.0.2.0/24")])
    ipam.check_subnet(IPv4Network("10.2.0.0/16"), [IPv4Network("10.1.0.0/16")])


def test_mac_is_dockers() -> None:
    assert ipam.mac_for(IPv4Address("172.17.0.2")) == "02:42:ac:11:00:02"


def test_parse_errors() -> None:
    with pytest.raises(InvalidArgument):
        ipam.parse_network("10.0.0.0/33")
    with pytest.raises(InvalidArgument):
        ipam.parse_address("nope")
