"""The shared loops of `network`/`volume` inspect and rm, against a fake object store."""

from __future__ import annotations

import json

import pytest

from skiff.cli.each import inspect_each, print_deleted, remove_each
from skiff.client import ApiError


class Store:
    def __init__(self, *names: str) -> None:
        self.names = list(names)

    def inspect(self, name: str) -> dict[str, str]:
        if name not in self.names:
            raise ApiError(404, f"no such thing: {name}")
        return {"Name": name}

    def remove(self, name: str) -> None:
        if name == "busy":
            raise ApiError(409, "busy is in use")
        if name not in self.names:
            raise ApiError(404, f"no such thing: {name}")
        self.names.remove(name)


def test_inspect_prints_what_it_found_then_every_error(capsys: pytest.CaptureFixture[str]) -> None:
    status = inspect_each(["a", "x", "b", "y"], Store("a", "b").inspect, "")
    out, err = capsys.readouterr()
    assert status == 1
    assert json.loads(out) == [{"Name": "a"}, {"Name": "b"}]
    assert err == (
        "Error response from daemon: no such thing: x\n"
        "Error response from daemon: no such thing: y\n"
    )


def test_inspect_words_errors_and_formats(capsys: pytest.CaptureFixture[str]) -> None:
    def describe(name: str, exc: ApiError) -> str:
        return f"Error: No such thing: {name} ({exc.status})"

    status = inspect_each(["a", "x"], Store("a").inspect, "{{.Name}}", describe)
    assert status == 1
    assert capsys.readouterr() == ("a\n", "Error: No such thing: x (404)\n")
    assert inspect_each(["a"], Store("a").inspect, "{{.Name}}") == 0


def test_remove_goes_on_after_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    store = Store("a", "busy", "b")
    assert remove_each(["a", "busy", "gone", "b"], store.remove) == 1
    out, err = capsys.readouterr()
    assert out == "a\nb\n"
    assert err == (
        "Error response from daemon: busy is in use\n"
        "Error response from daemon: no such thing: gone\n"
    )
    assert store.names == ["busy"]


def test_remove_missing_ok_passes_over_only_missing_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert remove_each(["gone", "a"], Store("a").remove, missing_ok=True) == 0
    assert capsys.readouterr() == ("a\n", "")
    assert remove_each(["busy"], Store("busy").remove, missing_ok=True) == 1


def test_print_deleted(capsys: pytest.CaptureFixture[str]) -> None:
    print_deleted("Volumes", [])
    assert capsys.readouterr().out == ""
    print_deleted("Volumes", ["v1", "v2"])
    assert capsys.readouterr().out == "Deleted Volumes:\nv1\nv2\n\n"
