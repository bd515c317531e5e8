from __future__ import annotations

import io
import json

import pytest

from skiff.errors import InvalidArgument
from skiff.runtime.cli.args import parse
from skiff.runtime.cli.update import FLAGS, resources_doc


def test_resources_from_stdin_and_shorthands_on_top(monkeypatch: pytest.MonkeyPatch) -> None:
    # containerd's shim writes the LinuxResources JSON to `update --resources -`.
    given = {"memory": {"limit": 100}, "cpu": {"shares": 512}}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(given)))
    argv = ["--resources", "-", "--memory", "200", "--cpuset-cpus", "0-1", "--pids-limit=9", "c"]
    doc = resources_doc(parse(argv, FLAGS))
    assert doc == {
        "memory": {"limit": 200},
        "cpu": {"shares": 512, "cpus": "0-1"},
        "pids": {"limit": 9},
    }


def test_bad_resources_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("[1]"))
    with pytest.raises(InvalidArgument, match="--resources: expected a JSON object"):
        resources_doc(parse(["--resources", "-", "c"], FLAGS))
    with pytest.raises(InvalidArgument, match="--memory"):
        resources_doc(parse(["--memory", "lots", "c"], FLAGS))
