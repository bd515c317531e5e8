"""The json-file reader: all, --tail, --since, --until, follow across rotations."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from skiff.shim.jsonfile import JsonFileWriter, LogOptions, encode_entry
from skiff.shim.logreader import LogEntry, log_files, read_logs, read_logs_async

T0 = 1_714_557_600_000_000_000
SEC = 1_000_000_000


def write_log(path: Path, count: int, max_size: int = -1, max_file: int = 3) -> JsonFileWriter:
    w = JsonFileWriter(LogOptions(str(path), max_size=max_size, max_file=max_file))
    for i in range(count):
        w.write("stdout" if i % 2 == 0 else "stderr", f"line {i}\n".encode(), T0 + i * SEC)
    return w


def lines(entries: list[LogEntry]) -> list[str]:
    return [e.line.decode().rstrip("\n") for e in entries]


def test_reads_everything_in_order_over_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    entry = len(encode_entry("stdout", b"line 0\n", T0))
    write_log(path, 10, max_size=entry * 2, max_file=10).close()
    assert len(log_files(str(path))) == 5
    got = list(read_logs(str(path)))
    assert lines(got) == [f"line {i}" for i in range(10)]
    assert got[0].stream == "stdout"
    assert got[1].stream == "stderr"
    assert got[3].time == "2024-05-01T10:00:03Z"
    assert got[3].time_ns == T0 + 3 * SEC
    assert not got[0].partial


def test_tail_spans_files(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    entry = len(encode_entry("stdout", b"line 0\n", T0))
    write_log(path, 10, max_size=entry * 3, max_file=10).close()
    assert lines(list(read_logs(str(path), tail=5))) == [f"line {i}" for i in range(5, 10)]
    assert lines(list(read_logs(str(path), tail=0))) == []
    assert len(list(read_logs(str(path), tail=100))) == 10


def test_tail_of_a_big_file_reads_backwards(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    write_log(path, 20_000).close()
    assert lines(list(read_logs(str(path), tail=3))) == [
        f"line {i}" for i in (19_997, 19_998, 19_999)
    ]


def test_since_and_until(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    write_log(path, 10).close()
    got = read_logs(str(path), since_ns=T0 + 3 * SEC, until_ns=T0 + 6 * SEC)
    assert lines(list(got)) == ["line 3", "line 4", "line 5", "line 6"]
    got = read_logs(str(path), tail=2, since_ns=T0 + 9 * SEC)
    assert lines(list(got)) == ["line 9"]


def test_missing_log_reads_empty(tmp_path: Path) -> None:
    assert list(read_logs(str(tmp_path / "none.json"))) == []


def test_torn_last_line_and_garbage_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_bytes(
        encode_entry("stdout", b"a\n", T0) + b"not json\n" + encode_entry("stdout", b"b\n", T0)[:-9]
    )
    assert lines(list(read_logs(str(path)))) == ["a"]


def test_partial_entries_come_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    w = JsonFileWriter(LogOptions(str(path)))
    w.write("stdout", b"no newline", T0)
    w.close()
    (entry,) = read_logs(str(path))
    assert entry.partial
    assert entry.line == b"no newline"


def test_follow_sees_appends_and_rotations_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    entry = len(encode_entry("stdout", b"line 0\n", T0))
    writer = write_log(path, 3, max_size=entry * 2, max_file=5)
    stop = threading.Event()

    def produce() -> None:
        for i in range(3, 12):
            time.sleep(0.01)
            writer.write("stdout", f"line {i}\n".encode(), T0 + i * SEC)
        writer.close()
        stop.set()

    thread = threading.Thread(target=produce)
    thread.start()
    got = list(read_logs(str(path), tail=1, follow=True, stopped=stop.is_set, poll_interval=0.005))
    thread.join()
    assert lines(got) == [f"line {i}" for i in range(2, 12)]


def test_follow_with_until_ends_at_the_first_later_entry(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    writer = write_log(path, 2)
    writer.write("stdout", b"late\n", T0 + 100 * SEC)
    writer.close()
    got = read_logs(str(path), follow=True, until_ns=T0 + 50 * SEC, stopped=lambda: False)
    assert lines(list(got)) == ["line 0", "line 1"]


def test_async_follow(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    writer = write_log(path, 2)

    async def main() -> list[LogEntry]:
        stopped = False

        async def produce() -> None:
            nonlocal stopped
            await asyncio.sleep(0.02)
            writer.write("stdout", b"line 2\n", T0 + 2 * SEC)
            await asyncio.sleep(0.02)
            stopped = True

        task = asyncio.create_task(produce())
        got = [
            e
            async for e in read_logs_async(
                str(path), follow=True, stopped=lambda: stopped, poll_interval=0.005
            )
        ]
        await task
        return got

    assert lines(asyncio.run(main())) == ["line 0", "line 1", "line 2"]
    writer.close()
