"""switch_identity for real, in forked children only: the test process keeps its caps."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from skiff.linux import capabilities as caps
from skiff.oci.runtime_spec import Capabilities
from skiff.oci.spec_reader import Reader

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.root


def in_child(fn: Callable[[], object]) -> tuple[int, object]:
    """Run fn in a forked child; (wait status, fn's JSON result or {"error": ...})."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            os.close(r)
            out: object = fn()
        except BaseException as e:
            out, code = {"error": f"{type(e).__name__}: {e}"}, 1
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    return status, json.loads(data) if data else None


def status_fields() -> dict[str, str]:
    with open("/proc/self/status") as f:
        pairs = (line.split(":", 1) for line in f)
        return {k: v.strip() for k, v in pairs}


def spec_caps(**sets: list[str]) -> Capabilities:
    return Capabilities(Reader(sets, "process.capabilities"))


KEEP = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def mask_hex(names: list[str]) -> str:
    return f"{caps.to_mask(names):016x}"


def test_switch_to_uid_1000_with_reduced_caps() -> None:
    before = status_fields()

    def child() -> object:
        c = spec_caps(
            bounding=KEEP,
            effective=["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
            permitted=KEEP,
            inheritable=["CAP_NET_BIND_SERVICE"],
            ambient=["CAP_NET_BIND_SERVICE"],
        )
        warnings: list[str] = []
        caps.switch_identity(c, 1000, 1000, [1000, 2000], True, warn=warnings.append)
        st = status_fields()
        return {
            "status": {k: st[k] for k in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb")},
            "nnp": st["NoNewPrivs"],
            "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), sorted(os.getgroups())],
            "capget": list(caps.capget()),
            "ambient": caps.ambient(),
            "bounding": caps.bounding(),
            "get_nnp": caps.get_no_new_privs(),
            "keepcaps": caps.get_keepcaps(),
            "warnings": warnings,
        }

    status, out = in_child(child)
    assert os.WIFEXITED(status), status
    assert isinstance(out, dict)
    assert "error" not in out, out
    assert out["status"] == {
        "CapEff": mask_hex(["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]),
        "CapPrm": mask_hex(KEEP),
        "CapInh": mask_hex(["CAP_NET_BIND_SERVICE"]),
        "CapBnd": mask_hex(KEEP),
        "CapAmb": mask_hex(["CAP_NET_BIND_SERVICE"]),
    }
    assert out["nnp"] == "1"
    assert out["ids"] == [1000, 1000, 1000, 1000, [1000, 2000]]
    assert out["capget"] == [
        caps.to_mask(["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]),
        caps.to_mask(KEEP),
        caps.to_mask(["CAP_NET_BIND_SERVICE"]),
    ]
    assert out["ambient"] == ["CAP_NET_BIND_SERVICE"]
    assert out["bounding"] == KEEP
    assert out["get_nnp"] is True
    assert out["keepcaps"] is False
    assert out["warnings"] == []
    # The test process itself is untouched.
    assert status_fields()["CapEff"] == before["CapEff"]
    assert status_fields()["NoNewPrivs"] == "0"


def test_caps_are_enforced_in_the_child(tmp_path: Path) -> None:
    """CAP_KILL kept, CAP_DAC_OVERRIDE dropped: the kernel enforces what we set."""
    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(0o600)

    def child(keep: list[str]) -> Callable[[], object]:
        def run() -> object:
            caps.switch_identity(
                spec_caps(bounding=keep, effective=keep, permitted=keep), 1000, 1000, [], False
            )
            result: dict[str, object] = {"nnp": caps.get_no_new_privs()}
            try:
                os.kill(1, 0)  # another user's process: needs CAP_KILL
                result["kill"] = "ok"
            except PermissionError:
                result["kill"] = "EPERM"
            try:
                secret.read_text()
                result["read"] = "ok"
            except PermissionError:
                result["read"] = "EACCES"
            return result

        return run

    status, out = in_child(child(["CAP_KILL"]))
    assert os.WIFEXITED(status), (status, out)
    assert out == {"nnp": False, "kill": "ok", "read": "EACCES"}
    status, out = in_child(child(["CAP_DAC_OVERRIDE"]))
    assert os.WIFEXITED(status), (status, out)
    assert out == {"nnp": False, "kill": "EPERM", "read": "ok"}


def test_root_keeps_uid_zero_but_loses_caps() -> None:
    def child() -> object:
        caps.switch_identity(spec_caps(), 0, 0, [], False)
        st = status_fields()
        try:
            os.setuid(1)  # from uid 0 this still needs CAP_SETUID
            changed = True
        except PermissionError:
            changed = False
        return {"eff": st["CapEff"], "bnd": st["CapBnd"], "changed": changed}

    status, out = in_child(child)
    assert os.WIFEXITED(status), (status, out)
    assert out == {"eff": "0" * 16, "bnd": "0" * 16, "changed": False}


def test_unknown_cap_fails_in_child_without_changes() -> None:
    def child() -> object:
        try:
            caps.switch_identity(spec_caps(bounding=["CAP_TYPO"]), 1000, 1000, [], True)
        except ValueError as e:
            return {"raised": str(e), "uid": os.getuid(), "nnp": caps.get_no_new_privs()}
        return {"raised": None}

    status, out = in_child(child)
    assert os.WIFEXITED(status)
    assert isinstance(out, dict)
    assert "CAP_TYPO" in str(out["raised"])
    assert out["uid"] == 0
    assert out["nnp"] is False


def test_in_child_reports_signals() -> None:
    status, _ = in_child(lambda: os.kill(os.getpid(), signal.SIGKILL))
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == signal.SIGKILL


def test_ambient_that_cannot_be_raised_is_a_warning() -> None:
    """Ambient needs permitted + inheritable; runc warns and goes on, so do we."""

    def child() -> object:
        warnings: list[str] = []
        c = spec_caps(bounding=KEEP, effective=KEEP, permitted=KEEP, ambient=["CAP_KILL"])
        caps.switch_identity(c, 1000, 1000, [], False, warn=warnings.append)
        return {"amb": status_fields()["CapAmb"], "warnings": warnings}

    status, out = in_child(child)
    assert os.WIFEXITED(status), (status, out)
    assert isinstance(out, dict)
    assert out["amb"] == "0" * 16
    assert len(out["warnings"]) == 1
    assert "CAP_KILL" in out["warnings"][0]
