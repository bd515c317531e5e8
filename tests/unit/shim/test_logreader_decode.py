"""decode_entry: the fast path for plain lines agrees with json.loads on every line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from skiff.shim.jsonfile import encode_entry, parse_time
from skiff.shim.logreader import _decode_json, decode_entry, read_log_batches_async

T0 = 1_714_557_600_123_456_789

OUTPUTS = [
    b"1\n",
    b"plain text without newline",
    b"",
    b"\n",
    b'say "hi"\n',
    b"back\\slash\n",
    b"tab\there\r\n",
    b"ctrl \x01\x1b[31m red\x1b[0m\n",
    "unicode: héllo wörld ✓ 日本語 🐳\n".encode(),
    b"two\nnewlines\n",
    b"\xff\xfe not utf-8\n",
    b'ends with escaped quote \\"\n',
    "</script>\u2028 & <>\n".encode(),
]


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_decode_matches_json(output: bytes, stream: str) -> None:
    raw = encode_entry(stream, output, T0).rstrip(b"\n")
    fast = decode_entry(raw)
    slow = _decode_json(raw)
    assert fast is not None
    assert slow is not None
    assert (fast.stream, fast.line, fast.time, fast.time_ns) == (
        slow.stream,
        slow.line,
        slow.time,
        slow.time_ns,
    )
    doc = json.loads(raw)
    assert fast.line == doc["log"].encode()
    assert fast.time_ns == parse_time(doc["time"])


def test_fast_path_takes_plain_lines_and_unicode() -> None:
    raw = encode_entry("stdout", "héllo ✓\n".encode(), T0).rstrip(b"\n")
    e = decode_entry(raw)
    assert e is not None
    assert e.line == "héllo ✓\n".encode()
    assert e._time_ns is None


@pytest.mark.parametrize(
    "raw",
    [
        b'{"log":"torn',
        b'{"log":"x\\n","stream":"stdout","time":"2024-05-01T10:00:00Z"',
        b'{"log":"x\\n","stream":"stdout"}',
        b'{"log":"\xff\\n","stream":"stdout","time":"2024-05-01T10:00:00Z"}',
        b'{"log":"a\x01b","stream":"stdout","time":"2024-05-01T10:00:00Z"}',
        b"not json",
        b"",
    ],
)
def test_not_entries(raw: bytes) -> None:
    assert decode_entry(raw) is None
    assert _decode_json(raw) is None


def test_other_key_order_and_offsets_still_read() -> None:
    raw = b'{"stream":"stderr","time":"2024-05-01T12:00:00+02:00","log":"x\\u00e9\\n"}'
    e = decode_entry(raw)
    assert e is not None
    assert (e.stream, e.line, e.time_ns) == (
        "stderr",
        "xé\n".encode(),
        parse_time("2024-05-01T10:00:00Z"),
    )


def test_batches(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_bytes(b"".join(encode_entry("stdout", f"{i}\n".encode(), T0 + i) for i in range(25)))

    async def collect() -> list[list[bytes]]:
        return [[e.line for e in b] async for b in read_log_batches_async(str(path), batch=10)]

    got = asyncio.run(collect())
    assert [len(b) for b in got] == [10, 10, 5]
    assert [line for b in got for line in b] == [f"{i}\n".encode() for i in range(25)]

    async def until() -> list[bytes]:
        out: list[bytes] = []
        async for b in read_log_batches_async(str(path), until_ns=T0 + 11, batch=10):
            out += [e.line for e in b]
        return out

    assert asyncio.run(until()) == [f"{i}\n".encode() for i in range(12)]
