"""Docker's JSON progress messages for pull and push, and a throttle for byte counts.

What `docker pull` prints is made of these (each a line of the API's JSON stream):

    {"status": "Pulling from library/busybox", "id": "latest"}
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "a3ed95caeb02"}
    {"status": "Waiting", "progressDetail": {}, "id": "..."}
    {"status": "Downloading", "progressDetail": {"current": 1, "total": 2},
     "progress": "[=========================>                         ]  1.5MB/3MB", "id": ...}
    {"status": "Verifying Checksum" | "Download complete" | "Extracting" | "Pull complete"
              | "Already exists", ...}
    {"status": "Digest: sha256:..."}
    {"status": "Status: Downloaded newer image for busybox:latest"}

and `docker push` of "The push refers to repository [docker.io/library/busybox]",
"Preparing", "Waiting", "Pushing", "Pushed", "Layer already exists", "Mounted from
library/alpine", "latest: digest: sha256:... size: 528" plus an `aux` message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProgressEvent:
    status: str
    id: str = ""
    current: int | None = None
    total: int | None = None
    detail: bool = False  # send "progressDetail": {} (per-layer lines carry it)
    aux: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The message as the Engine API streams it."""
        out: dict[str, Any] = {"status": self.status} if self.status else {}
        if self.current is not None:
            detail: dict[str, int] = {"current": self.current}
            if self.total:
                detail["total"] = self.total
            out["progressDetail"] = detail
            out["progress"] = progress_bar(self.current, self.total or 0)
        elif self.detail or self.aux:
            out["progressDetail"] = {}
        if self.aux:
            out["aux"] = dict(self.aux)
        if self.id:
            out["id"] = self.id
        return out


ProgressCallback = Callable[[ProgressEvent], None]


def ignore(event: ProgressEvent) -> None:
    pass


def human_size(n: float) -> str:
    """go-units HumanSize: decimal units, 4 significant digits ("1.049MB")."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.4g}{units[i]}"


def progress_bar(current: int, total: int, width: int = 50) -> str:
    """jsonmessage.JSONProgress.String as the daemon renders it."""
    if total <= 0:
        return f"{human_size(current):>8}"
    filled = min(int(current / total * 100) // 2, width)
    bar = "=" * filled + (">" if filled < width else "") + " " * max(width - filled - 1, 0)
    return f"[{bar}] {human_size(current):>8}/{human_size(total)}"


def short_id(digest: object) -> str:
    """The 12 hex characters Docker uses as a layer's id in progress lines."""
    text = str(digest)
    return text.partition(":")[2][:12] if ":" in text else text[:12]


class Throttle:
    """Byte-count events at most every `interval` seconds per id (the last always)."""

    def __init__(self, emit: ProgressCallback, interval: float = 0.1) -> None:
        self._emit = emit
        self._interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, status: str, id_: str, current: int, total: int) -> None:
        now = time.monotonic()
        with self._lock:
            if current < total and now - self._last.get(id_, 0.0) < self._interval:
                return
            self._last[id_] = now
        self._emit(ProgressEvent(status, id_, current, total))
