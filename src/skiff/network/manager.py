"""`NetworkManager`: networks, endpoints, published ports and the embedded DNS, kept in step.

The manager owns the persisted state (state.py) and derives everything else from it:
the IPAM pools (ipam.py), skiff's iptables chains (firewall.py), the bridges (links.py)
and the DNS view (dns.py). One change goes through the same steps, undone in reverse if
a later step fails, so nothing is left half-done:

    connect:     address (IPAM) -> host ports reserved -> veth + eth0 in the netns
                 -> DNS sockets in the netns (DNS networks) -> state saved -> rules applied
    disconnect:  the reverse; an endpoint whose netns is gone just loses its bookkeeping

`restore()` after a daemon restart re-creates what is missing (bridges, rules, port
reservations, DNS listeners) without touching the veths of running containers, and
forgets endpoints whose netns has gone.

All methods block and are thread-safe; call them from a worker thread under asyncio.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from skiff.errors import Conflict, Forbidden, InvalidArgument, NotFound
from skiff.network import firewall, ipam, resolvconf
from skiff.network.dns import DnsServer
from skiff.network.links import Attachment, Links, NetlinkLinks
from skiff.network.ports import PortBinding, reserve, reserve_binding
from skiff.network.state import Endpoint, Network, Sandbox, State, StateFile

log = logging.getLogger(__name__)

DEFAULT_NETWORK = "bridge"


@dataclass
class NetworkConfig:
    state_dir: str
    chain_prefix: str = "SKIFF"
    default_bridge: str = "skiff0"
    default_subnet: str = ""  # "": the first free subnet of address_pools
    default_gateway: str = ""  # "": the subnet's first address (--bip gives it)
    default_ip_range: str = ""  # --fixed-cidr
    bridge_prefix: str = "skiff-"  # user networks: (prefix + id)[:15]
    veth_prefix: str = "veth"
    address_pools: Sequence[tuple[str, int]] = ipam.DEFAULT_POOLS
    host_resolv_conf: str = "/etc/resolv.conf"
    dns_upstreams: Sequence[tuple[str, int]] = ()  # (): the host's resolv.conf nameservers
    mtu: int = 1500
    ip_forward: bool = True  # turn net.ipv4.ip_forward on if it is off (as dockerd)
    port_range: tuple[int, int] | None = None  # None: net.ipv4.ip_local_port_range
    default_network: bool = True  # False: no "bridge" network (skiffd --bridge none)
    iptables: bool = True  # False: no rules at all (skiffd --iptables=false)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _netns_inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except OSError:
        return 0


FORWARDING = "/proc/sys/net/ipv4/ip_forward"


def _read_forwarding() -> str:
    try:
        with open(FORWARDING) as f:
            return f.read().strip()
    except OSError:
        return ""


def _write_forwarding(value: str) -> None:
    with open(FORWARDING, "w") as f:
        f.write(value)


def _no_iptables(argv: Sequence[str], stdin: str | None = None) -> str:
    return ""


class NetworkManager:
    def __init__(
        self,
        config: NetworkConfig,
        *,
        links: Links | None = None,
        iptables: firewall.Iptables | None = None,
    ) -> None:
        self.config = config
        self.links: Links = links or NetlinkLinks()
        self.iptables = iptables or (
            firewall.Iptables(firewall.Chains(config.chain_prefix))
            if config.iptables
            else firewall.Iptables(firewall.Chains(config.chain_prefix), _no_iptables)
        )
        self.store = StateFile(config.state_dir)
        self.state = self.store.load()
        self.lock = threading.RLock()
        self.dns = DnsServer(self, self._upstreams)
        self._reserved: dict[tuple[str, str, int], socket.socket] = {}
        self._names: dict[str, dict[str, list[IPv4Address]]] = {}
        self._reverse: dict[str, dict[IPv4Address, str]] = {}

    # -- lifecycle --

    def restore(self) -> list[str]:
        """Bring the host in line with the saved state; return ids of endpoints forgotten.

        Also the first call of a daemon: it creates the default network if there is none.
        """
        with self.lock:
            self.iptables.jumps_checked = False
            if self.config.default_network and not any(
                n.default for n in self.state.networks.values()
            ):
                self._create_default()
            if self.state.networks:
                self._enable_forwarding()
            for net in self.state.networks.values():
                created = self.links.ensure_bridge(
                    net.bridge,
                    IPv4Interface(f"{net.gateway}/{net.subnet.split('/')[1]}"),
                    self.config.mtu,
                )
                if created:  # someone deleted it: its veths still live, unattached
                    for e in self.state.endpoints.values():
                        if e.network_id == net.id and self.links.exists(e.host_veth):
                            self.links.enslave(e.host_veth, net.bridge)
            stale = [
                e.id
                for e in self.state.endpoints.values()
                if not _netns_inode(e.netns) or not self.links.exists(e.host_veth)
            ]
            for eid in stale:
                ep = self.state.endpoints.pop(eid)
                self.links.remove_link(ep.host_veth)
                self._release_ports(ep.ports)
            for ep in self.state.endpoints.values():
                for p in ep.ports:
                    key = (p.proto, p.host_ip, p.host_port)
                    if key not in self._reserved:
                        try:
                            self._reserved[key] = reserve(*key)
                        except OSError as e:
                            log.warning("port %s of %s is held elsewhere: %s", key, ep.id, e)
            for sandbox in list(self.state.sandboxes.values()):
                if _netns_inode(sandbox.netns) != sandbox.inode or not self._dns_endpoints(
                    sandbox.netns
                ):
                    del self.state.sandboxes[sandbox.netns]
                    self.dns.remove_sandbox(sandbox.netns)
                    continue
                self._open_sandbox(sandbox)
            self._commit()
            return stale

    def close(self) -> None:
        """Daemon shutdown: stop serving DNS and let go of port sockets; the network stays."""
        with self.lock:
            self.dns.stop()
            for sock in self._reserved.values():
                sock.close()
            self._reserved.clear()
            self.links.close()

    def destroy(self) -> None:
        """Remove everything skiff made: veths, bridges, rules, chains, the state file."""
        with self.lock:
            self.close()
            for ep in list(self.state.endpoints.values()):
                self.links.remove_link(ep.host_veth)
            for net in self.state.networks.values():
                self.links.remove_link(net.bridge)
            self.iptables.remove()
            if self.state.ip_forward_was:
                _write_forwarding(self.state.ip_forward_was)
            self.state = State()
            self.store.remove()
            self._rebuild_names()
            self.links.close()

    def _enable_forwarding(self) -> None:
        """Routing between bridges and out needs ip_forward; restored by destroy()."""
        if not self.config.ip_forward:
            return
        was = _read_forwarding()
        if was == "0":
            _write_forwarding("1")
            if not self.state.ip_forward_was:
                self.state.ip_forward_was = was

    # -- networks --

    def networks(self) -> list[Network]:
        with self.lock:
            return sorted(self.state.networks.values(), key=lambda n: n.name)

    def network(self, ref: str) -> Network:
        with self.lock:
            nets = self.state.networks
            if ref in nets:
                return nets[ref]
            for n in nets.values():
                if n.name == ref:
                    return n
            found = [n for n in nets.values() if n.id.startswith(ref)] if ref else []
            if len(found) == 1:
                return found[0]
            if found:
                raise InvalidArgument(f"network {ref} is ambiguous ({len(found)} matches found)")
            raise NotFound(f"network {ref} not found")

    def _taken_subnets(self) -> list[IPv4Network]:
        return [IPv4Network(n.subnet) for n in self.state.networks.values()]

    def _create_default(self) -> Network:
        subnet = (
            ipam.parse_network(self.config.default_subnet) if self.config.default_subnet else None
        )
        c = self.config
        return self._create(
            DEFAULT_NETWORK,
            subnet=subnet,
            gateway=ipam.parse_address(c.default_gateway) if c.default_gateway else None,
            ip_range=ipam.parse_network(c.default_ip_range, "ip range")
            if c.default_ip_range
            else None,
            bridge=c.default_bridge,
            default=True,
        )

    def create_network(
        self,
        name: str,
        *,
        subnet: str = "",
        gateway: str = "",
        ip_range: str = "",
        internal: bool = False,
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
    ) -> Network:
        with self.lock:
            if name in (DEFAULT_NETWORK, "host", "none"):
                raise Forbidden(f"{name} is a pre-defined network and cannot be created")
            return self._create(
                name,
                subnet=ipam.parse_network(subnet) if subnet else None,
                gateway=ipam.parse_address(gateway) if gateway else None,
                ip_range=ipam.parse_network(ip_range, "ip range") if ip_range else None,
                internal=internal,
                labels=labels or {},
                options=options or {},
            )

    def _create(
        self,
        name: str,
        *,
        subnet: IPv4Network | None,
        gateway: IPv4Address | None = None,
        ip_range: IPv4Network | None = None,
        internal: bool = False,
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
        bridge: str = "",
        default: bool = False,
    ) -> Network:
        if not name:
            raise InvalidArgument("network name must not be empty")
        if any(n.name == name for n in self.state.networks.values()):
            raise Conflict(f"network with name {name} already exists")
        routes = self.links.routes()
        if subnet is None:
            subnet = ipam.choose_subnet(
                ipam.candidate_subnets(self.config.address_pools), self._taken_subnets(), routes
            )
        else:
            ipam.check_subnet(subnet, self._taken_subnets(), routes)
        if gateway is None:
            gateway = ipam.default_gateway(subnet)
        ipam.AddressPool(subnet, gateway, ip_range)  # validates gateway and range
        net_id = secrets.token_hex(32)
        bridge = bridge or (self.config.bridge_prefix + net_id)[:15]
        net = Network(
            id=net_id,
            name=name,
            bridge=bridge,
            subnet=str(subnet),
            gateway=str(gateway),
            ip_range=str(ip_range) if ip_range else "",
            internal=internal,
            default=default,
            labels=labels or {},
            options=options or {},
            created=_now(),
        )
        if not self.state.networks:
            self._enable_forwarding()
        created = self.links.ensure_bridge(
            bridge, IPv4Interface(f"{gateway}/{subnet.prefixlen}"), self.config.mtu
        )
        self.state.networks[net_id] = net
        try:
            self._commit()
        except BaseException:
            del self.state.networks[net_id]
            if created:
                self.links.remove_link(bridge)
            with contextlib.suppress(Exception):
                self._commit()
            raise
        return net

    def remove_network(self, ref: str) -> None:
        with self.lock:
            net = self.network(ref)
            if net.default:
                raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
            if any(e.network_id == net.id for e in self.state.endpoints.values()):
                raise Conflict(
                    f"error while removing network: network {net.name} id {net.id} "
                    "has active endpoints"
                )
            del self.state.networks[net.id]
            self._commit()
            self.links.remove_link(net.bridge)

    def prune(self) -> list[str]:
        """Remove user networks without endpoints; return their names."""
        with self.lock:
            used = {e.network_id for e in self.state.endpoints.values()}
            names = [n.name for n in self.networks() if not n.default and n.id not in used]
            for name in names:
                self.remove_network(name)
            return names

    # -- endpoints --

    def endpoints(self, container_id: str = "", network: str = "") -> list[Endpoint]:
        with self.lock:
            net_id = self.network(network).id if network else ""
            return [
                e
                for e in self.state.endpoints.values()
                if (not container_id or e.container_id == container_id)
                and (not net_id or e.network_id == net_id)
            ]

    def _pool(self, net: Network) -> ipam.AddressPool:
        return ipam.AddressPool(
            IPv4Network(net.subnet),
            IPv4Address(net.gateway),
            IPv4Network(net.ip_range) if net.ip_range else None,
            (
                IPv4Address(e.address)
                for e in self.state.endpoints.values()
                if e.network_id == net.id
            ),
            IPv4Address(net.last) if net.last else None,
            name=f"{net.name} ({net.id[:12]})",
        )

    def connect(
        self,
        network: str,
        container_id: str,
        netns: str,
        *,
        name: str = "",
        aliases: Iterable[str] = (),
        ip: str = "",
        ports: Iterable[PortBinding] = (),
        default_route: bool | None = None,
    ) -> Endpoint:
        """Attach the container whose network namespace is at `netns` to `network`.

        `ports` are published on this endpoint; dynamic host ports are chosen here and
        the returned endpoint carries the ports actually bound. `default_route` defaults
        to "this is the container's first network".
        """
        aliases = list(aliases)
        ports = list(ports)
        with self.lock:
            net = self.network(network)
            if net.default and ip:
                raise InvalidArgument(
                    "user specified IP address is supported on user defined networks only"
                )
            if net.default and aliases:
                raise InvalidArgument(
                    "network-scoped alias is supported only for containers in user defined networks"
                )
            mine = [e for e in self.state.endpoints.values() if e.container_id == container_id]
            if any(e.network_id == net.id for e in mine):
                raise Forbidden(
                    f"endpoint with name {name or container_id} already exists in network "
                    f"{net.name}"
                )
            pool = self._pool(net)
            addr = pool.allocate(ip or None)
            bound: list[PortBinding] = []
            sockets: list[socket.socket] = []
            try:
                for p in ports:
                    got, sock = reserve_binding(p, set(self._reserved), self.config.port_range)
                    self._reserved[(got.proto, got.host_ip, got.host_port)] = sock
                    bound.append(got)
                    sockets.append(sock)
            except BaseException:
                self._release_ports(bound)
                raise
            used_if = {e.ifname for e in mine}
            ifname = next(f"eth{i}" for i in range(len(mine) + 1) if f"eth{i}" not in used_if)
            eid = secrets.token_hex(32)
            ep = Endpoint(
                id=eid,
                network_id=net.id,
                container_id=container_id,
                netns=netns,
                host_veth=(self.config.veth_prefix + eid)[:11],
                ifname=ifname,
                ip=f"{addr}/{IPv4Network(net.subnet).prefixlen}",
                mac=ipam.mac_for(addr),
                name=name,
                aliases=aliases,
                ports=bound,
            )
            route = default_route if default_route is not None else not mine
            attachment = Attachment(
                bridge=net.bridge,
                host_veth=ep.host_veth,
                netns=netns,
                address=IPv4Interface(ep.ip),
                mac=ep.mac,
                gateway=IPv4Address(net.gateway) if route and not net.internal else None,
                ifname=ifname,
                mtu=self.config.mtu,
            )
            # The endpoint holds its address (and its ports) from here on; the slow part,
            # netlink and the netns, runs without the lock so that other containers'
            # starts and stops go on meanwhile. Nothing else touches this netns now:
            # a container's networking changes one at a time (its lock in the service).
            self.state.endpoints[eid] = ep
            net.last = str(pool.last or "")
            open_dns = net.dns and netns not in self.state.sandboxes
        dns_sockets: tuple[socket.socket, socket.socket] | None = None
        attached = False
        try:
            self.links.attach(attachment)
            attached = True
            if open_dns:
                dns_sockets = self.links.open_dns(netns, 0, 0)
        except BaseException:
            if attached:
                with contextlib.suppress(Exception):
                    self.links.remove_link(ep.host_veth)
            with self.lock:
                self.state.endpoints.pop(eid, None)
                self._release_ports(bound)
            raise
        with self.lock:
            try:
                if dns_sockets is not None and netns not in self.state.sandboxes:
                    sandbox = Sandbox(netns=netns, inode=_netns_inode(netns))
                    self._add_sandbox(sandbox, *dns_sockets)
                    dns_sockets = None
                    self.state.sandboxes[netns] = sandbox
                self._commit()
            except BaseException:
                self._drop_endpoint(ep)
                with contextlib.suppress(Exception):
                    self._commit()
                raise
            finally:
                for sock in dns_sockets or ():
                    sock.close()
            return ep

    def disconnect(self, network: str, container_id: str) -> None:
        with self.lock:
            net = self.network(network)
            found = [
                e
                for e in self.state.endpoints.values()
                if e.network_id == net.id and e.container_id == container_id
            ]
            if not found:
                raise NotFound(f"container {container_id} is not connected to network {net.name}")
            self._forget_endpoint(found[0])
            self._commit()
        self.links.remove_link(found[0].host_veth)

    def disconnect_all(
        self, container_id: str, *, netns_going: bool = False, delete_links: bool = True
    ) -> list[str]:
        """Detach a container from every network (its removal, or its netns is gone).

        `netns_going`: its netns is removed next, so the DNS rules in it are left to die
        with it (no iptables run in it). `delete_links=False`: the host veths are left
        for the caller's delete_links() (returned), e.g. to do it in the background."""
        with self.lock:
            mine = [e for e in self.state.endpoints.values() if e.container_id == container_id]
            if not mine:
                return []
            for ep in mine:
                self._forget_endpoint(ep, close_dns=not netns_going)
            self._commit()
        veths = [ep.host_veth for ep in mine]
        if delete_links:
            self.delete_links(veths)
            return []
        return veths

    def delete_links(self, names: Iterable[str]) -> None:
        """Delete host veths, no error if gone. Without the lock: deleting a veth waits
        for the kernel (~20 ms), and its endpoint's bookkeeping is done already."""
        for name in names:
            self.links.remove_link(name)

    def _drop_endpoint(self, ep: Endpoint) -> None:
        self._forget_endpoint(ep)
        self.links.remove_link(ep.host_veth)

    def _forget_endpoint(self, ep: Endpoint, close_dns: bool = True) -> None:
        """Everything of an endpoint but its veth: state, ports, the sandbox's DNS."""
        self.state.endpoints.pop(ep.id, None)
        self._release_ports(ep.ports)
        sandbox = self.state.sandboxes.get(ep.netns)
        if sandbox is not None and not self._dns_endpoints(ep.netns):
            del self.state.sandboxes[ep.netns]
            self.dns.remove_sandbox(ep.netns)
            if close_dns and _netns_inode(ep.netns) == sandbox.inode:
                with contextlib.suppress(Exception):
                    self.links.close_dns(ep.netns)

    def _release_ports(self, ports: Iterable[PortBinding]) -> None:
        for p in ports:
            sock = self._reserved.pop((p.proto, p.host_ip, p.host_port), None)
            if sock is not None:
                sock.close()

    def ports(self, container_id: str) -> list[PortBinding]:
        with self.lock:
            return [p for e in self.endpoints(container_id) for p in e.ports]

    # -- DNS --

    def _dns_endpoints(self, netns: str) -> list[Endpoint]:
        return [
            e
            for e in self.state.endpoints.values()
            if e.netns == netns and self.state.networks[e.network_id].dns
        ]

    def _open_sandbox(self, sandbox: Sandbox) -> None:
        udp, tcp = self.links.open_dns(sandbox.netns, sandbox.udp_port, sandbox.tcp_port)
        self._add_sandbox(sandbox, udp, tcp)

    def _add_sandbox(self, sandbox: Sandbox, udp: socket.socket, tcp: socket.socket) -> None:
        try:
            sandbox.udp_port = udp.getsockname()[1]
            sandbox.tcp_port = tcp.getsockname()[1]
            self.dns.add_sandbox(sandbox.netns, udp, tcp)
        except BaseException:
            udp.close()
            tcp.close()
            raise

    def _upstreams(self) -> Sequence[tuple[str, int]]:
        if self.config.dns_upstreams:
            return self.config.dns_upstreams
        try:
            with open(self.config.host_resolv_conf) as f:
                text = f.read()
        except OSError:
            text = ""
        return [(ns, 53) for ns in resolvconf.external_servers(text)]

    def lookup(self, sandbox: str, name: str) -> list[IPv4Address] | None:
        return self._names.get(sandbox, {}).get(name.rstrip(".").lower())

    def reverse(self, sandbox: str, address: IPv4Address) -> str | None:
        return self._reverse.get(sandbox, {}).get(address)

    def _rebuild_names(self) -> None:
        """The names each sandbox can resolve, swapped in whole for the DNS thread."""
        by_net: dict[str, dict[str, list[IPv4Address]]] = {}
        rev_by_net: dict[str, dict[IPv4Address, str]] = {}
        for e in self.state.endpoints.values():
            net = self.state.networks[e.network_id]
            if not net.dns:
                continue
            addr = IPv4Address(e.address)
            names = by_net.setdefault(net.id, {})
            short = [e.name, *e.aliases, e.container_id[:12]]
            for n in filter(None, short):
                for key in (n.lower(), f"{n}.{net.name}".lower()):
                    if addr not in names.setdefault(key, []):
                        names[key].append(addr)
            if e.name:
                rev_by_net.setdefault(net.id, {})[addr] = f"{e.name}.{net.name}"
        names_view: dict[str, dict[str, list[IPv4Address]]] = {}
        reverse_view: dict[str, dict[IPv4Address, str]] = {}
        for netns in self.state.sandboxes:
            merged: dict[str, list[IPv4Address]] = {}
            rev: dict[IPv4Address, str] = {}
            for e in self._dns_endpoints(netns):
                for key, addrs in by_net.get(e.network_id, {}).items():
                    have = merged.setdefault(key, [])
                    have += [a for a in addrs if a not in have]
                rev.update(rev_by_net.get(e.network_id, {}))
            names_view[netns] = merged
            reverse_view[netns] = rev
        self._names, self._reverse = names_view, reverse_view

    # -- files for the container --

    def resolv_conf(self, container_id: str, **kwargs: Sequence[str]) -> str:
        """The container's /etc/resolv.conf (kwargs: dns, dns_search, dns_options)."""
        with self.lock:
            embedded = any(
                self.state.networks[e.network_id].dns for e in self.endpoints(container_id)
            )
        try:
            with open(self.config.host_resolv_conf) as f:
                host = f.read()
        except OSError:
            host = ""
        return resolvconf.container_resolv_conf(host, embedded_dns=embedded, **kwargs)

    def hosts(
        self, container_id: str, hostname: str, extra_hosts: Sequence[tuple[str, str]] = ()
    ) -> str:
        return resolvconf.container_hosts(
            hostname, [e.address for e in self.endpoints(container_id)], extra_hosts
        )

    # -- applying --

    def _commit(self) -> None:
        """Save the state, then make iptables and the DNS view match it."""
        self.store.save(self.state)
        self._rebuild_names()
        bridges = [
            firewall.BridgeRule(n.bridge, n.subnet, n.internal)
            for n in self.state.networks.values()
        ]
        dnats = [
            firewall.Dnat(p.proto, p.host_ip, p.host_port, e.address, p.container_port)
            for e in self.state.endpoints.values()
            for p in e.ports
        ]
        if bridges or self.iptables.loaded_text:  # no network yet: the host is left alone
            self.iptables.apply(bridges, dnats)
