"""Start skiffd in the background when nothing answers on the default socket, so a
first-time user needs no second terminal. Only for the default socket: an explicit -H or
SKIFF_HOST names a daemon someone else runs.

The daemon is detached (own session, stdio to a file under the exec root); a lock file
keeps two CLIs started at once from racing to start two daemons.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time

from skiff.client import Client, DaemonUnreachable
from skiff.errors import Unavailable

START_TIMEOUT = 15.0
STDIO_LOG = "skiffd.stdio.log"


def _answers(client: Client) -> bool:
    try:
        client.ping()
    except DaemonUnreachable:
        return False
    return True


def ensure_daemon(client: Client, exec_root: str) -> None:
    if _answers(client):
        return
    try:
        os.makedirs(exec_root, mode=0o711, exist_ok=True)
        lock = open(os.path.join(exec_root, "autostart.lock"), "w")  # noqa: SIM115
    except OSError as exc:
        raise Unavailable(
            f"no skiff daemon answers at {client.host} and one cannot be started here "
            f"({exc.strerror}: {exc.filename}). Run skiffd as root, or point -H/SKIFF_HOST "
            "at a running daemon."
        ) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers(client):  # another CLI started it while we waited
            return
        _start(client, exec_root)


def _start(client: Client, exec_root: str) -> None:
    import subprocess  # only now: most runs find the daemon up, and subprocess is slow to import

    argv = [
        sys.executable,
        "-m",
        "skiff.daemon.main",
        "--exec-root",
        exec_root,
        "-H",
        str(client.host),
    ]
    data_root = os.environ.get("SKIFF_DATA_ROOT")
    if data_root:
        argv += ["--data-root", data_root]
    stdio_path = os.path.join(exec_root, STDIO_LOG)
    with open(stdio_path, "ab") as stdio:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdio,
            stderr=stdio,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    print(f"Starting skiffd in the background (pid {proc.pid})...", file=sys.stderr)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _answers(client):
            return
        if proc.poll() is not None:
            raise Unavailable(
                f"skiffd exited with status {proc.returncode} while starting:\n" + _tail(stdio_path)
            )
        time.sleep(0.05)
    raise Unavailable(f"skiffd did not answer within {START_TIMEOUT:.0f}s; see {stdio_path}")


def _tail(path: str, lines: int = 10) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""
