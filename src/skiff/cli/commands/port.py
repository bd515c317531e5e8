"""`skiff port CONTAINER [PRIVATE_PORT[/PROTO]]`: the public bindings, as docker prints them.

80/tcp -> 0.0.0.0:8080        (all ports)
0.0.0.0:8080                  (`port CONTAINER 80`)
"""

from __future__ import annotations

import sys

from skiff.cli.args import parser
from skiff.cli.context import CliContext


def _addr(binding: dict[str, str]) -> str:
    ip = binding.get("HostIp") or "0.0.0.0"
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{binding.get('HostPort', '')}"


def _key(port: str) -> tuple[int, str]:
    num, _, proto = port.partition("/")
    return (int(num) if num.isdigit() else 0, proto)


def run(ctx: CliContext, argv: list[str]) -> int:
    p = parser("port", "List port mappings or a specific mapping for the container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("private", nargs="?", default="", metavar="PRIVATE_PORT[/PROTO]")
    ns = p.parse_args(argv)
    from skiff.client.networks import Networks

    ports = Networks(ctx.client()).ports(ns.container)
    if ns.private:
        num, _, proto = ns.private.partition("/")
        wanted = f"{num}/{proto or 'tcp'}"
        bindings = ports.get(wanted)
        if not bindings:
            print(f"Error: No public port '{wanted}' published for {ns.container}", file=sys.stderr)
            return 1
        for b in bindings:
            print(_addr(b))
        return 0
    for port in sorted(ports, key=_key):
        for b in ports[port] or []:
            print(f"{port} -> {_addr(b)}")
    return 0
