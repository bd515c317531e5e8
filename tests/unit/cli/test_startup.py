"""The CLI's start-up cost is mostly imports, so check which modules a command loads: a
structural check, not a timed one (timings are in bench/cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Each of these would cost milliseconds at every `skiff` run; none is needed to list images.
FORBIDDEN = (
    "http.client",  # skiff.client.http speaks HTTP over the unix socket itself
    "email",
    "ssl",  # only for TLS connections
    "urllib.parse",  # only for tcp:// hosts
    "dataclasses",
    "inspect",
    "typing",  # annotations are strings; typing imports hide under TYPE_CHECKING
    "subprocess",  # only to auto-start skiffd
    "argparse",
    "shutil",
    "datetime",
    "skiff.cli.format",  # the template engine: only for formats beyond plain fields
    "aiohttp",
    "rich",
    "asyncio",
)


def imported_modules(*argv: str, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    """The modules `python -X importtime -m skiff.cli.main ARGV` imports, and its stdout."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "skiff.cli.main", *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    modules = {
        line.rpartition("|")[2].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    return modules, result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ("images", "--help"),
        ("image", "ls", "--help"),
        ("version", "--help"),
        ("history", "--help"),
        ("system", "df", "--help"),
        ("info", "--help"),
    ],
)
def test_command_imports_nothing_heavy(argv: tuple[str, ...]) -> None:
    modules, out = imported_modules(*argv)
    assert out.startswith("Usage:  skiff"), out
    assert "skiff.cli.context" in modules  # -X importtime did report
    heavy = sorted(m for m in modules if m.partition(".")[0] in FORBIDDEN or m in FORBIDDEN)
    assert heavy == []


def test_images_against_no_daemon_imports_nothing_heavy(tmp_path: object) -> None:
    """The whole path, client included, up to the connect that fails."""
    env = dict(os.environ, SKIFF_HOST=f"unix://{tmp_path}/none.sock")
    modules, _ = imported_modules("images", env=env)
    assert "skiff.client.http" in modules
    heavy = sorted(m for m in modules if m.partition(".")[0] in FORBIDDEN or m in FORBIDDEN)
    assert heavy == []
