"""A private skiffd for integration tests and benchmarks, started and stopped by PID.

    d = PrivateSkiffd.temporary("skc-")   # a fresh short folder under /tmp, owned by d
    d.start()                             # returns once the API socket accepts
    ...  DOCKER_HOST=d.host docker ps  ...
    left = d.close()                      # skiffd, its shim parent, the folder if nothing is mounted

Under its root: `data/` (the data root), `exec/` (the exec root: skiffd.log, the shim
parent's socket), `s.sock` (the API socket: short, because a unix socket path must fit
in 108 bytes) and `skiffd.out` (the daemon's stdout and stderr, quoted when it fails to
start). With the default flags it runs with `--bridge none`: no bridge, no iptables
rules, nothing of the host's network is touched.

`wait_for_socket` and `terminate` serve any daemon the same way (the benches' dockerd).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from skiff.testing.peers import mounts_under

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class DaemonFailed(RuntimeError):
    """A daemon exited while starting, or did not listen in time."""


def wait_for_socket(
    path: str,
    proc: subprocess.Popen[bytes],
    what: str,
    timeout: float = START_TIMEOUT,
    log: Path | None = None,
) -> None:
    """Return once the unix socket at `path` accepts a connection.

    Raises DaemonFailed when `proc` exits first or `timeout` passes, with the end of
    `log` if one is given.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise DaemonFailed(f"{what} exited with {proc.returncode}{_tail(log)}")
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(path)
                return
            except OSError:
                pass
        if time.monotonic() > deadline:
            raise DaemonFailed(f"{what} did not listen on {path} in {timeout:.0f}s{_tail(log)}")
        time.sleep(0.05)


def _tail(log: Path | None, chars: int = 3000) -> str:
    if log is None:
        return ""
    try:
        return ":\n" + log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def terminate(
    proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT, sig: int = signal.SIGTERM
) -> None:
    """Send `sig` to `proc` by its PID and reap it; SIGKILL it if it outlives `timeout`."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass(frozen=True)
class SkiffdFlags:
    """skiffd's flags beyond its paths; the defaults leave the host's network alone."""

    bridge: str = "none"
    bip: str = ""
    address_pool: str = ""  # --default-address-pool base=CIDR,size=N
    chain_prefix: str = ""  # --iptables-chain-prefix
    insecure_registries: tuple[str, ...] = ()
    debug: bool = False
    extra: tuple[str, ...] = ()  # anything else, e.g. a TCP -H with its TLS flags

    def argv(self) -> list[str]:
        argv = ["--bridge", self.bridge]
        for flag, value in (
            ("--bip", self.bip),
            ("--default-address-pool", self.address_pool),
            ("--iptables-chain-prefix", self.chain_prefix),
        ):
            if value:
                argv += [flag, value]
        for registry in self.insecure_registries:
            argv += ["--insecure-registry", registry]
        if self.debug:
            argv.append("--debug")
        return argv + list(self.extra)


class PrivateSkiffd:
    """`python -m skiff.daemon.main` of this interpreter on its own root and socket."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        socket: str | None = None,
        flags: SkiffdFlags | None = None,
        *,
        owns_root: bool = False,
    ) -> None:
        self.root = Path(root)
        self.data_root = self.root / "data"
        self.exec_root = self.root / "exec"
        self.socket = socket or str(self.root / "s.sock")
        self.log_path = self.root / "skiffd.out"
        self.flags = flags or SkiffdFlags()
        self.proc: subprocess.Popen[bytes] | None = None
        self._owns_root = owns_root  # close() removes only a folder this object made

    @classmethod
    def temporary(cls, prefix: str, flags: SkiffdFlags | None = None) -> Self:
        """One on a fresh folder under /tmp (short paths), removed again by close()."""
        root = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        return cls(root, flags=flags, owns_root=True)

    @property
    def host(self) -> str:
        return "unix://" + self.socket

    def argv(self) -> list[str]:
        paths = ["--data-root", str(self.data_root), "--exec-root", str(self.exec_root)]
        return [sys.executable, "-m", "skiff.daemon.main", *paths, "-H", self.host]

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """Start skiffd (again, after a stop) and return once its socket accepts."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv() + self.flags.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a Ctrl-C at the test does not hit it; stop() does
            )
        try:
            wait_for_socket(self.socket, self.proc, "skiffd", timeout, self.log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> None:
        """Send `sig` (SIGTERM: a clean stop) by PID and reap it; SIGKILL after `timeout`."""
        if self.proc is not None:
            terminate(self.proc, timeout, sig)

    def kill(self) -> None:
        """SIGKILL skiffd, as a crash would: its shims and their shim parent live on."""
        self.stop(signal.SIGKILL)

    def shim_parent_pid(self) -> int:
        """The PID of the shim parent serving this exec root, or 0 when none answers."""
        from skiff.shim.client import ping_parent

        return ping_parent(str(self.exec_root / "shim-parent.sock")) or 0

    def stop_shim_parent(self) -> None:
        # skiffd's SIGTERM ends it, but not a SIGKILL of skiffd or a failed start.
        pid = self.shim_parent_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)

    def log_tail(self, chars: int = 3000) -> str:
        return _tail(self.log_path, chars).removeprefix(":\n")

    def close(self) -> list[str]:
        """Stop skiffd and its shim parent; remove the root if this object made it and
        nothing is mounted below it. Returns the mount points left below the root."""
        self.stop()
        self.stop_shim_parent()
        left = mounts_under(str(self.root))
        if self._owns_root and not left:
            shutil.rmtree(self.root, ignore_errors=True)
        return left

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
