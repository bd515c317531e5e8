from __future__ import annotations

import threading
import time
from typing import Any

from skiff.api.registry import DiskUsage
from skiff.services.events import Event
from skiff.services.system import HostInfo, SystemInfo
from skiff.testing.apiserver import ApiServer


class FakeContainers:
    async def contribute_info(self, info: SystemInfo) -> None:
        info.containers = 3
        info.containers_running = 1
        info.containers_stopped = 2

    async def contribute_disk_usage(self, usage: DiskUsage, kinds: frozenset[str]) -> None:
        usage.containers.append({"Id": "abc", "State": "running", "SizeRw": 10})


def test_info_from_providers(server: ApiServer) -> None:
    server.registry.add_info_provider(
        HostInfo(
            daemon_id="id-1",
            name="box",
            root_dir="/data",
            exec_root="/run/x",
            debug=True,
            server_version="0.1.0",
        )
    )
    server.registry.add_info_provider(FakeContainers())
    info = server.client().info()
    assert info["ID"] == "id-1"
    assert info["Name"] == "box"
    assert info["DockerRootDir"] == "/data"
    assert info["Containers"] == 3
    assert info["ContainersRunning"] == 1
    assert info["Driver"] == "overlay2"
    assert info["CgroupDriver"] == "cgroupfs"
    assert info["CgroupVersion"] in ("1", "2")
    assert info["NCPU"] >= 1
    assert info["MemTotal"] > 0
    assert info["KernelVersion"]
    assert info["OSType"] == "linux"
    assert info["Runtimes"]["runc"]["path"] == "skiff-runtime"
    assert info["DefaultRuntime"] == "runc"
    assert info["Swarm"]["LocalNodeState"] == "inactive"


def test_version(server: ApiServer) -> None:
    version = server.client().version()
    assert version["ApiVersion"] == "1.44"
    assert version["MinAPIVersion"] == "1.24"
    assert version["Os"] == "linux"
    assert version["Components"][0]["Name"] == "Engine"


def test_df_empty_and_from_providers(server: ApiServer) -> None:
    empty = server.client().disk_usage()
    assert empty == {
        "LayersSize": 0,
        "Images": [],
        "Containers": [],
        "Volumes": [],
        "BuildCache": [],
    }
    server.registry.add_disk_usage_provider(FakeContainers())
    df = server.client().disk_usage(["container"])
    assert df["Containers"] == [{"Id": "abc", "State": "running", "SizeRw": 10}]
    assert df["Images"] is None


def _ev(action: str, actor: str = "c1", type_: str = "container", **attrs: str) -> Event:
    return Event(type_, action, actor_id=actor, attributes=attrs)


def test_events_since_until_replays_history(server: ApiServer) -> None:
    t0 = time.time_ns()
    server.publish(_ev("create", name="web", image="busybox"))
    server.publish(_ev("start", name="web"))
    server.publish(_ev("tag", actor="sha256:1", type_="image", name="busybox:latest"))
    time.sleep(0.05)
    until = f"{time.time()}"
    events = list(server.client().events(since=f"{t0 / 1e9:.9f}", until=until))
    assert [e["Action"] for e in events] == ["create", "start", "tag"]
    first = events[0]
    assert first["Type"] == "container"
    assert first["Actor"] == {"ID": "c1", "Attributes": {"name": "web", "image": "busybox"}}
    assert first["scope"] == "local"
    assert first["status"] == "create"
    assert first["from"] == "busybox"
    assert first["time"] == first["timeNano"] // 1_000_000_000

    only_images = list(
        server.client().events(since=f"{t0 / 1e9:.9f}", until=until, filters={"type": ["image"]})
    )
    assert [e["Action"] for e in only_images] == ["tag"]


def test_events_stream_live_until_deadline(server: ApiServer) -> None:
    received: list[dict[str, Any]] = []
    until = f"{time.time() + 1.0:.9f}"

    def consume() -> None:
        received.extend(server.client().events(until=until, filters={"event": ["die"]}))

    thread = threading.Thread(target=consume)
    thread.start()
    deadline = time.monotonic() + 5
    while server.events.listeners == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.publish(_ev("start"))
    server.publish(_ev("die", name="web"))
    thread.join(5)
    assert not thread.is_alive()
    assert [e["Action"] for e in received] == ["die"]
