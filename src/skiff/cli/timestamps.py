"""--since/--until values as the docker CLI accepts them, turned into the
"seconds.nanoseconds" string the API takes (docker's GetTimestamp).

    10m, 1h30m, 1.5h        a Go duration before now
    2024-05-01T10:00:00Z    RFC 3339 (without a zone: local time); also 2024-05-01
    1714557600.5            a Unix timestamp, passed on
"""

from __future__ import annotations

import datetime
import re
import time

from skiff.errors import InvalidArgument

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> int | None:
    """Go's time.ParseDuration, in nanoseconds; None if `text` is not a duration."""
    body = text[1:] if text[:1] in "+-" else text
    if not body or _DURATION.sub("", body) != "":
        return None
    total = sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(body))
    return int(-total if text.startswith("-") else total)


def to_api_timestamp(value: str, now_ns: int | None = None) -> str:
    now = time.time_ns() if now_ns is None else now_ns
    duration = parse_duration(value)
    if duration is not None:
        then = now - duration
        return f"{then // 1_000_000_000}.{then % 1_000_000_000:09d}"
    if re.fullmatch(r"-?\d+(\.\d{1,9})?", value):
        return value
    try:
        stamp = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f'failed to parse value as time or duration: "{value}"') from None
    if stamp.tzinfo is None:
        stamp = stamp.astimezone()  # local time, as docker does
    seconds = int(stamp.timestamp())
    return f"{seconds}.{stamp.microsecond * 1000:09d}"
