"""Docker's JSON progress messages, shown as docker shows them.

On a terminal each layer (message `id`) keeps one line that is rewritten in
place as its status changes, as docker's jsonmessage display does: the cursor
moves up to the layer's line, the line is cleared and written again. Off a
terminal every status change is one plain line and byte counters are left out.
An in-band `error` ends the display and makes the command fail (exit 1).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, TextIO


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}B"


def progress_text(message: dict[str, Any]) -> str:
    detail = message.get("progressDetail") or {}
    current, total = detail.get("current"), detail.get("total")
    if not current:
        return ""
    if not total:
        return human_bytes(current)
    width = 50
    filled = int(width * min(current, total) / total)
    bar = "=" * filled + (">" if filled < width else "") + " " * max(0, width - filled - 1)
    return f"[{bar}] {human_bytes(current)}/{human_bytes(total)}"


class Display:
    def __init__(self, out: TextIO, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self.lines: dict[str, int] = {}  # layer id -> line index from the first one

    def show(self, message: dict[str, Any]) -> None:
        status = str(message.get("status", ""))
        ident = str(message.get("id", ""))
        if "stream" in message:
            self.out.write(str(message["stream"]))
            return
        if not ident:
            self.out.write(status + "\n")
            return
        if not self.tty:
            if message.get("progressDetail", {}).get("current"):
                return  # a line per byte count is noise in a log
            self.out.write(f"{ident}: {status}\n")
            return
        text = f"{ident}: {status} {progress_text(message)}".rstrip()
        if ident not in self.lines:
            self.lines[ident] = len(self.lines)
            self.out.write(text + "\n")
            return
        up = len(self.lines) - self.lines[ident]
        self.out.write(f"\x1b[{up}A\x1b[2K\r{text}\x1b[{up}B\r")

    def run(self, messages: Iterable[dict[str, Any]]) -> int:
        for message in messages:
            if message.get("error") or message.get("errorDetail"):
                detail = message.get("errorDetail") or {}
                self.out.flush()
                print(message.get("error") or detail.get("message"), file=sys.stderr)
                return 1
            self.show(message)
            self.out.flush()
        return 0


def show_progress(messages: Iterable[dict[str, Any]], quiet: bool = False) -> int:
    if quiet:
        for message in messages:
            if message.get("error") or message.get("errorDetail"):
                print(
                    message.get("error") or message["errorDetail"].get("message"), file=sys.stderr
                )
                return 1
        return 0
    return Display(sys.stdout, sys.stdout.isatty()).run(messages)
