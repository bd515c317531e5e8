"""What the network manager persists: networks, endpoints and DNS sandboxes, as JSON.

    <state_dir>/networks.json    the networks (durable: fsynced)
    <state_dir>/endpoints.json   endpoints, DNS sandboxes, IPAM cursors (atomic, not fsynced)

Every change replaces the files atomically, so a crash leaves the old or the new state,
never half. Addresses in use are not stored twice: a network's allocations are its
endpoints' `ip`.
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
    ip_forward_was: str = ""  # "0" when skiff turned forwarding on; destroy() puts it back

    def durable_json(self) -> dict[str, Any]:
        """What must outlive a reboot: the networks users created."""
        return {
            "version": VERSION,
            "networks": {
                k: {f: x for f, x in asdict(v).items() if f != "last"}
                for k, v in self.networks.items()
            },
            "ip_forward_was": self.ip_forward_was,
        }

    def runtime_json(self) -> dict[str, Any]:
        """What describes kernel objects (veths, sockets) that a reboot removes anyway."""
        return {
            "version": VERSION,
            # Shallow copies (vars), not asdict's deep ones: written on every start and stop.
            "endpoints": {
                k: {**vars(v), "ports": [p.to_json() for p in v.ports]}
                for k, v in self.endpoints.items()
            },
            "sandboxes": {k: dict(vars(v)) for k, v in self.sandboxes.items()},
            "last": {k: v.last for k, v in self.networks.items() if v.last},
        }

    @classmethod
    def from_json(cls, durable: dict[str, Any], runtime: dict[str, Any]) -> State:
        endpoints = {}
        for k, v in runtime.get("endpoints", {}).items():
            ports = [PortBinding.from_json(p) for p in v.pop("ports", [])]
            endpoints[k] = Endpoint(**v, ports=ports)
        networks = {k: Network(**v) for k, v in durable.get("networks", {}).items()}
        for k, last in runtime.get("last", {}).items():
            if k in networks:
                networks[k].last = last
        return cls(
            networks=networks,
            endpoints={k: e for k, e in endpoints.items() if e.network_id in networks},
            sandboxes={k: Sandbox(**v) for k, v in runtime.get("sandboxes", {}).items()},
            ip_forward_was=durable.get("ip_forward_was", ""),
        )


class StateFile:
    """Two files, each replaced atomically (temporary name, rename).

    `networks.json` is also fsynced (with its directory) and only rewritten when the
    networks change. `endpoints.json` changes with every container start and is not
    fsynced: a rename is atomic against a crash of skiffd, and after a crash of the
    machine the veths and sockets it describes are gone anyway (restore() forgets
    endpoints whose netns has gone). This keeps two ~10 ms fsyncs off every `run`.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.durable_path = os.path.join(directory, "networks.json")
        self.runtime_path = os.path.join(directory, "endpoints.json")
        self._durable_text = ""

    def load(self) -> State:
        durable = self._read(self.durable_path)
        self._durable_text = json.dumps(durable, indent=1, sort_keys=True) if durable else ""
        return State.from_json(durable, self._read(self.runtime_path))

    @staticmethod
    def _read(path: str) -> dict[str, Any]:
        try:
            with open(path) as f:
                data: dict[str, Any] = json.load(f)
                return data
        except FileNotFoundError:
            return {}

    def save(self, state: State) -> None:
        os.makedirs(self.directory, exist_ok=True)
        durable = json.dumps(state.durable_json(), indent=1, sort_keys=True)
        if durable != self._durable_text:
            self._write(self.durable_path, durable, sync=True)
            self._durable_text = durable
        # Not indented: json's C encoder then does it, several times faster.
        runtime = json.dumps(state.runtime_json(), sort_keys=True)
        self._write(self.runtime_path, runtime, sync=False)

    def _write(self, path: str, text: str, sync: bool) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".network.", dir=self.directory)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
            os.rename(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if sync:
            dirfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)

    def remove(self) -> None:
        for path in (self.durable_path, self.runtime_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._durable_text = ""
