"""start, kill, delete, pause, resume and list: operations on a created container."""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import time

from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.runtime import state as st
from skiff.runtime.state import ContainerState

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from skiff.cgroups.manager import CgroupManager
    from skiff.oci.runtime_spec import Hook, RuntimeConfig


def warn(message: str) -> None:
    print(f"skiff-runtime: warning: {message}", file=sys.stderr)


def saved_config(state: ContainerState) -> RuntimeConfig:
    from skiff.oci.runtime_spec import parse_config

    with open(state.config_file, "rb") as f:
        return parse_config(json.loads(f.read()))


def start(root: str, container_id: str) -> None:
    state = ContainerState.load(root, container_id)
    status = state.status()
    if not st.can_start(status):
        raise Conflict(f"cannot start a container that is {status}: {container_id}")
    try:
        fd = os.open(state.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        # ENXIO: nobody holds the read end, the init is gone.
        if e.errno in (errno.ENXIO, errno.ENOENT):
            raise Conflict(f"cannot start container {container_id}: its process exited") from None
        raise
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
    os.unlink(state.fifo)
    hooks = _hooks(_saved_doc(state), "poststart")
    if hooks:
        from skiff.runtime.hooks import HookError, run_hooks

        try:
            run_hooks("poststart", hooks, state.oci_state())
        except HookError as e:
            warn(str(e))


def _saved_doc(state: ContainerState) -> dict[str, Any] | None:
    """config.json as JSON, checked at create: start and delete need only a little of
    it, and the typed parse of a whole config costs ~2 ms (see _hooks)."""
    try:
        with open(state.config_file, "rb") as f:
            doc = json.loads(f.read())
    except (OSError, ValueError) as e:
        warn(f"reading saved config: {e}")
        return None
    return doc if isinstance(doc, dict) else None


def _hooks(doc: dict[str, Any] | None, kind: str) -> list[Hook]:
    """The config's `kind` hooks ("poststart", "poststop"), parsed only when it has some."""
    hooks = doc.get("hooks") if doc is not None else None
    if not (isinstance(hooks, dict) and hooks.get(kind)):
        return []
    from skiff.oci.runtime_spec import SpecError, parse_config

    try:
        found: list[Hook] = getattr(parse_config(doc).hooks, kind)
    except SpecError as e:
        warn(f"reading saved config: {e}")
        return []
    return found


SIGNALS = {
    name[3:]: int(getattr(signal, name))
    for name in dir(signal)
    if name.startswith("SIG") and not name.startswith("SIG_") and name.isupper()
}


def parse_signal(text: str) -> int:
    if text.isdigit():
        number = int(text)
        if 0 < number < 65:
            return number
    else:
        name = text.upper().removeprefix("SIG")
        if name in SIGNALS:
            return SIGNALS[name]
        if name.startswith(("RTMIN", "RTMAX")):
            base = signal.SIGRTMIN if name.startswith("RTMIN") else signal.SIGRTMAX
            offset = name[5:]
            if not offset:
                return int(base)
            if offset[0] in "+-" and offset[1:].isdigit():
                return int(base) + int(offset)
    raise InvalidArgument(f"unknown signal {text!r}")


def _cgroup(state: ContainerState) -> CgroupManager | None:
    if not state.cgroup_paths:
        return None
    from skiff.cgroups import load_manager

    return load_manager(state.cgroup_paths)


def kill(root: str, container_id: str, sig: int, all_processes: bool = False) -> None:
    state = ContainerState.load(root, container_id)
    status = state.status()
    if not st.can_kill(status):
        raise Conflict(f"container not running: {container_id} is {status}")
    cgroup = _cgroup(state)
    if all_processes and cgroup is not None:
        _signal_all(cgroup, sig)
        return
    os.kill(state.pid, sig)


def _signal_all(cgroup: CgroupManager, sig: int) -> None:
    # Freeze first so nothing forks past the signal, as runc does.
    frozen = False
    try:
        cgroup.freeze()
        frozen = True
    except OSError:
        pass
    try:
        for pid in cgroup.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    finally:
        if frozen:
            cgroup.thaw()


def delete(root: str, container_id: str, force: bool = False) -> None:
    try:
        state = ContainerState.load(root, container_id)
    except NotFound:
        # A create killed half-way may leave a folder without state.json.
        st.validate_id(container_id)
        path = os.path.join(root, container_id)
        if os.path.isdir(path):
            st.remove_tree(path)
            return
        if force:
            return
        raise
    status = state.status()
    if status in (st.RUNNING, st.PAUSED, st.CREATING) and not force:
        raise Conflict(f"cannot delete container {container_id} that is not stopped: {status}")
    destroy(state)


def destroy(state: ContainerState) -> None:
    """Kill what is left, remove the cgroup and the state folder, then run poststop hooks."""
    cgroup = _cgroup(state)
    if state.alive():
        if cgroup is not None:
            _signal_all(cgroup, signal.SIGKILL)
        try:
            os.kill(state.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_gone(state)
    if cgroup is not None:
        try:
            # The init is gone, but a process it left behind may not be.
            if cgroup.pids():
                _signal_all(cgroup, signal.SIGKILL)
            cgroup.destroy()
        except OSError as e:
            warn(f"removing cgroup: {e}")
    doc = _saved_doc(state)
    if doc is not None and not _has_mount_namespace(doc) and state.rootfs:
        from skiff.runtime.rootfs import unmount_under

        try:
            unmount_under(state.rootfs)
        except OSError as e:
            warn(f"unmounting under {state.rootfs}: {e}")
    oci_state = state.oci_state()
    st.remove_tree(state.dir)
    hooks = _hooks(doc, "poststop")
    if hooks:
        from skiff.runtime.hooks import HookError, run_hooks

        try:
            run_hooks("poststop", hooks, oci_state)
        except HookError as e:
            warn(str(e))


def _has_mount_namespace(doc: dict[str, Any]) -> bool:
    linux = doc.get("linux")
    namespaces = linux.get("namespaces") if isinstance(linux, dict) else None
    if not isinstance(namespaces, list):
        return False
    return any(isinstance(ns, dict) and ns.get("type") == "mount" for ns in namespaces)


def wait_gone(state: ContainerState, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.001
    while state.alive():
        try:
            # Reap it if it is ours (run's child); otherwise its parent will.
            os.waitpid(state.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if time.monotonic() > deadline:
            raise Conflict(f"container {state.id}: process {state.pid} did not exit")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def pause(root: str, container_id: str) -> None:
    state = ContainerState.load(root, container_id)
    status = state.status()
    if status != st.RUNNING:
        raise Conflict(f"container not running: {container_id} is {status}")
    cgroup = _cgroup(state)
    if cgroup is None:
        raise Conflict(f"container {container_id} has no cgroup to freeze")
    cgroup.freeze()


def resume(root: str, container_id: str) -> None:
    state = ContainerState.load(root, container_id)
    status = state.status()
    if status != st.PAUSED:
        raise Conflict(f"container not paused: {container_id} is {status}")
    cgroup = _cgroup(state)
    assert cgroup is not None
    cgroup.thaw()


def update(root: str, container_id: str, resources: dict[str, object]) -> None:
    """Apply new limits to a live container's cgroup (`docker update`).

    Only the fields given are written, as runc does. The saved config is left
    as it was: nothing after create reads its resources back.
    """
    from skiff.oci.runtime_spec import Resources, SpecError
    from skiff.oci.spec_reader import Reader

    state = ContainerState.load(root, container_id)
    status = state.status()
    if status not in (st.CREATED, st.RUNNING, st.PAUSED):
        raise Conflict(f"cannot update container {container_id}: it is {status}")
    try:
        parsed = Resources(Reader(resources, "linux.resources"))
    except SpecError as e:
        raise InvalidArgument(f"--resources: {e}") from None
    cgroup = _cgroup(state)
    if cgroup is None:
        raise Conflict(f"container {container_id} has no cgroup to update")
    cgroup.apply(parsed)


def list_states(root: str) -> list[ContainerState]:
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    states = []
    for name in names:
        try:
            states.append(ContainerState.load(root, name))
        except (NotFound, InvalidArgument):
            continue
    return states


def container_pids(root: str, container_id: str) -> list[int]:
    state = ContainerState.load(root, container_id)
    cgroup = _cgroup(state)
    if cgroup is None:
        return [state.pid] if state.alive() else []
    return sorted(cgroup.pids())
