"""CLI start-up: `skiff images`, `skiff ps`, `skiff version` against an idle skiffd, beside
the docker CLI's same commands against the same daemon and a bare `python -c pass`.

    .venv/bin/python bench/cli.py [-n ROUNDS] [--skiff-host unix:///...] [--baseline SRC]

Without --skiff-host the script starts its own skiffd on a temporary data root, exec root
and socket, bootstraps a busybox image into it, and stops it by pid at the end. Each round
runs every command once, in an order that alternates between rounds so machine noise hits
all of them alike; the skiff commands run as a user runs them (the installed `skiff`
script beside this interpreter). It prints each command's median and its ratio to
`python -c pass` (the issue's goal: little more than Python's start-up) and to docker's.
`skiff ps` and `docker ps` are measured once skiff has them. With --baseline SRC (the src/
folder of another checkout, compiled) the same commands run again from that code, as
"base images" etc., to compare a change against the code before it:

    git archive HEAD~3 src | tar x -C /tmp/base && python -m compileall -q /tmp/base/src
    .venv/bin/python bench/cli.py --baseline /tmp/base/src
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack

from skiff.testing.daemon import PrivateSkiffd

COMMANDS = ("images", "ps", "version")


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def works(argv: list[str], env: dict[str, str]) -> bool:
    done = subprocess.run(argv, env=env, check=False, capture_output=True)
    return done.returncode == 0


def skiff_has(command: str) -> bool:
    from skiff.cli.main import COMMANDS as SKIFF_COMMANDS

    return command in SKIFF_COMMANDS


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-n", "--rounds", type=int, default=30)
    p.add_argument("--skiff-host", default=None)
    p.add_argument("--baseline", default=None, metavar="SRC", help="another checkout's src/")
    ns = p.parse_args()
    bindir = os.path.dirname(sys.executable)
    skiff = os.path.join(bindir, "skiff")
    docker = shutil.which("docker")
    root = tempfile.mkdtemp(prefix="skcli-")
    try:
        with ExitStack() as stack:
            host = ns.skiff_host or stack.enter_context(PrivateSkiffd(root)).host
            env = dict(os.environ, SKIFF_HOST=host, DOCKER_HOST=host)
            if not ns.skiff_host:
                timed([skiff, "image", "bootstrap", "busybox"], env)
            cases: dict[str, list[str]] = {"python -c pass": [sys.executable, "-c", "pass"]}
            for command in COMMANDS:
                if skiff_has(command):
                    cases[f"skiff {command}"] = [skiff, command]
            if ns.baseline:  # PYTHONPATH comes before the editable install's path
                for command in COMMANDS:
                    argv = ["env", f"PYTHONPATH={ns.baseline}", skiff, command]
                    if works(argv, env):
                        cases[f"base {command}"] = argv
            if docker:  # only what skiffd serves (no containers API: no `docker ps`)
                for command in COMMANDS:
                    if works([docker, command], env):
                        cases[f"docker {command}"] = [docker, command]
            for argv in cases.values():  # warm-up: page cache, the daemon's first requests
                for _ in range(3):
                    timed(argv, env)
            times: dict[str, list[float]] = {name: [] for name in cases}
            for r in range(ns.rounds):
                order = list(cases.items())
                for name, argv in order if r % 2 == 0 else reversed(order):
                    times[name].append(timed(argv, env))
            median = {name: statistics.median(t) * 1000 for name, t in times.items()}
            base = median["python -c pass"]
            print(f"\n{'':18}{'median ms':>10}{'/python':>9}{'/docker':>9}   ({ns.rounds} rounds)")
            for name, ms in median.items():
                kind, _, command = name.partition(" ")
                peer = median.get("docker " + command)
                vs_docker = f"{ms / peer:9.2f}" if kind in ("skiff", "base") and peer else ""
                print(f"{name:18}{ms:10.1f}{ms / base:9.2f}{vs_docker}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
