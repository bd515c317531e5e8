"""The shim protocol's encoding: lines, replies and their errors, frames, messages."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest

from skiff.errors import Conflict, InvalidArgument, NotFound, NotModified
from skiff.shim import protocol as p


def test_a_message_is_one_json_line() -> None:
    raw = p.encode({"op": "state", "text": "a\nb"})
    assert raw.endswith(b"\n")
    assert raw.count(b"\n") == 1
    assert p.decode(raw) == {"op": "state", "text": "a\nb"}


DOCS: list[object] = [
    {"op": "state", "n": -12, "x": 1.5, "big": 2**70, "none": None, "yes": True, "no": False},
    {"text": 'caf\u00e9 \u2028 <&> \x00 "q" \\ \U0001f600', "nested": {"l": [1, [2, {}], []]}},
    {"float": 1e300, "tiny": 5e-324, "neg": -0.0},
    [],
    "text",
    0,
]


@pytest.mark.parametrize("doc", DOCS)
def test_dumps_and_loads_are_jsons(doc: object) -> None:
    text = p.dumps(doc)
    assert text == json.dumps(doc)
    assert p.loads(text.encode()) == json.loads(text) == doc
    spaced = b" \t\r\n" + text.encode() + b" \n\t"
    assert p.loads(spaced) == json.loads(spaced)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"  ",
        b"not json",
        b'{"a": 1} x',
        b'{"a": 1}{}',
        b'{"a": }',
        b"\xff{}",
        b"[1,]",
        b"NaN x",
    ],
)
def test_loads_fails_as_json_does(raw: bytes) -> None:
    assert _error(p.loads, raw) == _error(json.loads, raw)


def _error(loads: Callable[[bytes], object], raw: bytes) -> str:
    try:
        loads(raw)
    except ValueError as e:
        return f"{type(e).__name__}: {e}"
    raise AssertionError(f"{raw!r} loaded")


def test_loads_takes_what_json_takes() -> None:
    for raw in (b"\xef\xbb\xbf{}", '{"a": 1}'.encode("utf-16"), b"-Infinity", b" 7 "):
        assert p.loads(raw) == json.loads(raw)
    nan = p.loads(b"NaN")
    assert isinstance(nan, float)
    assert math.isnan(nan)


def test_dumps_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        p.dumps({"s": {1}})
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        p.dumps(loop)


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"'])
def test_decode_refuses_what_is_not_an_object(raw: bytes) -> None:
    with pytest.raises(p.ProtocolError):
        p.decode(raw)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (Conflict("busy"), Conflict),
        (NotFound("no such exec: e"), NotFound),
        (NotModified("already running"), NotModified),
        (InvalidArgument("bad"), InvalidArgument),
    ],
)
def test_errors_travel_as_their_category(error: Exception, kind: type[Exception]) -> None:
    reply = p.decode(p.encode(p.error_reply(error)))
    assert reply["ok"] is False
    with pytest.raises(kind, match=str(error)):
        p.check_reply(reply)


def test_other_errors_are_internal() -> None:
    reply = p.error_reply(KeyError("x"))
    assert reply["kind"] == "Internal"
    assert "KeyError" in str(reply["error"])
    with pytest.raises(p.ShimError):
        p.check_reply(reply)
    assert p.check_reply({"ok": True, "pid": 1}) == {"ok": True, "pid": 1}


def test_frames_are_dockers_stream_header() -> None:
    assert p.frame(p.STDOUT, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert p.frame(p.STDERR, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"


def test_frame_decoder_reassembles_split_frames() -> None:
    data = (
        p.frame(p.STDIN, b"abc") + p.frame(p.CLOSE_STDIN) + p.frame_json(p.EXIT, {"exit_code": 3})
    )
    decoder = p.FrameDecoder()
    got = []
    for i in range(len(data)):
        got += decoder.feed(data[i : i + 1])
    assert got == [(p.STDIN, b"abc"), (p.CLOSE_STDIN, b""), (p.EXIT, b'{"exit_code": 3}')]
    assert decoder.pending == 0


def test_messages_round_trip() -> None:
    req = p.SpawnRequest("c", "/d", "/b", ["runc"], "/r", tty=True, stdin=True, log={"max_file": 2})
    assert p.SpawnRequest.from_dict(p.decode(p.encode(req.to_dict()))) == req
    state = p.ShimState("c", p.RUNNING, pid=5, shim_pid=4, exit_code=None, runs=1)
    assert p.ShimState.from_dict(state.to_dict()) == state
    status = p.ExitStatus(137, "t0", "t1", 9, oom_killed=True)
    assert p.ExitStatus.from_dict(status.to_dict()) == status
    # An exit file written before the field existed still reads (not OOM-killed).
    assert p.ExitStatus.from_dict({"exit_code": 0}).oom_killed is False
    assert "exit_code=137" in repr(status)
    exec_state = p.ExecState("e", 7, False, 0)
    assert p.ExecState.from_dict(exec_state.to_dict()) == exec_state
    assert status != exec_state


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"dir": "/d", "bundle": "/b"}, "id"),
        ({"id": "c", "dir": "/d", "bundle": "/b", "runtime": []}, "runtime"),
        ({"id": "c", "dir": "/d", "bundle": "/b", "tty": "yes"}, "tty"),
        ({"id": "c", "dir": "/d", "bundle": "/b", "log": "json"}, "log"),
    ],
)
def test_spawn_request_checks_its_fields(doc: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        p.SpawnRequest.from_dict(doc)
