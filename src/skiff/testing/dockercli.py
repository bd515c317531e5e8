"""The docker CLI pointed at one daemon, for benchmarks that time it side by side.

cli = DockerCLI("skiff", "unix:///tmp/x/s.sock", base)   # base: a folder for its config
cli.docker("run", "-d", "busybox", "sleep", "60")        # stdout; SystemExit on failure
cli.timed("run", "--rm", "busybox", "true")              # seconds; SystemExit on failure
"""

from __future__ import annotations

import os
import subprocess
import time


class DockerCLI:
    def __init__(self, name: str, host: str, base: str) -> None:
        self.name = name
        self.host = host
        # Its own config folder and no context: nothing of the user's docker set-up applies.
        self.env = dict(os.environ, DOCKER_HOST=host, DOCKER_CONFIG=os.path.join(base, "cli"))
        self.env.pop("DOCKER_CONTEXT", None)

    def docker(self, *args: str, stdin: bytes | None = None) -> str:
        result = subprocess.run(
            ["docker", *args], env=self.env, input=stdin, capture_output=True, check=False
        )
        if result.returncode != 0:
            raise SystemExit(
                f"{self.name}: docker {' '.join(args)} failed: {result.stderr.decode()}"
            )
        return result.stdout.decode()

    def timed(self, *args: str) -> float:
        """Seconds the command took; its output is thrown away, not collected."""
        start = time.perf_counter()
        result = subprocess.run(
            ["docker", *args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(
                f"{self.name}: docker {' '.join(args)} failed: {result.stderr.decode()}"
            )
        return elapsed
