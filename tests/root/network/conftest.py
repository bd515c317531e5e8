"""Fixtures for real networks: a private manager, throwaway netns, and a leak check.

Every test gets its own id: chains `SKT<id>-*`, bridges `sk<id>0` / `sk<id>-...`, netns
`skt<id>-N`, host veths `v<id>...`, a subnet from 10.213.0.0/16 that no route of the host
overlaps, and a fake upstream DNS on 127.0.0.1 (queries never leave the machine). The
`test_id` fixture checks afterwards that no link, netns, route, address or iptables
rule carrying the id is left (by name, so other tests running at the same time do not
disturb it).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from skiff.network import NetworkConfig, NetworkManager, dns


def sh(*argv: str, check: bool = True, timeout: float = 20) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {proc.stderr}")
    return proc.stdout


def snapshot(test_id: str) -> dict[str, set[str]]:
    """This test's objects on the host (by name: other tests and sessions may run too)."""
    mine = (f"sk{test_id}", f"v{test_id}", f"SKT{test_id}", f"skt{test_id}")

    def ours(lines: list[str]) -> set[str]:
        return {line for line in lines if any(m in line for m in mine)}

    return {
        "links": ours(
            [line.split(":")[1].strip() for line in sh("ip", "-o", "link", "show").splitlines()]
        ),
        "netns": ours(sh("ip", "netns", "list").splitlines()),
        "routes": ours(sh("ip", "-4", "route", "show", "table", "all").splitlines()),
        "addrs": ours(sh("ip", "-4", "-o", "addr", "show").splitlines()),
        "rules": ours(
            [re.sub(r"\[\d+:\d+\]", "", line) for line in sh("iptables-save").splitlines()]
        ),
    }


@pytest.fixture
def test_id() -> Iterator[str]:
    test_id = secrets.token_hex(2)
    before = snapshot(test_id)
    yield test_id
    left = snapshot(test_id)
    assert not any(before.values()), f"name clash with objects already there: {before}"
    assert not any(left.values()), f"left behind: { {k: v for k, v in left.items() if v} }"


@dataclass
class Env:
    id: str
    mgr: NetworkManager
    config: NetworkConfig
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    def netns(self) -> str:
        name = f"skt{self.id}-{len(self.namespaces)}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        return name

    def spawn(self, ns: str, *argv: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def run_in(self, ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["ip", "netns", "exec", ns, *argv],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"in {ns}: {' '.join(argv)}: {proc.stdout}{proc.stderr}")
        return proc

    def new_manager(self) -> NetworkManager:
        self.mgr = NetworkManager(self.config)
        return self.mgr


class FakeUpstream:
    """A resolver on 127.0.0.1 answering every A query with 192.0.2.123."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            q = dns.parse_query(data)
            self.sock.sendto(dns.build_response(q, addresses=[IPv4Address("192.0.2.123")]), addr)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def env(tmp_path: Path, test_id: str) -> Iterator[Env]:
    upstream = FakeUpstream()
    config = NetworkConfig(
        state_dir=str(tmp_path / "network"),
        chain_prefix=f"SKT{test_id}",
        default_bridge=f"sk{test_id}0",
        bridge_prefix=f"sk{test_id}-",
        veth_prefix=f"v{test_id}",
        address_pools=[("10.213.0.0/16", 24)],
        dns_upstreams=[("127.0.0.1", upstream.port)],
    )
    e = Env(test_id, NetworkManager(config), config)
    try:
        e.mgr.restore()
        yield e
    finally:
        for proc in e.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for ns in e.namespaces:
            for pid in sh("ip", "netns", "pids", ns, check=False).split():
                os.kill(int(pid), signal.SIGKILL)  # started by this test, in its own netns
        try:
            e.mgr.destroy()
        finally:
            for ns in e.namespaces:
                sh("ip", "netns", "del", ns, check=False)
            upstream.close()
