"""Docker's json-file log format: one JSON object per line, rotated by size.

    {"log":"hello\\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}

What goes in `log` follows moby's copier (daemon/logger/copier.go) and the
json-file driver:

- a complete line is logged with its "\\n";
- a line longer than the 16 KiB buffer is cut into pieces: every piece but
  the last is logged without "\\n" (a *partial* entry); the last one ends it
  with "\\n". All pieces carry the time of the first;
- bytes left without a newline when the stream ends are logged without "\\n".

Rotation (Docker's max-size/max-file, on by default here): before an entry is
written, a current file that has reached max-size is renamed to log.json.1,
log.json.1 to log.json.2 ..., keeping at most max-file files in all.

Times are RFC 3339 with nanoseconds in UTC, trailing zeros trimmed, as Go's
time.RFC3339Nano prints them.
"""

from __future__ import annotations

import os
import time
from json.encoder import encode_basestring

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable

# moby's copier: defaultBufSize. Longer lines are logged in pieces of this size.
BUFFER_SIZE = 16 * 1024

DEFAULT_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_FILE = 3

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3}
_UNITS.update({"gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3})


def parse_size(text: str) -> int:
    """Docker's log-opt sizes: "10m", "512k", "1g" (decimal, as docker/go-units'
    FromHumanSize), or a plain number of bytes. -1 means unlimited."""
    value = text.strip().lower()
    if value == "-1":
        return -1
    digits = value.rstrip("abcdefghijklmnopqrstuvwxyz ")
    unit = value[len(digits) :].strip()
    if unit not in _UNITS:
        raise ValueError(f"invalid size: {text!r}")
    try:
        number = float(digits)
    except ValueError:
        raise ValueError(f"invalid size: {text!r}") from None
    if number < 0:
        raise ValueError(f"invalid size: {text!r}")
    return int(number * _UNITS[unit])


class LogOptions:
    """Where and how a container's output is logged (Docker's LogConfig, json-file only).

    driver "none" logs nothing (docker run --log-driver none); max_size -1 never rotates.
    """

    __slots__ = ("driver", "max_file", "max_size", "path")

    def __init__(
        self,
        path: str = "",
        driver: str = "json-file",
        max_size: int = DEFAULT_MAX_SIZE,
        max_file: int = DEFAULT_MAX_FILE,
    ) -> None:
        if driver not in ("json-file", "none"):
            raise ValueError(f"unsupported log driver: {driver}")
        if max_file < 1:
            raise ValueError("max-file must be at least 1")
        self.path = path
        self.driver = driver
        self.max_size = max_size
        self.max_file = max_file

    @classmethod
    def from_opts(cls, path: str, driver: str, opts: dict[str, str]) -> LogOptions:
        """From Docker's HostConfig.LogConfig: {"max-size": "10m", "max-file": "3"}."""
        max_size = parse_size(opts["max-size"]) if "max-size" in opts else DEFAULT_MAX_SIZE
        try:
            max_file = int(opts.get("max-file", DEFAULT_MAX_FILE))
        except ValueError:
            raise ValueError(f"invalid max-file: {opts['max-file']!r}") from None
        return cls(path, driver, max_size, max_file)

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "driver": self.driver,
            "max_size": self.max_size,
            "max_file": self.max_file,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> LogOptions:
        path, driver = doc.get("path", ""), doc.get("driver", "json-file")
        max_size, max_file = doc.get("max_size", DEFAULT_MAX_SIZE), doc.get("max_file", 3)
        if not (isinstance(path, str) and isinstance(driver, str)):
            raise ValueError("log: path and driver are strings")
        if not (isinstance(max_size, int) and isinstance(max_file, int)):
            raise ValueError("log: max_size and max_file are integers")
        return cls(path, driver, max_size, max_file)


# --- time ------------------------------------------------------------------

_second_cache: tuple[int, str] = (-1, "")


def format_time(time_ns: int) -> str:
    """RFC3339Nano in UTC: 2024-05-01T10:00:00.1234Z (trailing zeros trimmed)."""
    global _second_cache
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    cached_second, prefix = _second_cache
    if cached_second != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second_cache = (seconds, prefix)
    if nanos == 0:
        return prefix + "Z"
    return f"{prefix}.{nanos:09d}".rstrip("0") + "Z"


_epoch_cache: dict[str, int] = {}


def parse_time(text: str) -> int:
    """RFC 3339 (any fraction, Z or ±hh:mm) to nanoseconds since the epoch."""
    base = text[:19]
    seconds = _epoch_cache.get(base)
    if seconds is None:
        import calendar

        try:
            seconds = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            raise ValueError(f"invalid time: {text!r}") from None
        if len(_epoch_cache) > 4096:
            _epoch_cache.clear()
        _epoch_cache[base] = seconds
    rest = text[19:]
    nanos = 0
    if rest.startswith("."):
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        fraction = rest[1:end]
        nanos = int((fraction + "000000000")[:9]) if fraction else 0
        rest = rest[end:]
    if rest in ("Z", "z"):
        offset = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        offset = (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60) * (1 if rest[0] == "+" else -1)
    else:
        raise ValueError(f"invalid time: {text!r}")
    return (seconds - offset) * 1_000_000_000 + nanos


# --- entries ----------------------------------------------------------------


def encode_entry(stream: str, line: bytes, time_ns: int) -> bytes:
    """One log line; `line` already holds its "\\n" unless the entry is partial.

    Escapes as Go's encoding/json does (<, >, & and the two line separators as
    \\u escapes; invalid UTF-8 becomes U+FFFD); other text is written as UTF-8.
    """
    text = encode_basestring(line.decode("utf-8", "replace"))  # json.dumps(str, ensure_ascii=False)
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        text = (
            text.replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
            .replace("\u2028", "\\u2028")
            .replace("\u2029", "\\u2029")
        )
    stamp = format_time(time_ns)
    return f'{{"log":{text},"stream":"{stream}","time":"{stamp}"}}\n'.encode()


class LineSplitter:
    """Cuts one output stream into log entries as moby's copier does (see the module doc).

    `emit(stream, line, time_ns)` gets each entry; `line` ends in "\\n" unless partial.
    """

    __slots__ = ("_buf", "_clock", "_emit", "_partial_time", "stream")

    def __init__(
        self,
        stream: str,
        emit: Callable[[str, bytes, int], None],
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.stream = stream
        self._emit = emit
        self._clock = clock
        self._buf = b""
        self._partial_time = 0  # time of the first piece of a line being cut, or 0

    def feed(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        start = 0
        while True:
            # A newline within one buffer's length ends a line; a full buffer
            # without one is a piece of a longer line.
            end = buf.find(b"\n", start, start + BUFFER_SIZE)
            if end >= 0:
                self._emit(self.stream, buf[start : end + 1], self._time_of_line_end())
                start = end + 1
            elif len(buf) - start >= BUFFER_SIZE:
                self._emit(self.stream, buf[start : start + BUFFER_SIZE], self._time_of_piece())
                start += BUFFER_SIZE
            else:
                break
        self._buf = buf[start:]

    def close(self) -> None:
        """The stream ended: what is left is logged as a partial entry."""
        if self._buf:
            self._emit(self.stream, self._buf, self._time_of_piece())
        self._buf = b""
        self._partial_time = 0

    def _time_of_line_end(self) -> int:
        if self._partial_time:
            stamp, self._partial_time = self._partial_time, 0
            return stamp
        return self._clock()

    def _time_of_piece(self) -> int:
        if not self._partial_time:
            self._partial_time = self._clock()
        return self._partial_time


def rotated_name(path: str, index: int) -> str:
    return path if index == 0 else f"{path}.{index}"


class JsonFileWriter:
    """Appends entries to `options.path`, rotating by size (see the module doc)."""

    __slots__ = ("_fd", "_size", "options")

    def __init__(self, options: LogOptions) -> None:
        self.options = options
        self._fd = -1
        self._size = 0
        self._open()

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self._fd = os.open(self.options.path, flags, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, stream: str, line: bytes, time_ns: int) -> None:
        max_size = self.options.max_size
        if max_size > 0 and self._size >= max_size:
            self._rotate()
        data = encode_entry(stream, line, time_ns)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._size += len(data)

    def _rotate(self) -> None:
        os.close(self._fd)
        path, count = self.options.path, self.options.max_file
        if count == 1:
            os.truncate(path, 0)
        else:
            for index in range(count - 1, 0, -1):
                try:
                    os.replace(rotated_name(path, index - 1), rotated_name(path, index))
                except FileNotFoundError:
                    pass
        self._open()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
