"""Containers on networks: the hook ContainerService calls, over skiff.network's manager.

    hook = ContainerNetworking(manager, exec_root, default_network=True)
    service.network = hook; hook.containers = service
    hook.check_create(c, body)   create: network mode and NetworkingConfig checked and kept
                                 in `c.networks` ({name: {NetworkID, Aliases, IPAMConfig}})
    hook.attach(c)               start, before the runtime: netns file, endpoints, hosts and
                                 resolv.conf, the netns path in config.json  (blocking)
                                 = hook.prepare(c) (netns file, config.json: before the
                                 runtime's create) + hook.plug(c) (endpoints, files: may run
                                 during the create, done before the process starts)
    hook.detach(c)               exit, failed start, rm: endpoints and the netns file (blocking)
                                 = hook.release(c) (all but the host veths, whose names it
                                 returns) + hook.delete_links(names) (slow: the kernel)
    hook.connect / disconnect    /networks/{id}/connect|disconnect, live or for the next start
    hook.settings(c)             inspect's NetworkSettings;  hook.summary(c): ps's Ports

As dockerd does, each container on a bridge gets a network namespace of its own, made by
skiffd before the runtime runs (a file bind-mounted under EXEC_ROOT/netns, the
SandboxKey) and given to the runtime as the spec's network namespace path; it is
removed when the container stops. Published ports go on the first network's endpoint.
`--network container:NAME` joins the other container's namespace (its SandboxKey, else
/proc/PID/ns/net) and shares its hosts and resolv.conf; `host` and `none` need nothing
here (bundle.py's spec).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from typing import TYPE_CHECKING, Any

from skiff.errors import Conflict, Forbidden, InvalidArgument, NotFound
from skiff.network import netns
from skiff.network.manager import DEFAULT_NETWORK, NetworkManager
from skiff.network.ports import PortBinding, parse_port_range
from skiff.network.state import Endpoint, Network

if TYPE_CHECKING:
    from skiff.services.containers import Container, ContainerService


def split_port(key: str) -> tuple[str, str]:
    port, _, proto = key.partition("/")
    return port, proto or "tcp"


def wanted_ports(c: Container) -> list[PortBinding]:
    """HostConfig.PortBindings (+ every exposed port with PublishAllPorts) as bindings."""
    bindings: dict[str, Any] = c.host_config.get("PortBindings") or {}
    out: list[PortBinding] = []
    seen: set[str] = set()
    for key, items in bindings.items():
        port, proto = split_port(key)
        seen.add(f"{port}/{proto}")
        for b in items or [{}]:
            host_ip = str((b or {}).get("HostIp") or "")
            if ":" in host_ip:  # IPv6: not served (no IPv6 on skiff's bridges yet)
                continue
            host_port = str((b or {}).get("HostPort") or "")
            start, end = parse_port_range(host_port) if host_port else (0, 0)
            out.append(
                PortBinding(
                    int(port),
                    proto,
                    "" if host_ip == "0.0.0.0" else host_ip,
                    start,
                    end if end != start else 0,
                )
            )
    if c.host_config.get("PublishAllPorts"):
        for key in c.config.get("ExposedPorts") or {}:
            port, proto = split_port(key)
            if f"{port}/{proto}" not in seen:
                out.append(PortBinding(int(port), proto))
    return out


def empty_endpoint() -> dict[str, Any]:
    """Docker's EndpointSettings with nothing set (host and none networks show it)."""
    return {
        "IPAMConfig": None,
        "Links": None,
        "Aliases": None,
        "MacAddress": "",
        "DriverOpts": None,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": None,
    }


def _write_in_place(path: str, text: str) -> None:
    # In place, not renamed: the file may be bind-mounted into a running container.
    # Overwritten, then cut to length, rather than truncated first: ext4 flushes a file
    # truncated to zero when it is closed (auto_da_alloc), ~0.7 ms against ~0.02.
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        done = 0
        while done < len(data):
            done += os.write(fd, data[done:])
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


class ContainerNetworking:
    def __init__(
        self, manager: NetworkManager, exec_root: str, *, default_network: bool = True
    ) -> None:
        self.mgr = manager
        self.netns_dir = os.path.join(exec_root, "netns")
        self.default_network = default_network
        self.containers: ContainerService | None = None

    def sandbox_key(self, c: Container) -> str:
        return os.path.join(self.netns_dir, c.id[:12])

    def spec_netns(self, c: Container) -> str:
        """The netns path for the spec at create ("" if not one of the hook's own)."""
        return self.sandbox_key(c) if c.networks else ""

    # --- create --------------------------------------------------------------------

    def primary(self, c: Container) -> str:
        """The network the mode names ("" for host, none, container: and no bridge)."""
        mode = c.network_mode
        if mode in ("default", DEFAULT_NETWORK):
            return DEFAULT_NETWORK if self.default_network else ""
        if mode in ("host", "none") or mode.startswith("container:"):
            return ""
        return mode

    def check_create(self, c: Container, body: dict[str, Any]) -> None:
        mode = c.network_mode
        if mode.startswith("container:"):
            assert self.containers is not None
            # dockerd creates it even when the other container does not exist (start
            # fails then), and keeps the other container by id when it does.
            with contextlib.suppress(NotFound):
                other = self.containers.get(mode.split(":", 1)[1])
                if other.id == c.id:
                    raise InvalidArgument("cannot join own network")
                c.host_config["NetworkMode"] = "container:" + other.id
        endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        primary = self.primary(c)
        c.networks = {}
        if primary:
            net = self.mgr.network(primary)
            cfg = (
                endpoints.get(mode)
                or endpoints.get(net.name)
                or endpoints.get(net.id)
                or endpoints.get("default")
                or {}
            )
            self._add(c, net, cfg)
        for ref, cfg in endpoints.items():
            if not primary:
                break
            if ref in ("default", mode):
                continue
            net = self.mgr.network(ref)
            if net.name not in c.networks:
                self._add(c, net, cfg or {})

    def _add(self, c: Container, net: Network, cfg: dict[str, Any]) -> None:
        aliases = [str(a) for a in cfg.get("Aliases") or []]
        ipam = cfg.get("IPAMConfig") or {}
        ip = str(ipam.get("IPv4Address") or "")
        if net.default and aliases:
            raise InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
            )
        if net.default and ip:
            raise InvalidArgument(
                "user specified IP address is supported on user defined networks only"
            )
        c.networks[net.name] = {
            "NetworkID": net.id,
            "Aliases": aliases,
            "IPAMConfig": {"IPv4Address": ip} if ip else None,
        }

    # --- start and stop (blocking) ---------------------------------------------------

    def _network(self, name: str, cfg: dict[str, Any]) -> Network:
        try:
            return self.mgr.network(str(cfg.get("NetworkID") or name))
        except NotFound:
            return self.mgr.network(name)

    def attach(self, c: Container) -> None:
        """prepare() then plug(): everything the container's network needs, in one go."""
        if self.prepare(c):
            try:
                self.plug(c)
            except BaseException:
                self.detach(c)
                raise

    def prepare(self, c: Container) -> bool:
        """What the runtime needs before it creates the container: the netns file and
        its path in config.json (or another container's netns, for container:NAME).
        True if `plug` has endpoints to add; until it ran, the netns has only lo."""
        mode = c.network_mode
        if mode.startswith("container:"):
            self._join(c, mode.split(":", 1)[1])
            return False
        if not c.networks:
            return False
        path = netns.create(self.sandbox_key(c))
        try:
            self._set_spec_netns(c, path)
        except BaseException:
            self.detach(c)
            raise
        return True

    def plug(self, c: Container) -> None:
        """The endpoints in the prepared netns, then hosts and resolv.conf (written in
        place, so a runtime that already bind-mounted them shows the new text). May run
        while the runtime creates the container: it only has to be done before the
        container's process starts. On failure the caller detaches."""
        path = self.sandbox_key(c)
        first = True
        for name, cfg in c.networks.items():
            net = self._network(name, cfg)
            ipam = cfg.get("IPAMConfig") or {}
            self.mgr.connect(
                net.id,
                c.id,
                path,
                name=c.name,
                aliases=cfg.get("Aliases") or [],
                ip=str(ipam.get("IPv4Address") or ""),
                ports=wanted_ports(c) if first else (),
                default_route=first,
            )
            first = False
        self._write_files(c)

    def _join(self, c: Container, ref: str) -> None:
        assert self.containers is not None
        other = self.containers.get(ref)
        if other.state.status not in ("running", "paused") or not other.state.pid:
            raise Conflict(f"cannot join network of a non running container: {other.id}")
        key = self.sandbox_key(other)
        path = key if netns.is_netns(key) else f"/proc/{other.state.pid}/ns/net"
        if other.network_mode == "host":
            path = "/proc/1/ns/net"
        for name in ("hosts", "resolv.conf", "hostname"):
            with (
                contextlib.suppress(OSError),
                open(os.path.join(other.dir, name), encoding="utf-8") as f,
            ):
                _write_in_place(os.path.join(c.dir, name), f.read())
        self._set_spec_netns(c, path)

    def _write_files(self, c: Container) -> None:
        hc = c.host_config
        extra = []
        for item in hc.get("ExtraHosts") or []:
            host, _, ip = str(item).partition(":")
            extra.append((host, ip))
        hosts = self.mgr.hosts(c.id, c.hostname, extra)
        resolv = self.mgr.resolv_conf(
            c.id,
            dns=list(hc.get("Dns") or []),
            dns_search=list(hc.get("DnsSearch") or []),
            dns_options=list(hc.get("DnsOptions") or []),
        )
        for name, text in (("hosts", hosts), ("resolv.conf", resolv)):
            path = os.path.join(c.dir, name)
            if os.path.exists(path):
                _write_in_place(path, text)

    def _set_spec_netns(self, c: Container, path: str) -> None:
        from skiff.containers.spec import join_namespaces

        config = os.path.join(c.dir, "config.json")
        with open(config, encoding="utf-8") as f:
            text = f.read()
        if f'"path": {json.dumps(path)}' in text:  # set at create (spec_netns): no parse
            return
        spec = json.loads(text)
        if not join_namespaces(spec, {"network": path}):
            return
        tmp = config + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(spec, f, indent=1)
        os.replace(tmp, config)

    def detach(self, c: Container) -> None:
        self.delete_links(self.release(c))

    def release(self, c: Container) -> list[str]:
        """detach() but for deleting the host veths: their names, for delete_links()."""
        veths = self.mgr.disconnect_all(c.id, netns_going=True, delete_links=False)
        with contextlib.suppress(OSError):
            netns.remove(self.sandbox_key(c))
        return veths

    def delete_links(self, names: list[str]) -> None:
        self.mgr.delete_links(names)

    # --- connect and disconnect (/networks/{id}/connect) -------------------------------

    def _running_netns(self, c: Container) -> str:
        key = self.sandbox_key(c)
        return key if c.state.status in ("running", "paused") and netns.is_netns(key) else ""

    def connect(self, c: Container, ref: str, cfg: dict[str, Any]) -> None:
        mode = c.network_mode
        if mode in ("host", "none") or mode.startswith("container:"):
            raise Forbidden(
                "container sharing network namespace with another container or host cannot "
                "be connected to any other network"
            )
        net = self.mgr.network(ref)
        if net.name in c.networks:
            raise Forbidden(f"endpoint with name {c.name} already exists in network {net.name}")
        before = dict(c.networks)
        self._add(c, net, cfg)
        path = self._running_netns(c)
        if path:
            try:
                ipam = c.networks[net.name].get("IPAMConfig") or {}
                self.mgr.connect(
                    net.id,
                    c.id,
                    path,
                    name=c.name,
                    aliases=c.networks[net.name]["Aliases"],
                    ip=str(ipam.get("IPv4Address") or ""),
                    default_route=False,
                )
            except BaseException:
                c.networks = before
                raise
            self._write_files(c)
        elif c.state.status in ("running", "paused"):
            c.networks = before
            raise Forbidden(f"container {c.id} has no network namespace of its own")

    def disconnect(self, c: Container, ref: str, force: bool = False) -> None:
        try:
            net = self.mgr.network(ref)
        except NotFound:
            if force and ref in c.networks:
                del c.networks[ref]
                return
            raise
        if net.name not in c.networks:
            raise Forbidden(f"container {c.id} is not connected to network {net.name}")
        if self._running_netns(c):
            with contextlib.suppress(NotFound):
                self.mgr.disconnect(net.id, c.id)
            self._write_files(c)
        del c.networks[net.name]

    # --- what inspect and ps show --------------------------------------------------------

    def _endpoints(self, c: Container) -> dict[str, Endpoint]:
        if c.state.status not in ("running", "paused", "restarting"):
            return {}
        return {e.network_id: e for e in self.mgr.endpoints(c.id)}

    def networks(self, c: Container) -> dict[str, Any]:
        mode = c.network_mode
        if mode in ("host", "none"):
            return {mode: empty_endpoint()}
        eps = self._endpoints(c)
        out: dict[str, Any] = {}
        for name, cfg in c.networks.items():
            entry = empty_endpoint()
            try:
                net: Network | None = self._network(name, cfg)
            except NotFound:
                net = None
            aliases = list(cfg.get("Aliases") or [])
            entry["IPAMConfig"] = cfg.get("IPAMConfig")
            entry["NetworkID"] = net.id if net else str(cfg.get("NetworkID") or "")
            ep = eps.get(net.id) if net else None
            if net is not None and not net.default:
                entry["Aliases"] = aliases or None
                if ep is not None:
                    entry["Aliases"] = [*aliases, c.id[:12]]
                    entry["DNSNames"] = [c.name, *aliases, c.id[:12]]
            if ep is not None and net is not None:
                entry["MacAddress"] = ep.mac
                entry["EndpointID"] = ep.id
                entry["Gateway"] = net.gateway
                entry["IPAddress"] = ep.address
                entry["IPPrefixLen"] = int(ep.ip.split("/")[1])
            out[name] = entry
        return out

    def ports(self, c: Container) -> dict[str, Any]:
        """NetworkSettings.Ports: every exposed or published port of a running container."""
        eps = self._endpoints(c)
        if not eps:
            return {}
        out: dict[str, Any] = {}
        for key in c.config.get("ExposedPorts") or {}:
            port, proto = split_port(key)
            out[f"{port}/{proto}"] = None
        for ep in eps.values():
            for p in ep.ports:
                items = out.get(p.key) or []
                items.append({"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)})
                out[p.key] = items
        return out

    def settings(self, c: Container) -> dict[str, Any]:
        networks = self.networks(c)
        key = self.sandbox_key(c) if self._endpoints(c) else ""
        wire: dict[str, Any] = {
            "Bridge": "",
            "SandboxID": hashlib.sha256(key.encode()).hexdigest() if key else "",
            "SandboxKey": key,
            "Ports": self.ports(c),
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": "",
            "Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "MacAddress": "",
            "Networks": networks,
        }
        default = networks.get(DEFAULT_NETWORK)
        if default is not None:
            for k in ("EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "MacAddress"):
                wire[k] = default[k]
        return wire

    def summary_ports(self, c: Container) -> list[dict[str, Any]]:
        """/containers/json's Ports."""
        out: list[dict[str, Any]] = []
        for key, items in self.ports(c).items():
            port, proto = split_port(key)
            if not items:
                out.append({"PrivatePort": int(port), "Type": proto})
            for b in items or []:
                out.append(
                    {
                        "IP": b["HostIp"],
                        "PrivatePort": int(port),
                        "PublicPort": int(b["HostPort"]),
                        "Type": proto,
                    }
                )
        if not out and not self._endpoints(c):
            for key in c.config.get("ExposedPorts") or {}:
                port, proto = split_port(key)
                out.append({"PrivatePort": int(port), "Type": proto})
        return out

    def network_containers(self, net: Network) -> dict[str, Any]:
        """/networks/{id}'s Containers."""
        out: dict[str, Any] = {}
        for ep in self.mgr.endpoints(network=net.id):
            name = ep.name
            if self.containers is not None:
                with contextlib.suppress(NotFound):
                    name = self.containers.get(ep.container_id).name
            out[ep.container_id] = {
                "Name": name,
                "EndpointID": ep.id,
                "MacAddress": ep.mac,
                "IPv4Address": ep.ip,
                "IPv6Address": "",
            }
        return out
