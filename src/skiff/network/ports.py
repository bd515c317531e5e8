"""Published ports: `-p` specs parsed as docker's (go-connections/nat) and host ports reserved.

    -p 8080:80            every host address, port 8080 -> container port 80/tcp
    -p 127.0.0.1:8080:80  one host address
    -p 80                 a free host port (from net.ipv4.ip_local_port_range)
    -p 127.0.0.1::80      one host address, a free port
    -p 53:53/udp          udp
    -p 8000-8001:80-81    ranges, one to one
    -p 8000-8010:80       any free host port of the range

The spec parser is pure. `reserve` binds a socket on the host port and keeps it: nothing
else on the host can take the port while a container publishes it (dockerd gets the same
from docker-proxy), and a port a host process already holds is refused up front, before
any rule is written.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from dataclasses import dataclass

from skiff.errors import Conflict, InvalidArgument

PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class PortBinding:
    """One container port published on one host port ("" host_ip: every address)."""

    container_port: int
    proto: str = "tcp"
    host_ip: str = ""
    host_port: int = 0  # 0: choose a free port
    host_port_end: int = 0  # with host_port: choose a free port in [host_port, host_port_end]

    @property
    def key(self) -> str:
        """Docker's name of the container side: "80/tcp"."""
        return f"{self.container_port}/{self.proto}"

    def bind_text(self) -> str:
        return f"{self.host_ip or '0.0.0.0'}:{self.host_port}"

    def to_json(self) -> dict[str, object]:
        return {
            "container_port": self.container_port,
            "proto": self.proto,
            "host_ip": self.host_ip,
            "host_port": self.host_port,
        }

    @classmethod
    def from_json(cls, d: dict[str, object]) -> PortBinding:
        return cls(
            container_port=int(str(d["container_port"])),
            proto=str(d["proto"]),
            host_ip=str(d["host_ip"]),
            host_port=int(str(d["host_port"])),
        )


def parse_port_range(text: str) -> tuple[int, int]:
    """ "80" -> (80, 80); "80-82" -> (80, 82); raises ValueError."""
    if not text:
        raise ValueError("empty port")
    first, sep, last = text.partition("-")
    start = int(first)
    end = int(last) if sep else start
    if not (0 < start <= 65535 and 0 < end <= 65535) or end < start:
        raise ValueError(f"bad port range {text}")
    return start, end


def _split(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def parse_port_spec(raw: str) -> list[PortBinding]:
    """One `-p` value as the bindings it stands for, with docker's error wording."""
    ip, host, container = _split(raw)
    container, _, proto = container.partition("/")
    proto = proto or "tcp"
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidArgument(f"invalid IP address: {ip}") from None
        if ip == "0.0.0.0":
            ip = ""
    if not container:
        raise InvalidArgument(f"no port specified: {raw}<empty>")
    try:
        start, end = parse_port_range(container)
    except ValueError:
        raise InvalidArgument(f"invalid containerPort: {container}") from None
    host_start = host_end = 0
    if host:
        try:
            host_start, host_end = parse_port_range(host)
        except ValueError:
            raise InvalidArgument(f"invalid hostPort: {host}") from None
        if end - start != host_end - host_start and end != start:
            raise InvalidArgument(
                f"invalid ranges specified for container and host Ports: {container} and {host}"
            )
    if proto.lower() not in PROTOCOLS:
        raise InvalidArgument(f"invalid proto: {proto}")
    proto = proto.lower()
    if start == end and host_start != host_end:
        return [PortBinding(start, proto, ip, host_start, host_end)]
    return [
        PortBinding(p, proto, ip, host_start + i if host else 0)
        for i, p in enumerate(range(start, end + 1))
    ]


def local_port_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int]:
    try:
        with open(path) as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 49153, 65535


def already_allocated(binding: PortBinding) -> Conflict:
    return Conflict(f"Bind for {binding.bind_text()} failed: port is already allocated")


def reserve(proto: str, host_ip: str, port: int) -> socket.socket:
    """Bind (without listening) so no one else can take the port; raise OSError if taken."""
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    sock = socket.socket(family, kind)
    try:
        sock.bind((host_ip or "0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock


def reserve_binding(
    binding: PortBinding, held: set[tuple[str, str, int]], port_range: tuple[int, int] | None = None
) -> tuple[PortBinding, socket.socket]:
    """Reserve `binding`'s host port (choosing one if it is dynamic) and return it filled in.

    `held` names the (proto, host_ip, port) skiff has already given out, which this
    process may still hold or which a restart has not yet re-reserved.
    """
    if binding.proto == "sctp":
        raise InvalidArgument("sctp ports are not supported yet")

    def taken(port: int) -> bool:
        return any((binding.proto, ip, port) in held for ip in {binding.host_ip, ""}) or (
            binding.host_ip == "" and any(h[0] == binding.proto and h[2] == port for h in held)
        )

    if binding.host_port and not binding.host_port_end:
        if taken(binding.host_port):
            raise already_allocated(binding)
        try:
            return binding, reserve(binding.proto, binding.host_ip, binding.host_port)
        except OSError:
            raise already_allocated(binding) from None
    low, high = (
        (binding.host_port, binding.host_port_end)
        if binding.host_port
        else (port_range or local_port_range())
    )
    for port in range(low, high + 1):
        if taken(port):
            continue
        with contextlib.suppress(OSError):
            sock = reserve(binding.proto, binding.host_ip, port)
            return PortBinding(binding.container_port, binding.proto, binding.host_ip, port), sock
    raise Conflict(
        f"Bind for {binding.host_ip or '0.0.0.0'}:{low}-{high} failed: no free port in range"
        if binding.host_port
        else "no free host port to publish on"
    )
