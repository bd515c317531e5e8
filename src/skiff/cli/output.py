"""Small output helpers shared by commands: --format, sizes, JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def print_formatted(
    fmt: str, items: Sequence[Any], headers: Mapping[str, str] | None = None
) -> None:
    """Print with a docker --format string; `json` alone means one JSON line per item."""
    if fmt == "json":
        for item in items:
            print(json.dumps(item, separators=(",", ":")))
        return
    from skiff.cli.format import format_items

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
