"""Signal names as dockerd reads them (--stop-signal, STOPSIGNAL, kill -s)."""

from __future__ import annotations

import re
import signal

from skiff.errors import InvalidArgument


def parse_signal(text: str) -> int:
    """A stop signal as dockerd reads it: "SIGTERM", "TERM", "15", "RTMIN+3"."""
    if text.isdigit():
        number = int(text)
        if 0 < number <= signal.SIGRTMAX:
            return number
        raise InvalidArgument(f"Invalid signal: {text}")
    name = text.upper()
    name = name.removeprefix("SIG")
    match = re.fullmatch(r"RT(MIN|MAX)([+-]\d+)?", name)
    if match:
        base = signal.SIGRTMIN if match.group(1) == "MIN" else signal.SIGRTMAX
        number = int(base) + int(match.group(2) or 0)
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return number
        raise InvalidArgument(f"Invalid signal: {text}")
    try:
        return int(signal.Signals["SIG" + name])
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {text}") from None
