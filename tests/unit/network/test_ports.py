from __future__ import annotations

import socket

import pytest

from skiff.errors import Conflict, InvalidArgument
from skiff.network.ports import PortBinding, parse_port_spec, reserve_binding


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("80", [PortBinding(80)]),
        ("8080:80", [PortBinding(80, "tcp", "", 8080)]),
        ("127.0.0.1:8080:80", [PortBinding(80, "tcp", "127.0.0.1", 8080)]),
        ("127.0.0.1::80", [PortBinding(80, "tcp", "127.0.0.1", 0)]),
        ("0.0.0.0:8080:80", [PortBinding(80, "tcp", "", 8080)]),
        ("53:53/udp", [PortBinding(53, "udp", "", 53)]),
        ("53/UDP", [PortBinding(53, "udp")]),
        ("[::1]:8080:80", [PortBinding(80, "tcp", "::1", 8080)]),
        (
            "8000-8001:80-81",
            [PortBinding(80, "tcp", "", 8000), PortBinding(81, "tcp", "", 8001)],
        ),
        ("80-81", [PortBinding(80), PortBinding(81)]),
        ("8000-8010:80", [PortBinding(80, "tcp", "", 8000, 8010)]),
    ],
)
def test_parse(spec: str, want: list[PortBinding]) -> None:
    assert parse_port_spec(spec) == want


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no port specified"),
        ("8080:", "no port specified"),
        ("x:80", "invalid hostPort: x"),
        ("8080:y", "invalid containerPort: y"),
        ("1.2.3:8080:80", "invalid IP address: 1.2.3"),
        ("80/icmp", "invalid proto: icmp"),
        ("8000-8002:80-81", "invalid ranges specified for container and host Ports: 80-81"),
        ("70000", "invalid containerPort"),
    ],
)
def test_parse_errors(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_port_spec(spec)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_reserve_fixed_port_and_conflicts() -> None:
    port = free_port()
    b = PortBinding(80, "tcp", "127.0.0.1", port)
    got, sock = reserve_binding(b, set())
    try:
        assert got == b
        with pytest.raises(
            Conflict, match=f"^Bind for 127.0.0.1:{port} failed: port is already allocated$"
        ):
            reserve_binding(b, set())  # held by a socket: the host would refuse it too
        with pytest.raises(Conflict, match="port is already allocated"):
            reserve_binding(PortBinding(81, "tcp", "", port), {("tcp", "127.0.0.1", port)})
    finally:
        sock.close()
    # udp is another port space
    got, sock = reserve_binding(PortBinding(80, "udp", "127.0.0.1", port), {("tcp", "", port)})
    sock.close()


def test_reserve_dynamic_port_in_range() -> None:
    port = free_port()
    got, sock = reserve_binding(
        PortBinding(80, "tcp", "127.0.0.1"), {("tcp", "", port)}, (port, port + 50)
    )
    sock.close()
    assert port < got.host_port <= port + 50
    got, sock = reserve_binding(PortBinding(80, "tcp", "127.0.0.1", port, port + 50), set())
    sock.close()
    assert port <= got.host_port <= port + 50
    assert got.host_port_end == 0


def test_port_binding_json_round_trip() -> None:
    b = PortBinding(80, "udp", "127.0.0.1", 8080)
    assert PortBinding.from_json(b.to_json()) == b
    assert b.key == "80/udp"
