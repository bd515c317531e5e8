"""IP address management: subnets, gateways and the addresses handed to endpoints. Pure.

Vocabulary (libnetwork's): a network has one *pool* (its subnet), optionally narrowed to
an *ip range* that dynamic allocation draws from; the *gateway* is the bridge's own
address. `AddressPool` is rebuilt from persisted state (the addresses in use and the
last one handed out) and never hands out an address twice; like libnetwork it allocates
round-robin after the last address given, so a released address is not reused at once
(a peer's ARP cache may still point at the old owner).

Choosing a subnet for a new network (`choose_subnet`) skips every subnet that overlaps an
existing network or a route of the host, so skiff never shadows the host's own networks.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network

from skiff.errors import Conflict, Forbidden, InvalidArgument, Unavailable

POOL_OVERLAP = "Pool overlaps with other one on this address space"

# Docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20 steps.
DEFAULT_POOLS: tuple[tuple[str, int], ...] = (
    ("172.17.0.0/16", 16),
    ("172.18.0.0/15", 16),
    ("172.20.0.0/14", 16),
    ("172.24.0.0/13", 16),
    ("192.168.0.0/16", 20),
)


def parse_network(text: str, what: str = "subnet") -> IPv4Network:
    try:
        return IPv4Network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r}") from None


def parse_address(text: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise InvalidArgument(f"invalid IPv4 address: {text}") from None


def candidate_subnets(pools: Iterable[tuple[str, int]] = DEFAULT_POOLS) -> Iterable[IPv4Network]:
    for base, prefix in pools:
        yield from IPv4Network(base).subnets(new_prefix=prefix)


def choose_subnet(
    candidates: Iterable[IPv4Network],
    networks: Iterable[IPv4Network],
    routes: Iterable[IPv4Network] = (),
) -> IPv4Network:
    """The first candidate overlapping neither an existing network nor a host route."""
    taken = [*networks, *(r for r in routes if r.prefixlen > 0)]  # the default route covers all
    for subnet in candidates:
        if not any(subnet.overlaps(t) for t in taken):
            return subnet
    raise Unavailable(
        "could not find an available, non-overlapping IPv4 address pool among the defaults "
        "to assign to the network"
    )


def check_subnet(
    subnet: IPv4Network, networks: Iterable[IPv4Network], routes: Iterable[IPv4Network] = ()
) -> None:
    """Refuse a requested subnet that overlaps another network (dockerd's 403) or a host route."""
    if any(subnet.overlaps(n) for n in networks):
        raise Forbidden(POOL_OVERLAP)
    for route in routes:
        if route.prefixlen > 0 and subnet.overlaps(route):
            raise Forbidden(f"{POOL_OVERLAP}: {subnet} overlaps the host's route to {route}")


def default_gateway(subnet: IPv4Network) -> IPv4Address:
    if subnet.num_addresses < 4:
        raise InvalidArgument(f"subnet {subnet} is too small for a network")
    return subnet.network_address + 1


class AddressPool:
    """The addresses of one network. `allocated` excludes the gateway; `last` is persisted."""

    def __init__(
        self,
        subnet: IPv4Network,
        gateway: IPv4Address,
        ip_range: IPv4Network | None = None,
        allocated: Iterable[IPv4Address] = (),
        last: IPv4Address | None = None,
        name: str = "",
    ) -> None:
        if gateway not in subnet:
            raise InvalidArgument(f"gateway {gateway} is not in subnet {subnet}")
        if ip_range is not None and not ip_range.subnet_of(subnet):
            raise InvalidArgument(f"ip range {ip_range} is not in subnet {subnet}")
        self.subnet = subnet
        self.gateway = gateway
        self.ip_range = ip_range or subnet
        self.allocated: set[IPv4Address] = set(allocated)
        self.last = last
        self.name = name

    def _usable(self, addr: IPv4Address) -> bool:
        reserved = (self.subnet.network_address, self.subnet.broadcast_address, self.gateway)
        return addr not in reserved

    def allocate(self, requested: str | IPv4Address | None = None) -> IPv4Address:
        if requested is not None:
            addr = IPv4Address(requested) if isinstance(requested, str) else requested
            if addr not in self.subnet:
                raise InvalidArgument(
                    f"Invalid address {addr}: It does not belong to any of this network's subnets"
                )
            if addr in self.allocated or not self._usable(addr):
                raise Conflict("Address already in use")
            self.allocated.add(addr)
            return addr
        first = int(self.ip_range.network_address)
        size = self.ip_range.num_addresses
        start = int(self.last) + 1 - first if self.last and self.last in self.ip_range else 0
        for i in range(size):
            addr = IPv4Address(first + (start + i) % size)
            if addr not in self.allocated and self._usable(addr):
                self.allocated.add(addr)
                self.last = addr
                return addr
        raise Unavailable(
            f"no available IPv4 addresses on this network's address pools: {self.name}"
        )

    def release(self, addr: IPv4Address) -> None:
        self.allocated.discard(addr)


def mac_for(addr: IPv4Address) -> str:
    """Docker's MAC for an address: 02:42 followed by the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in addr.packed)
