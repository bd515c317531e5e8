"""The json-file writer: Docker's entry format, line cutting as moby's copier, rotation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from skiff.shim.jsonfile import (
    BUFFER_SIZE,
    JsonFileWriter,
    LineSplitter,
    LogOptions,
    encode_entry,
    format_time,
    parse_size,
    parse_time,
)

T0 = 1_714_557_600_000_000_000  # 2024-05-01T10:00:00Z


def test_entry_is_dockers_json_line() -> None:
    raw = encode_entry("stdout", b"hello\n", T0 + 123_450_000)
    assert raw == b'{"log":"hello\\n","stream":"stdout","time":"2024-05-01T10:00:00.12345Z"}\n'


def test_entry_escapes_as_go_and_replaces_bad_utf8() -> None:
    raw = encode_entry("stderr", b"<a&b> \xe2\x80\xa8 caf\xc3\xa9 \xff\n", T0)
    assert b"\\u003ca\\u0026b\\u003e" in raw
    assert b"\\u2028" in raw
    assert "café".encode() in raw
    doc = json.loads(raw)
    assert doc["log"] == "<a&b> \u2028 café \ufffd\n"
    assert doc["stream"] == "stderr"
    assert doc["time"] == "2024-05-01T10:00:00Z"


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "2024-05-01T10:00:00Z"),
        (1, "2024-05-01T10:00:00.000000001Z"),
        (100_000_000, "2024-05-01T10:00:00.1Z"),
        (999_999_999, "2024-05-01T10:00:00.999999999Z"),
    ],
)
def test_time_round_trip(ns: int, text: str) -> None:
    assert format_time(T0 + ns) == text
    assert parse_time(text) == T0 + ns


def test_parse_time_with_offset_and_microseconds() -> None:
    assert parse_time("2024-05-01T12:00:00.5+02:00") == T0 + 500_000_000
    assert parse_time("2024-05-01T09:30:00.000001-00:30") == T0 + 1000
    with pytest.raises(ValueError, match="invalid time"):
        parse_time("yesterday")


def test_parse_size() -> None:
    assert parse_size("10m") == 10_000_000
    assert parse_size("512k") == 512_000
    assert parse_size("1g") == 1_000_000_000
    assert parse_size("100") == 100
    assert parse_size("-1") == -1
    for bad in ("ten", "5x", "-5"):
        with pytest.raises(ValueError, match="invalid size"):
            parse_size(bad)


def test_log_options_from_docker_opts() -> None:
    opts = LogOptions.from_opts("/l", "json-file", {"max-size": "1k", "max-file": "5"})
    assert (opts.max_size, opts.max_file) == (1000, 5)
    assert LogOptions.from_dict(opts.to_dict()).to_dict() == opts.to_dict()
    default = LogOptions.from_opts("/l", "json-file", {})
    assert (default.max_size, default.max_file) == (10 * 1024 * 1024, 3)
    with pytest.raises(ValueError, match="unsupported"):
        LogOptions("/l", "syslog")


class Recorder:
    def __init__(self) -> None:
        self.entries: list[tuple[str, bytes, int]] = []
        self.now = T0

    def clock(self) -> int:
        self.now += 1
        return self.now

    def emit(self, stream: str, line: bytes, time_ns: int) -> None:
        self.entries.append((stream, line, time_ns))


def test_splitter_logs_complete_lines_and_keeps_the_rest() -> None:
    rec = Recorder()
    s = LineSplitter("stdout", rec.emit, rec.clock)
    s.feed(b"one\ntw")
    s.feed(b"o\nthree")
    assert [e[1] for e in rec.entries] == [b"one\n", b"two\n"]
    s.close()
    assert [e[1] for e in rec.entries] == [b"one\n", b"two\n", b"three"]


def test_splitter_cuts_long_lines_into_partials_with_the_first_time() -> None:
    rec = Recorder()
    s = LineSplitter("stderr", rec.emit, rec.clock)
    s.feed(b"x" * (BUFFER_SIZE + 10))
    s.feed(b"y" * BUFFER_SIZE)
    s.feed(b"end\nnext\n")
    lines = [e[1] for e in rec.entries]
    assert lines == [
        b"x" * BUFFER_SIZE,
        b"x" * 10 + b"y" * (BUFFER_SIZE - 10),
        b"y" * 10 + b"end\n",
        b"next\n",
    ]
    times = [e[2] for e in rec.entries]
    assert times[0] == times[1] == times[2]
    assert times[3] > times[2]
    assert all(e[0] == "stderr" for e in rec.entries)


def test_splitter_cuts_a_long_line_that_arrives_in_one_read() -> None:
    rec = Recorder()
    s = LineSplitter("stdout", rec.emit, rec.clock)
    s.feed(b"a\n" + b"z" * (2 * BUFFER_SIZE + 5) + b"\nb\n")
    assert [len(e[1]) for e in rec.entries] == [2, BUFFER_SIZE, BUFFER_SIZE, 6, 2]


def read_lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_writer_appends_and_rotates(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    entry_size = len(encode_entry("stdout", b"0123456789\n", T0))
    w = JsonFileWriter(LogOptions(str(path), max_size=entry_size * 3, max_file=3))
    for i in range(10):
        w.write("stdout", f"{i:010d}\n".encode(), T0 + i)
    w.close()
    names = sorted(os.listdir(tmp_path))
    assert names == ["log.json", "log.json.1", "log.json.2"]
    # Rotation happens before a write finds the file full: 3 entries per file.
    assert [d["log"] for d in read_lines(path)] == [f"{i:010d}\n" for i in (9,)]
    assert [d["log"] for d in read_lines(tmp_path / "log.json.1")] == [
        f"{i:010d}\n" for i in (6, 7, 8)
    ]
    assert [d["log"] for d in read_lines(tmp_path / "log.json.2")] == [
        f"{i:010d}\n" for i in (3, 4, 5)
    ]


def test_writer_reopens_an_existing_log_and_counts_its_size(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_bytes(encode_entry("stdout", b"old\n", T0) * 4)
    w = JsonFileWriter(LogOptions(str(path), max_size=10, max_file=2))
    w.write("stdout", b"new\n", T0)
    w.close()
    assert [d["log"] for d in read_lines(path)] == ["new\n"]
    assert len(read_lines(tmp_path / "log.json.1")) == 4


def test_writer_with_one_file_truncates(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    w = JsonFileWriter(LogOptions(str(path), max_size=1, max_file=1))
    w.write("stdout", b"a\n", T0)
    w.write("stdout", b"b\n", T0)
    w.close()
    assert os.listdir(tmp_path) == ["log.json"]
    assert [d["log"] for d in read_lines(path)] == ["b\n"]


def test_writer_never_rotates_without_a_max_size(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    w = JsonFileWriter(LogOptions(str(path), max_size=-1))
    for _ in range(100):
        w.write("stdout", b"x\n", T0)
    w.close()
    assert os.listdir(tmp_path) == ["log.json"]
