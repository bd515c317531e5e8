"""Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, for tests and benchmarks.

    with DistributionRegistry(tmp_path) as reg:                       # no auth
    with DistributionRegistry(tmp_path, users={"alice": "pw"}) as reg: # htpasswd (bcrypt)
    with DistributionRegistry(tmp_path, token=TokenServer(...)) as reg:  # bearer tokens
        reg.host  # "127.0.0.1:PORT", plain HTTP

Storage and config live under the folder given; the process is stopped by its PID.
htpasswd hashes come from `htpasswd -B` (apache2-utils).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skiff.testing.tokenserver import TokenServer

BINARY = "docker-registry"


def available() -> bool:
    return shutil.which(BINARY) is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def htpasswd_line(user: str, password: str) -> str:
    out = subprocess.run(
        ["htpasswd", "-Bbn", user, password], capture_output=True, check=True, text=True
    )
    return out.stdout.strip()


class DistributionRegistry:
    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        users: dict[str, str] | None = None,
        token: TokenServer | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.users = users
        self.token = token
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()  # a restart keeps the address
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.folder / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.host, "secret": "skiff-test"},
        }
        if self.users:
            path = self.folder / "htpasswd"
            path.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in self.users.items()))
            config["auth"] = {"htpasswd": {"realm": "skiff-test", "path": str(path)}}
        elif self.token is not None:
            cert = self.folder / "token.crt"
            self.token.write_cert(cert)
            config["auth"] = {
                "token": {
                    "realm": self.token.realm,
                    "service": self.token.service,
                    "issuer": self.token.issuer,
                    "rootcertbundle": str(cert),
                }
            }
        path = self.folder / "config.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    def start(self, timeout: float = 20.0) -> DistributionRegistry:
        config = self._config()
        log = open(self.folder / "registry.log", "ab")  # noqa: SIM115 (the child owns it)
        self.proc = subprocess.Popen(
            [BINARY, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"docker-registry exited: {(self.folder / 'registry.log').read_text()[-2000:]}"
                )
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection(self.host, timeout=1)
                conn.request("GET", "/v2/")
                conn.getresponse().read()
                conn.close()
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("docker-registry did not start listening")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> DistributionRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
