"""Run the config's lifecycle hooks.

Each hook is executed with the container's state JSON on its stdin, as the
runtime spec requires. A hook that fails, or outlives its timeout, fails the
operation that ran it (except poststart and poststop, whose failures the spec
says are only logged: the caller decides by catching HookError).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

from skiff.errors import SkiffError

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.oci.runtime_spec import Hook


class HookError(SkiffError):
    pass


def run_hooks(kind: str, hooks: list[Hook], state: dict[str, object]) -> None:
    payload = json.dumps(state).encode()
    for i, hook in enumerate(hooks):
        run_hook(f"{kind}[{i}]", hook, payload)


def run_hook(name: str, hook: Hook, payload: bytes) -> None:
    argv = hook.args or [hook.path]
    try:
        proc = subprocess.Popen(
            argv,
            executable=hook.path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(e.split("=", 1) for e in hook.env if "=" in e),
            close_fds=True,
            # Own session so a timeout kills the hook and anything it started.
            start_new_session=True,
        )
    except OSError as e:
        raise HookError(f"hook {name} ({hook.path}): {e.strerror}") from None
    try:
        out, err = proc.communicate(payload, timeout=hook.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise HookError(f"hook {name} ({hook.path}) timed out after {hook.timeout}s") from None
    except BrokenPipeError:
        out, err = b"", b""
        proc.wait()
    if proc.returncode != 0:
        detail = (err or out).decode(errors="replace").strip()
        raise HookError(
            f"hook {name} ({hook.path}) failed with status {proc.returncode}"
            + (f": {detail}" if detail else "")
        )
