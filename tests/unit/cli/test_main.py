from __future__ import annotations

import os
import subprocess
import sys

import pytest

from skiff.cli.context import CliContext
from skiff.cli.main import main, parse_global
from skiff.cli.timestamps import parse_duration, to_api_timestamp
from skiff.errors import InvalidArgument


def test_global_flags() -> None:
    opts, rest = parse_global(["-H", "unix:///tmp/x.sock", "--tlsverify", "info", "-f", "x"])
    assert opts.host == "unix:///tmp/x.sock"
    assert opts.tlsverify
    assert rest == ["info", "-f", "x"]
    opts, rest = parse_global(["--host=tcp://h:1", "-D", "version"])
    assert opts.host == "tcp://h:1"
    assert opts.debug
    assert rest == ["version"]


def test_unknown_command_and_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 1
    assert "is not a skiff command" in capsys.readouterr().err
    assert main(["--bogus", "info"]) == 125


def test_host_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIFF_HOST", "unix:///tmp/elsewhere.sock")
    ctx = CliContext()
    assert ctx.explicit_host
    assert ctx.host().path == "/tmp/elsewhere.sock"
    monkeypatch.delenv("SKIFF_HOST")
    monkeypatch.setenv("SKIFF_EXEC_ROOT", "/tmp/er")
    ctx = CliContext()
    assert not ctx.explicit_host
    assert ctx.host().path == "/tmp/er/skiff.sock"


def test_unreachable_explicit_host_is_a_clear_error(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-H", f"unix://{tmp_path}/none.sock", "info"]) == 1
    assert "Cannot connect to the skiff daemon" in capsys.readouterr().err


def test_version_imports_no_server_stack() -> None:
    code = (
        "import sys; from skiff.cli.main import main; main(['version']); main(['info']); main(['system', 'df']);"
        "bad = [m for m in ('aiohttp', 'rich', 'cryptography') if m in sys.modules];"
        "sys.exit(1 if bad else 0)"
    )
    env = dict(os.environ, SKIFF_HOST="unix:///nonexistent.sock")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr


def test_durations() -> None:
    assert parse_duration("10m") == 600_000_000_000
    assert parse_duration("1h30m") == 5_400_000_000_000
    assert parse_duration("1.5s") == 1_500_000_000
    assert parse_duration("2024-01-01") is None
    assert parse_duration("") is None


def test_api_timestamps() -> None:
    now = 1_700_000_000_000_000_000
    assert to_api_timestamp("10s", now) == "1699999990.000000000"
    assert to_api_timestamp("1700000000.5", now) == "1700000000.5"
    assert to_api_timestamp("2023-11-14T22:13:20Z", now) == "1700000000.000000000"
    with pytest.raises(InvalidArgument):
        to_api_timestamp("yesterday-ish", now)
