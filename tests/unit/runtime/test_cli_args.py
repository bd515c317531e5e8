from __future__ import annotations

import signal

import pytest

from skiff.errors import InvalidArgument
from skiff.runtime.cli.args import Flag, parse
from skiff.runtime.control import parse_signal

FLAGS = [Flag("bundle", "b"), Flag("detach", "d", boolean=True), Flag("env", "e", repeat=True)]


def test_flags_in_every_spelling() -> None:
    p = parse(["-b", "x", "--detach", "--env=A=1", "-e", "B=2", "id"], FLAGS)
    assert p.text("bundle") == "x"
    assert p.flag("detach")
    assert p.all("env") == ["A=1", "B=2"]
    assert p.args == ["id"]


def test_flags_after_the_id_and_double_dash() -> None:
    p = parse(["id", "--bundle=y", "--", "--detach"], FLAGS)
    assert p.args == ["id", "--detach"]
    assert p.text("bundle") == "y"
    assert not p.flag("detach")


def test_stop_at_first_arg_keeps_the_command_line() -> None:
    p = parse(["-d", "id", "sh", "-c", "echo"], FLAGS, stop_at_first_arg=True)
    assert p.args == ["id", "sh", "-c", "echo"]


@pytest.mark.parametrize("argv", [["--nope"], ["--bundle"], ["--detach=maybe"]])
def test_bad_flags(argv: list[str]) -> None:
    with pytest.raises(InvalidArgument):
        parse(argv, FLAGS)


@pytest.mark.parametrize(
    ("text", "number"),
    [("KILL", 9), ("SIGTERM", 15), ("9", 9), ("hup", 1), ("RTMIN+1", signal.SIGRTMIN + 1)],
)
def test_signals(text: str, number: int) -> None:
    assert parse_signal(text) == number


@pytest.mark.parametrize("text", ["NOPE", "0", "99", "RTMIN+x"])
def test_bad_signals(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_signal(text)
