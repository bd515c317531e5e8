"""Networking end to end: a real skiffd with its own bridge name, subnet, address pool and
iptables chain prefix, driven by the docker CLI and docker-compose 1.29.

Traffic goes only to 127.0.0.1 and to this run's containers. Teardown removes every
container, stops skiffd by its PID, removes what the network manager made (its state
file lists it) and asserts that no bridge, veth, netns file or iptables chain of this
run is left.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.testing.daemon import PrivateSkiffd, SkiffdFlags

DOCKER = shutil.which("docker")
COMPOSE = shutil.which("docker-compose")
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="networking needs root"),
    pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed"),
    pytest.mark.skipif(
        not any(os.path.exists(p) for p in ("/bin/busybox", "/usr/bin/busybox")),
        reason="busybox-static not installed",
    ),
    pytest.mark.skipif(shutil.which("iptables") is None, reason="iptables not installed"),
]


def _free_octets() -> tuple[int, int]:
    """A 10.X.Y.0/24 and 10.X.0.0/16 pool that no route of the host touches."""
    routes = subprocess.run(
        ["ip", "-4", "route"], capture_output=True, text=True, check=False
    ).stdout
    for _ in range(50):
        x = 200 + secrets.randbelow(50)
        if f"10.{x}." not in routes:
            return x, 1 + secrets.randbelow(250)
    raise AssertionError("no free 10.x subnet")


class Net(PrivateSkiffd):
    """skiffd with this run's own bridge name, subnet, address pool and chain prefix."""

    def __init__(self, root: Path) -> None:
        self.tag = secrets.token_hex(3)
        x, y = _free_octets()
        self.bridge = f"skt{self.tag}"
        self.prefix = f"SKT{self.tag.upper()}"
        self.bip = f"10.{x}.{y}.1/24"
        self.pool = f"base=10.{x}.0.0/16,size=24"
        flags = SkiffdFlags(
            bridge=self.bridge, bip=self.bip, address_pool=self.pool, chain_prefix=self.prefix
        )
        super().__init__(root, flags=flags)

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.root),
            "DOCKER_CONFIG": str(self.root / "docker-config"),
            "DOCKER_HOST": self.host,
            "COMPOSE_INTERACTIVE_NO_CLI": "1",
        }

    def dk(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        assert DOCKER is not None
        return subprocess.run(
            [DOCKER, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, timeout: float = 60) -> str:
        r = self.dk(*args, timeout=timeout)
        assert r.returncode == 0, f"docker {' '.join(args)}: {r.stdout}{r.stderr}"
        return r.stdout.strip()

    def sk(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The skiff CLI against this daemon."""
        return subprocess.run(
            [sys.executable, "-m", "skiff.cli.main", *args],
            env={**os.environ, "SKIFF_HOST": self.host},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def skok(self, *args: str, timeout: float = 60) -> str:
        r = self.sk(*args, timeout=timeout)
        assert r.returncode == 0, f"skiff {' '.join(args)}: {r.stdout}{r.stderr}"
        return r.stdout.strip()

    def state(self) -> dict[str, object]:
        path = self.root / "data" / "network" / "networks.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return {}


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def _made_links(d: Net) -> set[str]:
    """Every bridge and host veth this run's manager has on record."""
    names = {d.bridge}
    for path in (d.root / "data" / "network").glob("*.json"):
        try:
            text = path.read_text()
        except OSError:
            continue
        for key in ("bridge", "host_veth"):
            for part in text.split(f'"{key}": "')[1:]:
                names.add(part.split('"', 1)[0])
    return names


def _netns_files(d: Net) -> list[str]:
    with open("/proc/self/mounts") as f:
        return [ln.split()[1] for ln in f if ln.split()[1].startswith(str(d.root))]


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    root = Path(tempfile.mkdtemp(prefix="skn-", dir="/tmp"))
    d = Net(root)
    d.start()
    seen: set[str] = set()
    try:
        env = {**os.environ, "SKIFF_HOST": d.host}
        r = subprocess.run(
            [sys.executable, "-m", "skiff.cli.main", "image", "bootstrap", "busybox"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        yield d
    finally:
        try:
            if d.running():
                ids = d.dk("ps", "-aq").stdout.split()
                if ids:
                    d.dk("rm", "-f", *ids)
                d.dk("network", "prune", "-f")
        finally:
            seen = _made_links(d)
            d.stop()
            d.stop_shim_parent()
            from skiff.network import NetworkConfig, NetworkManager

            NetworkManager(
                NetworkConfig(state_dir=str(root / "data" / "network"), chain_prefix=d.prefix)
            ).destroy()
        left_links = seen & _links()
        rules = [
            ln
            for ln in subprocess.run(
                ["iptables-save"], capture_output=True, text=True, check=False
            ).stdout.splitlines()
            if d.prefix in ln
        ]
        left_mounts = _netns_files(d)
        if not (left_links or rules or left_mounts):
            shutil.rmtree(root, ignore_errors=True)
        assert not left_links, f"links left behind: {left_links}"
        assert not rules, f"iptables rules left behind: {rules}"
        assert not left_mounts, f"mounts left behind: {left_mounts}"


def _http_get(url: str, attempts: int = 50) -> tuple[int, str]:
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"no answer from {url}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_published_port_from_the_host(net: Net) -> None:
    port = _free_port()
    cid = net.ok(
        "run", "-d", "-p", f"{port}:80", "busybox", "sh", "-c",
        "mkdir -p /www && echo hello-skiff > /www/index.html && httpd -f -p 80 -h /www",
    )  # fmt: skip
    status, body = _http_get(f"http://127.0.0.1:{port}/")
    assert (status, body.strip()) == (200, "hello-skiff")
    assert net.ok("port", cid) == f"80/tcp -> 0.0.0.0:{port}"
    assert f"0.0.0.0:{port}->80/tcp" in net.ok("ps", "--format", "{{.Ports}}", "-f", f"id={cid}")
    inspect = json.loads(net.ok("inspect", cid))[0]["NetworkSettings"]
    assert inspect["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    assert inspect["IPAddress"].startswith(net.bip.rsplit(".", 1)[0] + ".")
    assert inspect["Networks"]["bridge"]["Gateway"] == net.bip.split("/")[0]
    assert os.path.exists(inspect["SandboxKey"])
    # A second container on the same host port: a clear error, nothing left running.
    r = net.dk("run", "-d", "--name", "taken", "-p", f"{port}:80", "busybox", "sleep", "30")
    assert r.returncode != 0
    assert "port is already allocated" in r.stderr
    assert net.ok("inspect", "-f", "{{.State.Status}}", "taken") == "created"
    net.ok("rm", "-f", "taken", cid)
    assert not [m for m in _netns_files(net) if "/netns/" in m]


def test_user_network_names_and_isolation(net: Net) -> None:
    net.ok("network", "create", "front")
    net.ok("network", "create", "back")
    net.ok("run", "-d", "--name", "web1", "--network", "front", "--network-alias", "www",
           "busybox", "httpd", "-f", "-p", "80")  # fmt: skip
    out = net.ok("run", "--rm", "--network", "front", "busybox", "sh", "-c",
                 "ping -c1 -W2 web1 >/dev/null 2>&1; wget -O- http://web1/ 2>&1; "
                 "wget -O- http://www/ 2>&1; cat /etc/resolv.conf")  # fmt: skip
    assert "Connecting to web1" in out
    assert "Connecting to www" in out
    assert "nameserver 127.0.0.11" in out
    ip = net.ok("inspect", "-f", "{{.NetworkSettings.Networks.front.IPAddress}}", "web1")
    r = net.dk("run", "--rm", "--network", "back", "busybox", "sh", "-c",
               f"nslookup web1 127.0.0.11; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 80")  # fmt: skip
    assert "NXDOMAIN" in r.stdout
    assert "HTTP/1" not in r.stdout
    rm = net.dk("network", "rm", "front")
    assert rm.returncode != 0
    assert "has active endpoints" in rm.stderr
    # connect at run time, then disconnect
    net.ok("network", "connect", "back", "web1")
    assert "back" in net.ok("inspect", "-f", "{{json .NetworkSettings.Networks}}", "web1")
    net.ok("network", "disconnect", "back", "web1")
    net.ok("rm", "-f", "web1")
    net.ok("network", "rm", "front", "back")


@pytest.mark.skipif(COMPOSE is None, reason="docker-compose not installed (apt)")
def test_compose_scale_and_down(net: Net) -> None:
    proj = net.root / "app"
    proj.mkdir()
    (proj / "docker-compose.yml").write_text(
        """version: "3"
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && httpd -f -p 80 -h /www"]
  client:
    image: busybox
    command: ["sh", "-c", "while true; do wget -O- http://web/ && echo REACHED; sleep 0.3; done"]
"""
    )
    assert COMPOSE is not None
    env = net.env()

    def compose(*args: str) -> str:
        r = subprocess.run(
            [COMPOSE, "-p", f"sk{net.tag}", *args],
            cwd=proj,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert r.returncode == 0, f"compose {args}: {r.stdout}{r.stderr}"
        return r.stdout

    compose("up", "-d", "--scale", "web=2")
    ps = net.ok("ps", "--format", "{{.Names}}")
    assert len([n for n in ps.split() if "_web_" in n]) == 2
    deadline = time.monotonic() + 30
    logs = ""
    while time.monotonic() < deadline:
        logs = compose("logs", "client")
        if "REACHED" in logs:
            break
        time.sleep(0.5)
    assert "REACHED" in logs, logs
    links_before = _made_links(net)
    compose("down")
    assert net.ok("ps", "-aq") == ""
    names = net.ok("network", "ls", "--format", "{{.Name}}").split()
    assert sorted(names) == ["bridge", "host", "none"]
    gone = links_before - {net.bridge}
    assert not (gone & _links()), gone & _links()
    assert not [m for m in _netns_files(net) if "/netns/" in m]
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    assert f"sk{net.tag}" not in rules


def test_network_api_shapes(net: Net) -> None:
    r = net.dk("network", "create", "--subnet", net.bip.replace(".1/24", ".0/24"), "overlap")
    assert r.returncode != 0
    assert "overlaps" in r.stderr
    net.ok("network", "create", "--label", "k=v", "lab")
    assert net.ok("network", "ls", "-q", "--filter", "label=k=v") != ""
    r = net.dk("network", "create", "lab")
    assert r.returncode != 0
    assert "already exists" in r.stderr
    info = json.loads(net.ok("network", "inspect", "lab"))[0]
    assert info["Driver"] == "bridge"
    assert info["Labels"] == {"k": "v"}
    assert "lab" in net.ok("network", "prune", "-f")


def test_skiff_network_cli(net: Net) -> None:
    x = net.bip.split(".")[1]
    subnet = f"10.{x}.251.0/24"
    nid = net.skok(
        "network", "create", "--subnet", subnet, "--gateway", f"10.{x}.251.254",
        "--ip-range", f"10.{x}.251.128/25", "--label", "team=a", "-o", "k=v", "skcli",
    )  # fmt: skip
    assert len(nid) == 64
    net.skok("network", "create", "--internal", "skint")
    table = net.skok("network", "ls").splitlines()
    assert table[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert any(ln.split()[:4] == [nid[:12], "skcli", "bridge", "local"] for ln in table[1:])
    assert net.skok("network", "ls", "-q", "--filter", "label=team=a") == nid[:12]
    assert net.skok("network", "ls", "-q", "--no-trunc", "--filter", "name=skcli") == nid
    names = net.skok("network", "ls", "--format", "{{.Name}}").split()
    assert {"bridge", "host", "none", "skcli", "skint"} <= set(names)
    info = json.loads(net.skok("network", "inspect", "skcli"))[0]
    assert info["Id"] == nid
    assert info["IPAM"]["Config"][0]["Subnet"] == subnet
    assert info["IPAM"]["Config"][0]["Gateway"] == f"10.{x}.251.254"
    assert info["Labels"] == {"team": "a"}
    assert info["Options"].get("k") == "v"
    assert net.skok("network", "inspect", "-f", "{{.Internal}}", "skint") == "true"
    r = net.sk("network", "inspect", "nosuchnet")
    assert r.returncode == 1
    assert r.stderr.strip() == "Error: No such network: nosuchnet"
    # connect with an alias and a fixed address, then disconnect
    net.skok("run", "-d", "--name", "skc", "-p", "80", "busybox", "httpd", "-f", "-p", "80")
    net.skok("network", "connect", "--alias", "skalias", "--ip", f"10.{x}.251.200", "skcli", "skc")
    nets = json.loads(net.skok("inspect", "-f", "{{json .NetworkSettings.Networks}}", "skc"))
    assert nets["skcli"]["IPAddress"] == f"10.{x}.251.200"
    assert "skalias" in nets["skcli"]["Aliases"]
    out = net.ok(
        "run", "--rm", "--network", "skcli", "busybox", "nslookup", "skalias", "127.0.0.11"
    )
    assert f"10.{x}.251.200" in out
    r = net.sk("network", "rm", "skcli")
    assert r.returncode == 1
    assert "has active endpoints" in r.stderr
    # port: every binding, one port, and one that is not published
    host_port = net.ok(
        "inspect", "-f", '{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}', "skc"
    )
    assert net.skok("port", "skc") == net.ok("port", "skc") == f"80/tcp -> 0.0.0.0:{host_port}"
    assert net.skok("port", "skc", "80") == net.ok("port", "skc", "80") == f"0.0.0.0:{host_port}"
    r = net.sk("port", "skc", "81/udp")
    assert r.returncode == 1
    assert "No public port '81/udp' published for skc" in r.stderr
    net.skok("network", "disconnect", "skcli", "skc")
    assert "skcli" not in net.skok("inspect", "-f", "{{json .NetworkSettings.Networks}}", "skc")
    net.skok("network", "connect", "skcli", "skc")
    net.skok("network", "disconnect", "-f", "skcli", "skc")
    net.skok("rm", "-f", "skc")
    assert net.skok("network", "rm", "skint") == "skint"
    out = net.skok("network", "prune", "-f")
    assert out.splitlines() == ["Deleted Networks:", "skcli"]
    assert set(net.skok("network", "ls", "--format", "{{.Name}}").split()) == {
        "bridge",
        "host",
        "none",
    }


def test_live_restore_keeps_address_and_port(net: Net) -> None:
    port = _free_port()
    net.ok("network", "create", "lr")
    before = _made_links(net)
    cid = net.ok(
        "run", "-d", "--name", "lrweb", "--network", "lr", "-p", f"{port}:80", "busybox", "sh",
        "-c", "mkdir -p /www && echo live > /www/index.html && httpd -f -p 80 -h /www",
    )  # fmt: skip
    assert _http_get(f"http://127.0.0.1:{port}/")[1].strip() == "live"
    ip = net.ok("inspect", "-f", "{{.NetworkSettings.Networks.lr.IPAddress}}", cid)
    mine = _made_links(net) - before
    assert mine & _links(), "the container's host veth"
    net.kill()
    net.start()
    assert net.ok("inspect", "-f", "{{.State.Status}}", cid) == "running"
    assert net.ok("inspect", "-f", "{{.NetworkSettings.Networks.lr.IPAddress}}", cid) == ip
    assert net.ok("port", cid) == f"80/tcp -> 0.0.0.0:{port}"
    assert _http_get(f"http://127.0.0.1:{port}/")[1].strip() == "live"
    out = net.ok("run", "--rm", "--network", "lr", "busybox", "wget", "-qO-", "http://lrweb/")
    assert out == "live"
    assert ip in net.ok("exec", cid, "nslookup", "lrweb", "127.0.0.11")
    net.ok("stop", "-t", "1", cid)
    net.ok("rm", cid)
    assert not (mine & _links()), mine & _links()
    assert not [m for m in _netns_files(net) if "/netns/" in m]
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    assert ip not in rules, [ln for ln in rules.splitlines() if ip in ln]
    assert f"--dport {port}" not in rules
    with socket.socket() as s:  # the host port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
    net.ok("network", "rm", "lr")
