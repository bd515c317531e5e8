"""Real bridges, veths and rules, with `ip netns` namespaces standing in for containers."""

from __future__ import annotations

import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from skiff.errors import Conflict
from skiff.network import NetworkManager, parse_port_spec

from .conftest import Env, sh

DNSQ = str(Path(__file__).with_name("dnsq.py"))


def nspath(ns: str) -> str:
    return f"/run/netns/{ns}"


def ping(env: Env, ns: str, addr: str) -> bool:
    return (
        env.run_in(ns, "busybox", "ping", "-c", "1", "-W", "1", addr, check=False).returncode == 0
    )


def resolve(env: Env, ns: str, name: str, tcp: bool = False) -> list[str]:
    argv = [sys.executable, DNSQ, name] + (["tcp"] if tcp else [])
    return env.run_in(ns, *argv).stdout.split()


def host_address() -> str:
    """The host's own address toward its default route (`ip route get` sends nothing)."""
    out = sh("ip", "-4", "-o", "route", "get", "198.51.100.1").split()
    return out[out.index("src") + 1]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def wait_port(env: Env, ns: str, port: int) -> None:
    code = "import socket,sys;socket.create_connection(('127.0.0.1',int(sys.argv[1])),1)"
    for _ in range(100):
        if env.run_in(ns, sys.executable, "-c", code, str(port), check=False).returncode == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} in {ns}")


@pytest.mark.root
def test_same_network_ping_and_dns_other_network_isolated(env: Env) -> None:
    mgr = env.mgr
    app = mgr.create_network("app")
    other = mgr.create_network("other")
    a, b, c = env.netns(), env.netns(), env.netns()
    ea = mgr.connect("app", "a" * 64, nspath(a), name="web", aliases=["www"])
    eb = mgr.connect("app", "b" * 64, nspath(b), name="db")
    ec = mgr.connect("other", "c" * 64, nspath(c), name="lonely")

    inside = env.run_in(a, "ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout
    assert ea.ip in inside
    link = env.run_in(a, "ip", "-o", "link", "show", "dev", "eth0").stdout
    assert ea.mac in link
    assert f"default via {app.gateway}" in env.run_in(a, "ip", "route").stdout
    assert "UP" in env.run_in(a, "ip", "-o", "link", "show", "dev", "lo").stdout

    assert ping(env, a, eb.address)
    assert ping(env, b, ea.address)
    assert resolve(env, b, "web") == [ea.address]
    assert resolve(env, b, "www") == [ea.address]
    assert resolve(env, b, "web.app", tcp=True) == [ea.address]
    assert resolve(env, a, "db") == [eb.address]
    out = env.run_in(a, "busybox", "nslookup", "db", "127.0.0.11").stdout
    assert eb.address in out
    # not ours: forwarded (to the test's fake upstream on the host's 127.0.0.1)
    assert resolve(env, a, "example.org") == ["192.0.2.123"]

    # another network: neither reachable nor resolvable
    assert not ping(env, c, ea.address)
    assert not ping(env, a, ec.address)
    assert resolve(env, c, "web") == ["192.0.2.123"]  # unknown there: forwarded
    assert ping(env, c, other.gateway)

    saved = sh("iptables-save", "-t", "nat")
    assert f"-A SKT{env.id}-POSTROUTING -s {app.subnet} ! -o {app.bridge} -j MASQUERADE" in saved
    assert f"-A POSTROUTING -j SKT{env.id}-POSTROUTING" in saved

    mgr.disconnect("app", "b" * 64)
    assert not sh("ip", "-o", "link", "show", eb.host_veth, check=False)
    assert "eth0" not in env.run_in(b, "ip", "-o", "link").stdout


@pytest.mark.root
def test_published_ports(env: Env, tmp_path: Path) -> None:
    mgr = env.mgr
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the container\n")
    web, client = env.netns(), env.netns()
    ep = mgr.connect(
        "bridge",
        "a" * 64,
        nspath(web),
        ports=parse_port_spec("80")
        + parse_port_spec("127.0.0.1::80")
        + parse_port_spec(f"{free_udp_port()}:53/udp"),
    )
    dyn, local, udp = ep.ports
    assert dyn.host_port
    assert local.host_port
    assert udp.proto == "udp"
    env.spawn(web, "busybox", "httpd", "-f", "-p", "80", "-h", str(www))
    echo = (
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('',53))\n"
        "while True:\n d,a=s.recvfrom(100)\n s.sendto(b'pong '+d,a)"
    )
    env.spawn(web, sys.executable, "-c", echo)
    wait_port(env, web, 80)

    assert fetch(f"http://127.0.0.1:{dyn.host_port}/") == "hello from the container\n"
    assert fetch(f"http://{host_address()}:{dyn.host_port}/") == "hello from the container\n"
    assert fetch(f"http://127.0.0.1:{local.host_port}/") == "hello from the container\n"
    with pytest.raises(OSError, match="refused"):
        fetch(f"http://{host_address()}:{local.host_port}/")  # bound to 127.0.0.1 only
    # from another container, through the host's address (hairpin through the bridge)
    mgr.connect("bridge", "b" * 64, nspath(client))
    code = "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1],timeout=5).read().decode(),end='')"
    got = env.run_in(
        client, sys.executable, "-c", code, f"http://{host_address()}:{dyn.host_port}/"
    )
    assert got.stdout == "hello from the container\n"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.25)
        for _ in range(40):  # udp: the echo server may not be bound yet
            s.sendto(b"ping\n", ("127.0.0.1", udp.host_port))
            try:
                assert s.recv(100) == b"pong ping\n"
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("no udp answer through the published port")

    # the host port is taken: a clear error, and nothing of the attempt remains
    before = sh("iptables-save", "-t", "nat")
    other = env.netns()
    with pytest.raises(
        Conflict, match=f"^Bind for 127.0.0.1:{local.host_port} failed: port is already allocated$"
    ):
        mgr.connect(
            "bridge",
            "c" * 64,
            nspath(other),
            ports=parse_port_spec(f"127.0.0.1:{local.host_port}:80"),
        )
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        busy = holder.getsockname()[1]
        with pytest.raises(
            Conflict, match=f"^Bind for 0.0.0.0:{busy} failed: port is already allocated$"
        ):
            mgr.connect("bridge", "c" * 64, nspath(other), ports=parse_port_spec(f"{busy}:80"))
    assert "eth0" not in env.run_in(other, "ip", "-o", "link").stdout
    assert sh("iptables-save", "-t", "nat") == before or _same_rules(
        before, sh("iptables-save", "-t", "nat")
    )
    assert len(mgr.endpoints()) == 2


def _same_rules(a: str, b: str) -> bool:
    def rules(t: str) -> list[str]:
        return [line for line in t.splitlines() if line.startswith("-A")]

    return rules(a) == rules(b)


@pytest.mark.root
def test_restart_keeps_addresses_ports_and_dns(env: Env, tmp_path: Path) -> None:
    mgr = env.mgr
    mgr.create_network("app")
    spare = mgr.create_network("spare")
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("still here\n")
    a, b = env.netns(), env.netns()
    ea = mgr.connect("app", "a" * 64, nspath(a), name="web", ports=parse_port_spec("80"))
    eb = mgr.connect("app", "b" * 64, nspath(b), name="db")
    env.spawn(a, "busybox", "httpd", "-f", "-p", "80", "-h", str(www))
    wait_port(env, a, 80)
    port = ea.ports[0].host_port

    mgr.close()  # skiffd stops: DNS sockets and port reservations go, the network stays
    assert fetch(f"http://127.0.0.1:{port}/") == "still here\n"
    # someone removes an unused bridge and skiff's nat chain while skiffd is down
    sh("ip", "link", "del", spare.bridge)
    sh("ip", "link", "del", mgr.network("app").bridge)  # its veths stay, unattached
    chains = f"SKT{env.id}"
    sh("iptables", "-t", "nat", "-F", f"{chains}-PORTS")

    mgr2: NetworkManager = env.new_manager()
    assert mgr2.restore() == []
    assert sh("ip", "-o", "link", "show", spare.bridge)
    assert fetch(f"http://127.0.0.1:{port}/") == "still here\n"
    assert resolve(env, b, "web") == [ea.address]
    assert ping(env, b, ea.address)
    with socket.socket() as s, pytest.raises(OSError, match="in use"):
        s.bind(("0.0.0.0", port))  # reserved again by the new manager
    assert {e.id for e in mgr2.endpoints()} == {ea.id, eb.id}
