"""Reading a container's json-file log: `docker logs` with --tail, --since, --until, -f.

The reader works on the files alone (log.json and its rotations log.json.1,
log.json.2, ...), so logs read the same while the container runs, after it
exited and while its shim is gone:

    for entry in read_logs(path, tail=10, follow=True, stopped=lambda: not running):
        ...                                      # entry.stream, entry.line, entry.time

    async for entry in read_logs_async(path, since_ns=..., follow=True, stopped=...):
        ...

Order of the filters, as moby's json-file reader: --tail picks the last N
entries over all files (oldest file first), then entries before --since are
skipped and the first entry after --until ends the read. With follow, the
reader keeps reading what the shim appends, crossing rotations (it notices
that log.json is a new file), until `stopped()` says the container has exited;
then it reads what is left and ends.
"""

from __future__ import annotations

import json
import os
import re

from skiff.shim.jsonfile import parse_time, rotated_name

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

CHUNK = 64 * 1024
BATCH = 1000  # entries per list of read_log_batches_async


class LogEntry:
    """One entry. `line` is the raw output, with its "\\n" unless the entry is partial."""

    __slots__ = ("_time_ns", "line", "stream", "time")

    def __init__(self, stream: str, line: bytes, time: str, time_ns: int | None = None) -> None:
        self.stream = stream
        self.line = line
        self.time = time
        self._time_ns = time_ns

    @property
    def time_ns(self) -> int:
        """The time in nanoseconds, parsed on first use (only --since/--until need it)."""
        if self._time_ns is None:
            self._time_ns = parse_time(self.time)
        return self._time_ns

    @property
    def partial(self) -> bool:
        return not self.line.endswith(b"\n")

    def __repr__(self) -> str:
        return f"LogEntry({self.stream!r}, {self.line!r}, {self.time!r})"


LogBatch = list[LogEntry]  # what read_log_batches_async yields


# The line as jsonfile.encode_entry writes it when the output has no escapes other
# than a final "\n" (the common case): the bytes between the quotes are the output.
_PLAIN = re.compile(
    rb'\{"log":"([^"\\\x00-\x1f]*)(\\n)?","stream":"(stdout|stderr)",'
    rb'"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d))"\}\Z'
)


def decode_entry(raw: bytes) -> LogEntry | None:
    """A line of the file, or None for a line that is not a log entry (a torn write)."""
    m = _PLAIN.match(raw)
    if m is not None:
        text, newline, stream, stamp = m.groups()
        if not text.isascii():
            try:
                text.decode()  # json.loads would refuse bytes that are not UTF-8
            except UnicodeDecodeError:
                return None
        return LogEntry(
            "stderr" if stream == b"stderr" else "stdout",
            text + b"\n" if newline else text,
            stamp.decode(),
        )
    return _decode_json(raw)


def _decode_json(raw: bytes) -> LogEntry | None:
    try:
        doc = json.loads(raw)
        stamp = doc["time"]
        return LogEntry(doc.get("stream", "stdout"), doc["log"].encode(), stamp, parse_time(stamp))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def log_files(path: str) -> list[str]:
    """The files of a log, oldest first: log.json.N ... log.json.1, log.json."""
    found = []
    index = 1
    while os.path.exists(rotated_name(path, index)):
        found.append(rotated_name(path, index))
        index += 1
    found.reverse()
    if os.path.exists(path):
        found.append(path)
    return found


def _last_lines(fd: int, end: int, count: int) -> tuple[list[bytes], bytes]:
    """The last `count` complete lines of bytes [0, end) of a file, read backwards in
    chunks, and the torn bytes after the last newline."""
    pos = end
    chunks: list[bytes] = []
    newlines = 0
    # One newline more than lines wanted: the first line read may be cut.
    while pos > 0 and newlines <= count:
        size = min(CHUNK, pos)
        pos -= size
        chunk = os.pread(fd, size, pos)
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
    lines = b"".join(reversed(chunks)).split(b"\n")
    rest = lines.pop()
    if pos > 0:
        lines = lines[1:]
    return (lines[-count:] if count > 0 else []), rest


def _all_lines(cursor: LogCursor, end: int) -> Iterator[bytes]:
    """Complete lines of bytes [0, end) of the cursor's file; it goes on after them."""
    offset, rest = 0, b""
    while offset < end:
        chunk = os.pread(cursor.fd, min(CHUNK * 4, end - offset), offset)
        if not chunk:
            break
        offset += len(chunk)
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    cursor.skip_to(offset, rest)


class LogCursor:
    """Reads new lines of a log that may grow and rotate; the engine of `follow`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: int = -1
        self._ino = 0
        self._offset = 0
        self._rest = b""

    @property
    def fd(self) -> int:
        return self._file

    def open(self) -> int:
        """Open the current file at its start; return its size now (-1 when absent)."""
        self.close()
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return -1
        st = os.fstat(fd)
        self._file, self._ino = fd, st.st_ino
        self._offset, self._rest = 0, b""
        return st.st_size

    def skip_to(self, offset: int, rest: bytes = b"") -> None:
        """Continue after byte `offset`; `rest` is the torn line read before it."""
        self._offset, self._rest = offset, rest

    def poll(self) -> list[bytes]:
        """Complete lines appended since the last poll, following a rotation."""
        lines = self._read_available()
        if self._rotated():
            lines += self._read_available()  # what was written before the rename
            self.open()
            lines += self._read_available()
        return lines

    def _rotated(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return self._file < 0 or st.st_ino != self._ino

    def _read_available(self) -> list[bytes]:
        if self._file < 0:
            return []
        size = os.fstat(self._file).st_size
        if size < self._offset:  # truncated (max-file 1): start over
            self._offset, self._rest = 0, b""
        data = b""
        while True:
            chunk = os.pread(self._file, CHUNK * 4, self._offset)
            if not chunk:
                break
            self._offset += len(chunk)
            data += chunk
        if not data:
            return []
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        return lines

    def close(self) -> None:
        if self._file >= 0:
            os.close(self._file)
            self._file = -1


class _Reader:
    """The filtering shared by the sync and async readers."""

    def __init__(self, path: str, since_ns: int | None, until_ns: int | None) -> None:
        self.path = path
        self.since_ns = since_ns
        self.until_ns = until_ns
        self.done = False

    def accept(self, raw: bytes) -> LogEntry | None:
        if not raw:
            return None
        entry = decode_entry(raw)
        if entry is None:
            return None
        if self.until_ns is None and self.since_ns is None:
            return entry
        try:
            time_ns = entry.time_ns
        except ValueError:
            return None
        if self.until_ns is not None and time_ns > self.until_ns:
            self.done = True
            return None
        if self.since_ns is not None and time_ns < self.since_ns:
            return None
        return entry

    def initial(self, tail: int | None, cursor: LogCursor) -> Iterator[bytes]:
        """What the log holds now. The cursor is left just after it, for follow."""
        end = cursor.open()
        older = [name for name in log_files(self.path) if name != self.path]
        if tail is None or tail < 0:
            for name in older:
                with open(name, "rb") as f:
                    for line in f:
                        if line.endswith(b"\n"):
                            yield line[:-1]
            if end >= 0:
                yield from _all_lines(cursor, end)
            return
        picked: list[list[bytes]] = []
        wanted = tail
        if end >= 0:
            lines, rest = _last_lines(cursor.fd, end, wanted)
            cursor.skip_to(end, rest)
            picked.append(lines)
            wanted -= len(lines)
        for name in reversed(older):
            if wanted <= 0:
                break
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
            try:
                lines, _ = _last_lines(fd, os.fstat(fd).st_size, wanted)
            finally:
                os.close(fd)
            picked.append(lines)
            wanted -= len(lines)
        for lines in reversed(picked):
            yield from lines


def read_logs(
    path: str,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    tail: int | None = None,
    follow: bool = False,
    stopped: Callable[[], bool] = lambda: True,
    poll_interval: float = 0.1,
) -> Iterator[LogEntry]:
    """The entries of the log at `path` (see the module doc). Blocking; for threads and tools."""
    import time

    reader = _Reader(path, since_ns, until_ns)
    cursor = LogCursor(path)
    try:
        for raw in reader.initial(tail, cursor):
            entry = reader.accept(raw)
            if reader.done:
                return
            if entry is not None:
                yield entry
        if not follow:
            return
        while True:
            last_round = stopped()
            for raw in cursor.poll():
                entry = reader.accept(raw)
                if reader.done:
                    return
                if entry is not None:
                    yield entry
            if last_round:
                return
            time.sleep(poll_interval)
    finally:
        cursor.close()


async def read_logs_async(
    path: str,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    tail: int | None = None,
    follow: bool = False,
    stopped: Callable[[], bool] = lambda: True,
    poll_interval: float = 0.1,
) -> AsyncIterator[LogEntry]:
    """read_logs for asyncio: files are read in place (local and fast), waits are awaited.

    The initial read yields to the loop every 1000 entries so a long log does not
    stall the daemon.
    """
    async for batch in read_log_batches_async(
        path,
        since_ns=since_ns,
        until_ns=until_ns,
        tail=tail,
        follow=follow,
        stopped=stopped,
        poll_interval=poll_interval,
    ):
        for entry in batch:
            yield entry


async def read_log_batches_async(
    path: str,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    tail: int | None = None,
    follow: bool = False,
    stopped: Callable[[], bool] = lambda: True,
    poll_interval: float = 0.1,
    batch: int = BATCH,
) -> AsyncIterator[list[LogEntry]]:
    """read_logs_async in lists of entries (never empty): up to `batch` of them from
    what the log holds, then what each poll of a follow finds. A writer sends each
    list in one write; the loop runs between lists."""
    import asyncio

    reader = _Reader(path, since_ns, until_ns)
    cursor = LogCursor(path)
    accept = reader.accept
    try:
        out: list[LogEntry] = []
        for raw in reader.initial(tail, cursor):
            entry = accept(raw)
            if reader.done:
                break
            if entry is not None:
                out.append(entry)
                if len(out) >= batch:
                    yield out
                    out = []
                    await asyncio.sleep(0)
        if out:
            yield out
        if reader.done or not follow:
            return
        while True:
            last_round = stopped()
            out = []
            for raw in cursor.poll():
                entry = accept(raw)
                if reader.done:
                    break
                if entry is not None:
                    out.append(entry)
            if out:
                yield out
            if reader.done or last_round:
                return
            await asyncio.sleep(poll_interval)
    finally:
        cursor.close()
