"""What the network manager persists: networks, endpoints and DNS sandboxes, in one JSON file.

Every change rewrites `<state_dir>/network.json` atomically (temporary file, fsync,
rename, fsync of the directory), so a crash leaves the old or the new state, never half.
Addresses in use are not stored twice: a network's allocations are its endpoints' `ip`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any

from skiff.network.ports import PortBinding

VERSION = 1


@dataclass
class Network:
    id: str
    name: str
    bridge: str
    subnet: str
    gateway: str
    ip_range: str = ""
    internal: bool = False
    default: bool = False  # the pre-defined "bridge" network: no DNS, no --ip, no aliases
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    created: str = ""
    last: str = ""  # the last address handed out (IPAM round robin)

    @property
    def dns(self) -> bool:
        return not self.default


@dataclass
class Endpoint:
    id: str
    network_id: str
    container_id: str
    netns: str
    host_veth: str
    ifname: str
    ip: str  # with prefix length: "10.0.0.2/24"
    mac: str
    name: str = ""
    aliases: list[str] = field(default_factory=list)
    ports: list[PortBinding] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.ip.split("/", 1)[0]


@dataclass
class Sandbox:
    """A container netns where the embedded DNS listens (any DNS network attached)."""

    netns: str
    inode: int
    udp_port: int = 0
    tcp_port: int = 0


@dataclass
class State:
    networks: dict[str, Network] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    sandboxes: dict[str, Sandbox] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "networks": {k: asdict(v) for k, v in self.networks.items()},
            "endpoints": {
                k: {**asdict(v), "ports": [p.to_json() for p in v.ports]}
                for k, v in self.endpoints.items()
            },
            "sandboxes": {k: asdict(v) for k, v in self.sandboxes.items()},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> State:
        endpoints = {}
        for k, v in d.get("endpoints", {}).items():
            ports = [PortBinding.from_json(p) for p in v.pop("ports", [])]
            endpoints[k] = Endpoint(**v, ports=ports)
        return cls(
            networks={k: Network(**v) for k, v in d.get("networks", {}).items()},
            endpoints=endpoints,
            sandboxes={k: Sandbox(**v) for k, v in d.get("sandboxes", {}).items()},
        )


class StateFile:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, "network.json")

    def load(self) -> State:
        try:
            with open(self.path) as f:
                return State.from_json(json.load(f))
        except FileNotFoundError:
            return State()

    def save(self, state: State) -> None:
        os.makedirs(self.directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".network.", dir=self.directory)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(state.to_json(), f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dirfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
