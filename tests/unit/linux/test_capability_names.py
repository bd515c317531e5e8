from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from skiff.linux import capabilities as caps
from skiff.oci.runtime_spec import Capabilities
from skiff.oci.spec_reader import Reader


def test_table_numbers() -> None:
    assert len(caps.NAMES) == 41
    assert len(set(caps.NAMES)) == 41
    assert caps.number("CAP_CHOWN") == 0
    assert caps.number("CAP_SETPCAP") == 8
    assert caps.number("CAP_SYS_ADMIN") == 21
    assert caps.number("CAP_AUDIT_READ") == 37
    assert caps.number("CAP_BPF") == 39
    assert caps.number("CAP_CHECKPOINT_RESTORE") == 40


HEADER = Path("/usr/include/linux/capability.h")


@pytest.mark.skipif(not HEADER.exists(), reason="no kernel headers")
def test_table_matches_kernel_header() -> None:
    defined = {
        m[1]: int(m[2])
        for m in re.finditer(r"#define (CAP_[A-Z_]+)\s+(\d+)\s*$", HEADER.read_text(), re.M)
        if not m[1].startswith("CAP_LAST")
    }
    for name, number in defined.items():
        if number <= 40:
            assert caps.number(name) == number, name


def test_unknown_names_raise_and_are_named() -> None:
    with pytest.raises(ValueError, match="CAP_NOPE"):
        caps.number("CAP_NOPE")
    with pytest.raises(ValueError, match=r"CAP_BAR, CAP_FOO"):
        caps.validate(["CAP_CHOWN", "CAP_FOO", "CAP_BAR", "CAP_FOO"])
    caps.validate(["CAP_CHOWN", "CAP_CHECKPOINT_RESTORE"])
    caps.validate([])


def test_last_cap_reads_proc() -> None:
    last = caps.last_cap()
    assert 30 <= last <= 63
    if os.path.exists("/proc/sys/kernel/cap_last_cap"):
        with open("/proc/sys/kernel/cap_last_cap") as f:
            assert last == int(f.read())


def test_masks_round_trip() -> None:
    names = ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"]
    mask = caps.to_mask(names)
    assert mask == 1 << 0 | 1 << 5 | 1 << 21
    assert caps.from_mask(mask) == names
    assert caps.to_mask([]) == 0


def test_caps_newer_than_the_kernel_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caps, "_last_cap", 37)  # a 5.4 kernel: no PERFMON, BPF, CHECKPOINT_RESTORE
    names = ["CAP_CHOWN", "CAP_BPF", "CAP_PERFMON"]
    assert caps.unavailable(names) == ["CAP_BPF", "CAP_PERFMON"]
    assert caps.to_mask(names) == 1
    with pytest.raises(ValueError, match="CAP_TYPO"):
        caps.to_mask(["CAP_TYPO"])


class Recorder:
    """A fake IdentityOps that records the calls in order."""

    def __init__(self, ambient_fails: list[str] | None = None) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.ambient_fails = ambient_fails or []

    def drop_bounding(self, keep: list[str]) -> None:
        self.calls.append(("drop_bounding", tuple(keep)))

    def set_keepcaps(self, on: bool) -> None:
        self.calls.append(("set_keepcaps", on))

    def setgroups(self, gids: list[int]) -> None:
        self.calls.append(("setgroups", tuple(gids)))

    def setgid(self, gid: int) -> None:
        self.calls.append(("setgid", gid))

    def setuid(self, uid: int) -> None:
        self.calls.append(("setuid", uid))

    def capset(self, effective: list[str], permitted: list[str], inheritable: list[str]) -> None:
        self.calls.append(("capset", tuple(effective), tuple(permitted), tuple(inheritable)))

    def ambient_clear_all(self) -> None:
        self.calls.append(("ambient_clear_all",))

    def ambient_raise(self, names: list[str]) -> list[str]:
        self.calls.append(("ambient_raise", tuple(names)))
        return [f"{n}: Operation not permitted" for n in self.ambient_fails]

    def set_no_new_privs(self) -> None:
        self.calls.append(("set_no_new_privs",))


def spec_caps(**sets: list[str]) -> Capabilities:
    return Capabilities(Reader(sets, "process.capabilities"))


def test_switch_identity_runs_in_runcs_order() -> None:
    c = spec_caps(
        bounding=["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        effective=["CAP_KILL"],
        permitted=["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        inheritable=["CAP_NET_BIND_SERVICE"],
        ambient=["CAP_NET_BIND_SERVICE"],
    )
    rec = Recorder()
    caps.switch_identity(c, 1000, 1001, [10, 20], True, ops=rec)
    assert rec.calls == [
        ("drop_bounding", ("CAP_KILL", "CAP_NET_BIND_SERVICE")),
        ("set_keepcaps", True),
        ("setgroups", (10, 20)),
        ("setgid", 1001),
        ("setuid", 1000),
        ("set_keepcaps", False),
        ("capset", ("CAP_KILL",), ("CAP_KILL", "CAP_NET_BIND_SERVICE"), ("CAP_NET_BIND_SERVICE",)),
        ("ambient_clear_all",),
        ("ambient_raise", ("CAP_NET_BIND_SERVICE",)),
        ("set_no_new_privs",),
    ]


def test_switch_identity_without_no_new_privs_and_without_caps() -> None:
    rec = Recorder()
    caps.switch_identity(Capabilities(None), 0, 0, [], False, ops=rec)
    assert ("set_no_new_privs",) not in rec.calls
    assert rec.calls[0] == ("drop_bounding", ())
    assert ("capset", (), (), ()) in rec.calls


def test_switch_identity_rejects_unknown_caps_before_any_call() -> None:
    rec = Recorder()
    with pytest.raises(ValueError, match="CAP_WRONG"):
        caps.switch_identity(spec_caps(effective=["CAP_WRONG"]), 0, 0, [], False, ops=rec)
    assert rec.calls == []


def test_switch_identity_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caps, "_last_cap", 38)
    warnings: list[str] = []
    rec = Recorder(ambient_fails=["CAP_KILL"])
    c = spec_caps(bounding=["CAP_KILL", "CAP_BPF"], ambient=["CAP_KILL"])
    caps.switch_identity(c, 0, 0, [], False, ops=rec, warn=warnings.append)
    assert len(warnings) == 2
    assert "CAP_BPF" in warnings[0]
    assert "CAP_KILL" in warnings[1]
