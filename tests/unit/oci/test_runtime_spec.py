from __future__ import annotations

import copy

import pytest

from skiff.oci.runtime_spec import SpecError, parse_config

MINIMAL: dict[str, object] = {
    "ociVersion": "1.0.2",
    "root": {"path": "rootfs"},
    "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]},
    "hostname": "box",
}


def with_change(path: list[str | int], value: object) -> dict[str, object]:
    doc = copy.deepcopy(MINIMAL)
    node: object = doc
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    node[path[-1]] = value  # type: ignore[index]
    return doc


def test_minimal_config_parses() -> None:
    config = parse_config(MINIMAL)
    assert config.root_path == "rootfs"
    assert config.process is not None
    assert config.process.args == ["sh"]
    assert config.hostname == "box"
    assert [ns.type for ns in config.linux.namespaces] == ["pid", "mount", "uts"]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["process", "user", "uid"], "root", "process.user.uid"),
        (["process", "cwd"], "relative", "process.cwd"),
        (["process", "args"], "sh", "process.args"),
        (["linux", "namespaces"], [{"type": "nope"}], "linux.namespaces[0].type"),
        (["linux", "namespaces"], [{"type": "pid"}, {"type": "pid"}], "linux.namespaces[1].type"),
        (["root"], {"readonly": True}, "root.path"),
        (
            ["process", "rlimits"],
            [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}],
            "process.rlimits[0].type",
        ),
        (["process", "oomScoreAdj"], 5000, "process.oomScoreAdj"),
    ],
)
def test_bad_fields_are_named(path: list[str | int], value: object, field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_config(with_change(path, value))
    assert info.value.field == field
    assert str(info.value).startswith(field + ":")


def test_hostname_needs_a_uts_namespace() -> None:
    doc = with_change(["linux", "namespaces"], [{"type": "mount"}])
    with pytest.raises(SpecError, match=r"^hostname:"):
        parse_config(doc)


def test_user_namespace_needs_mappings() -> None:
    doc = with_change(["linux", "namespaces"], [{"type": "user"}, {"type": "uts"}])
    with pytest.raises(SpecError, match="uidMappings"):
        parse_config(doc)


def test_blkio_weight_zero_means_unset() -> None:
    # dockerd writes "blockIO": {"weight": 0} when no --blkio-weight is given.
    config = parse_config(with_change(["linux", "resources"], {"blockIO": {"weight": 0}}))
    block_io = config.linux.resources.block_io
    assert block_io is not None
    assert block_io.weight is None
    doc = with_change(["linux", "resources"], {"blockIO": {"weight": 5}})
    with pytest.raises(SpecError, match=r"^linux.resources.blockIO.weight: 5 is below"):
        parse_config(doc)
