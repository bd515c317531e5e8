"""parse_create: the create body as the docker CLI and SDK send it, dockerd's checks and words."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.api.container_create import parse_bind, parse_create, parse_signal, validate_name
from skiff.errors import InvalidArgument
from skiff.services.container_types import DEFAULT_SHM_SIZE, MountSpec


def body(**host: Any) -> dict[str, Any]:
    return {"Image": "busybox", "Cmd": ["sh"], "HostConfig": host}


def err(b: dict[str, Any], **kw: Any) -> str:
    with pytest.raises(InvalidArgument) as info:
        parse_create(b, ncpus=2, **kw)
    return str(info.value)


def test_minimal_body_gets_dockerds_defaults() -> None:
    c = parse_create({"Image": "busybox"}, name="/web", ncpus=2)
    assert c.name == "web"
    assert c.image == "busybox"
    assert c.config.cmd is None
    assert c.config.entrypoint is None
    hc = c.host_config
    assert hc.shm_size == DEFAULT_SHM_SIZE
    assert hc.ipc_mode == "private"
    assert hc.network_mode == "default"
    assert hc.restart_policy.name == "no"
    assert hc.masked_paths is None


def test_cli_style_body() -> None:
    b = {
        "Image": "busybox:1.36",
        "Cmd": ["sh", "-c", "echo hi"],
        "Entrypoint": [""],
        "Env": ["A=1", "B"],
        "Tty": True,
        "OpenStdin": True,
        "User": "1000:1000",
        "WorkingDir": "/work",
        "Labels": {"a": "b"},
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8080": {}},
        "Volumes": {"/data": {}},
        "StopSignal": "SIGUSR1",
        "StopTimeout": 3,
        "HostConfig": {
            "Binds": ["/tmp:/host:ro,rslave", "vol:/v:nocopy"],
            "Tmpfs": {"/run": "size=10m"},
            "Mounts": [
                {
                    "Type": "tmpfs",
                    "Target": "/t",
                    "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1777},
                }
            ],
            "Memory": 64 << 20,
            "NanoCpus": 1_500_000_000,
            "PidsLimit": 100,
            "CapAdd": ["net_admin", "CAP_SYS_ADMIN"],
            "CapDrop": ["all"],
            "SecurityOpt": ["no-new-privileges:true", "seccomp=unconfined", "label=disable"],
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
            "Devices": [
                {"PathOnHost": "/dev/null", "PathInContainer": "", "CgroupPermissions": "rw"}
            ],
            "Init": True,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}},
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
        },
        "NetworkingConfig": {
            "EndpointsConfig": {
                "net1": {"Aliases": ["a"], "IPAMConfig": {"IPv4Address": "10.0.0.5"}}
            }
        },
    }
    c = parse_create(b, platform="linux/amd64", ncpus=2)
    cfg, hc = c.config, c.host_config
    assert cfg.entrypoint == ("",)
    assert cfg.env == ("A=1", "B")
    assert cfg.exposed_ports == ("80/tcp", "53/udp", "8080/tcp")
    assert cfg.stop_signal == "SIGUSR1"
    assert cfg.stop_timeout == 3
    assert hc.cap_add == ("CAP_NET_ADMIN", "CAP_SYS_ADMIN")
    assert hc.cap_drop == ("ALL",)
    assert hc.no_new_privileges
    assert hc.seccomp_profile == "unconfined"
    assert hc.restart_policy.maximum_retry_count == 3
    assert hc.resources.memory_swap == 128 << 20  # dockerd: 2 x Memory
    assert hc.resources.ulimits[0].soft == 1024
    assert hc.resources.devices[0].path_in_container == "/dev/null"
    assert hc.init is True
    assert c.networks["net1"].ipv4_address == "10.0.0.5"
    by_target = {m.target: m for m in hc.mounts}
    assert by_target["/host"] == MountSpec(
        type="bind", target="/host", source="/tmp", read_only=True, propagation="rslave",
        create_source=True, mode="ro,rslave", origin="binds",
    )  # fmt: skip
    assert by_target["/v"].type == "volume"
    assert by_target["/v"].no_copy
    assert by_target["/run"].tmpfs_options == "size=10m"
    assert by_target["/t"].tmpfs_options == "mode=1777,size=1m"
    assert by_target["/data"].type == "volume"
    assert by_target["/data"].source == ""
    assert c.platform == "linux/amd64"


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("web", True),
        ("/web_1.a-b", True),
        ("a", False),
        ("a/b", False),
        ("-ab", False),
        ("ab!", False),
    ],
)
def test_container_names(name: str, ok: bool) -> None:
    if ok:
        validate_name(name)
    else:
        with pytest.raises(InvalidArgument) as info:
            validate_name(name)
        assert str(info.value) == (
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )


MESSAGES = [
    ({"Image": "BUSYBOX"}, "invalid reference format: repository name (library/BUSYBOX) must be lowercase"),
    ({"Image": "a::b"}, "invalid reference format"),
    (body(Mounts=[{"Type": "bind", "Source": "/nonexistent-x", "Target": "/x"}]),
     'invalid mount config for type "bind": bind source path does not exist: /nonexistent-x'),
    (body(Mounts=[{"Type": "bind", "Target": "/x"}]), 'invalid mount config for type "bind": field Source must not be empty'),
    (body(Mounts=[{"Type": "tmpfs", "Source": "/x", "Target": "/x"}]), 'invalid mount config for type "tmpfs": field Source must not be specified'),
    (body(Mounts=[{"Type": "foo", "Target": "/x"}]), 'invalid mount config for type "foo": mount type unknown'),
    (body(Binds=["rel:rel"]), "invalid volume specification: 'rel:rel': invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"),
    (body(Binds=["/x:rel"]), "invalid volume specification: '/x:rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
    (body(Binds=["/tmp:/"]), "invalid volume specification: '/tmp:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
    (body(Binds=["/x:/c:rprivate,Z,nocopy"]), "invalid volume specification: '/x:/c:rprivate,Z,nocopy': invalid mount config for type \"bind\": field VolumeOptions must not be specified"),
    (body(Binds=["/x:/c:bogus"]), "invalid mode: bogus"),
    (body(Binds=["/x:rw"]), "invalid volume specification: '/x:rw'"),
    (body(Binds=["/tmp:/x", "/var:/x"]), "Duplicate mount point: /x"),
    (body(Binds=["/tmp:/x"], Tmpfs={"/x": ""}), "Duplicate mount point: /x"),
    (body(Tmpfs={"rel": ""}), "invalid mount path: 'rel' mount path must be absolute"),
    (body(Tmpfs={"/x": "foo"}), 'Invalid tmpfs option ["foo"]'),
    (body(RestartPolicy={"Name": "sometimes"}), "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"),
    (body(RestartPolicy={"Name": "on-failure", "MaximumRetryCount": -1}), "invalid restart policy: maximum retry count cannot be negative"),
    (body(RestartPolicy={"Name": "always", "MaximumRetryCount": 3}), "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
    (body(RestartPolicy={"Name": "always"}, AutoRemove=True), "can't create 'AutoRemove' container with restart policy"),
    (body(CapAdd=["FOO"]), 'invalid CapAdd: unknown capability: "CAP_FOO"'),
    (body(CapDrop=["bar"]), 'invalid CapDrop: unknown capability: "CAP_BAR"'),
    (body(Memory=1024), "Minimum memory limit allowed is 6MB"),
    (body(MemorySwap=1 << 30), "You should always set the Memory limit when using Memoryswap limit, see usage"),
    (body(Memory=1 << 30, MemorySwap=512 << 20), "Minimum memoryswap limit should be larger than memory limit, see usage"),
    (body(NanoCpus=10**9, CpuPeriod=1000), "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    (body(NanoCpus=10**9, CpuQuota=2000), "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    (body(NanoCpus=1000 * 10**9), "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    (body(CpuPeriod=100), "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    (body(CpuQuota=100), "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    (body(OomScoreAdj=2000), "Invalid value 2000, range for oom score adj is [-1000, 1000]"),
    (body(CpusetCpus="abc"), "Invalid value abc for cpuset cpus: invalid format: abc"),
    (body(BlkioWeight=5), "Range of blkio weight is from 10 to 1000"),
    (body(SecurityOpt=["foo"]), 'invalid --security-opt 1: "foo"'),
    (body(SecurityOpt=["bar=baz"]), 'invalid --security-opt 2: "bar=baz"'),
    (body(SecurityOpt=["seccomp={nope"]), "Decoding seccomp profile failed: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (body(IpcMode="foo"), "invalid IPC mode: foo"),
    (body(PidMode="foo"), "invalid PID mode: foo"),
    (body(UTSMode="foo"), "invalid UTS mode: foo"),
    (body(Isolation="hyperv"), "Invalid isolation: \"hyperv\" - linux only supports 'default'"),
    (body(LogConfig={"Type": "foo"}), 'error looking up logging plugin foo: plugin "foo" not found'),
    (body(Ulimits=[{"Name": "nofile", "Soft": 2048, "Hard": 1024}]), "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"),
    (body(DeviceCgroupRules=["x 1:2 rwm"]), "invalid device cgroup rule format: 'x 1:2 rwm'"),
    (body(ShmSize=-1), "SHM size can not be less than 0"),
    ({**body(NetworkMode="container:web"), "Hostname": "x"}, "conflicting options: hostname and the network mode"),
    (body(NetworkMode="container:web", Dns=["1.1.1.1"]), "conflicting options: dns and the network mode"),
    ({"Image": "busybox", "StopSignal": "FOO"}, "Invalid signal: FOO"),
    ({"Image": "busybox", "WorkingDir": "rel"}, "the working directory 'rel' is invalid, it needs to be an absolute path"),
    ({"Image": "busybox", "Env": "x", "Cmd": 5}, "json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Cmd of type []string"),
    ({}, "Config cannot be empty in order to create a container"),
]  # fmt: skip


@pytest.mark.parametrize(("b", "message"), MESSAGES)
def test_dockerd_messages(b: dict[str, Any], message: str) -> None:
    assert err(b) == message


def test_bad_name_in_query() -> None:
    assert "Invalid container name (a b)" in err({"Image": "busybox"}, name="a b")


def test_bind_kinds() -> None:
    assert parse_bind("/anon").type == "volume"
    assert parse_bind("/anon").source == ""
    named = parse_bind("data:/d:ro")
    assert (named.type, named.source, named.read_only, named.propagation) == (
        "volume",
        "data",
        True,
        "",
    )
    bind = parse_bind("/src/:/dst/")
    assert (bind.source, bind.target, bind.propagation) == ("/src", "/dst", "rprivate")


def test_image_volume_covered_by_bind_is_dropped() -> None:
    c = parse_create(
        {"Image": "busybox", "Volumes": {"/x": {}}, "HostConfig": {"Binds": ["/tmp:/x"]}}
    )
    assert [m.origin for m in c.host_config.mounts] == ["binds"]


def test_signals() -> None:
    assert parse_signal("SIGKILL") == 9
    assert parse_signal("term") == 15
    assert parse_signal("10") == 10
    assert parse_signal("RTMIN+1") > 32
