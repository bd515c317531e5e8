"""parse_create refuses a field of the wrong JSON kind with the words of Go's decoder,
one case for each Go type the reader knows, and reads null as absent."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.api.container_create import parse_create
from skiff.errors import InvalidArgument

FIELD = "json: cannot unmarshal {} into Go struct field {} of type {}"

WRONG_KINDS = [
    ({"Hostname": 5}, "number", "ContainerConfigWrapper.Hostname", "string"),
    ({"Tty": "yes"}, "string", "ContainerConfigWrapper.Tty", "bool"),
    ({"StopTimeout": 1.5}, "number", "ContainerConfigWrapper.StopTimeout", "int64"),
    ({"StopTimeout": True}, "bool", "ContainerConfigWrapper.StopTimeout", "int64"),
    ({"Env": [1]}, "array", "ContainerConfigWrapper.Env", "[]string"),
    ({"Env": {}}, "object", "ContainerConfigWrapper.Env", "[]string"),
    ({"Labels": {"a": 1}}, "object", "ContainerConfigWrapper.Labels", "map[string]string"),
    ({"Labels": True}, "bool", "ContainerConfigWrapper.Labels", "map[string]string"),
    ({"ExposedPorts": []}, "array", "ContainerConfigWrapper.ExposedPorts", "map[string]struct {}"),
    ({"Healthcheck": 1}, "number", "ContainerConfigWrapper.Healthcheck", "container.HealthConfig"),
    ({"HostConfig": {"Annotations": True}}, "bool", "HostConfig.Annotations", "map[string]string"),
    ({"HostConfig": {"Mounts": {}}}, "object", "HostConfig.Mounts", "[]mount.Mount"),
    ({"HostConfig": {"Ulimits": "x"}}, "string", "HostConfig.Ulimits", "[]units.Ulimit"),
    ({"HostConfig": {"RestartPolicy": "x"}}, "string", "HostConfig.RestartPolicy", "container.RestartPolicy"),
    ({"HostConfig": {"PortBindings": []}}, "array", "HostConfig.PortBindings", "nat.PortMap"),
    ({"HostConfig": {"Devices": [{"PathOnHost": 1}]}}, "number", "container.DeviceMapping.PathOnHost", "string"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "kind", "where", "go_type"), WRONG_KINDS)
def test_wrong_kind(fields: dict[str, Any], kind: str, where: str, go_type: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_create({"Image": "busybox", **fields}, ncpus=2)
    assert str(info.value) == FIELD.format(kind, where, go_type)


def test_null_reads_as_absent_and_a_bare_string_as_a_list() -> None:
    nulls = dict.fromkeys(("Hostname", "Tty", "StopTimeout", "Labels", "ExposedPorts", "Cmd"))
    host = dict.fromkeys(("Annotations", "Mounts", "Ulimits", "RestartPolicy", "PortBindings"))
    c = parse_create({"Image": "busybox", "Env": "A=1", **nulls, "HostConfig": host}, ncpus=2)
    assert c.config.env == ("A=1",)
    assert (c.config.hostname, c.config.tty, c.config.stop_timeout) == ("", False, None)
    assert (c.config.labels, c.config.exposed_ports, c.config.cmd) == ({}, (), None)
    hc = c.host_config
    assert (hc.annotations, hc.mounts, hc.resources.ulimits) == ({}, (), ())
    assert (hc.restart_policy.name, hc.port_bindings) == ("no", {})
