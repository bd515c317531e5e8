"""Small output helpers shared by commands: --format, sizes, times, JSON.

Imported by every command, so it imports nothing heavy: sizes and durations are plain
arithmetic, and the template engine (skiff.cli.format) loads only for a format that needs it.
"""

from __future__ import annotations

import sys

from skiff.cli.table import render_fields
from skiff.units import human_duration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any


def print_formatted(
    fmt: str, items: Sequence[Any], headers: Mapping[str, str] | None = None
) -> None:
    """Print with a docker --format string; `json` alone means one JSON line per item."""
    text = render_fields(fmt, items, headers)
    if text is not None:
        sys.stdout.write(text)
        return
    from skiff.cli.format import format_items, go_json

    if fmt == "json":
        for item in items:
            print(go_json(item))
        return
    sys.stdout.write(format_items(fmt, items, headers))


def human_size(size: float) -> str:
    """docker's units.HumanSize: decimal units, four significant digits ("1.093MB")."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.4g}{units[i]}"


def bytes_binary(size: float) -> str:
    """docker's units.BytesSize: binary units ("23.54GiB")."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size /= 1024.0
        i += 1
    return f"{size:.4g}{units[i]}"


def human_size_precision(size: float, precision: int = 3) -> str:
    """docker's units.HumanSizeWithPrecision (`docker images`, `docker history`: "1.98MB")."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def since(unix_seconds: float, now: float | None = None) -> str:
    """ "3 seconds ago", as docker's CREATED columns show it."""
    import time

    current = time.time() if now is None else now
    return human_duration(current - unix_seconds) + " ago"


def ellipsis(text: str, width: int) -> str:
    """docker's formatter.Ellipsis: cut to `width` characters, the last one "…"."""
    if len(text) <= width:
        return text
    if width <= 0:
        return ""
    return text[: width - 1] + "…"


def truncate_id(image_id: str) -> str:
    """docker's stringid.TruncateID: drop "sha256:", keep 12 hex characters."""
    return image_id.partition(":")[2][:12] if ":" in image_id else image_id[:12]
