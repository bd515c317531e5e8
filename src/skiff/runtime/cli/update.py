"""update [--resources FILE|-] [--memory N ...] ID: change a live container's limits.

containerd's shim runs `update --resources - ID` with the new LinuxResources
JSON on stdin (that is how `docker update` reaches the runtime). The other
flags are runc's shorthands; each sets one field of the same document, over
what --resources gave.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from skiff.runtime.cli.args import Flag, parse
from skiff.runtime.cli.main import need_id

if TYPE_CHECKING:
    from skiff.runtime.cli.args import Parsed
    from skiff.runtime.cli.main import Globals

# flag -> (section of LinuxResources, field, is a number)
SHORTHANDS = {
    "blkio-weight": ("blockIO", "weight", True),
    "cpu-period": ("cpu", "period", True),
    "cpu-quota": ("cpu", "quota", True),
    "cpu-share": ("cpu", "shares", True),
    "cpu-rt-period": ("cpu", "realtimePeriod", True),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", True),
    "cpuset-cpus": ("cpu", "cpus", False),
    "cpuset-mems": ("cpu", "mems", False),
    "memory": ("memory", "limit", True),
    "memory-reservation": ("memory", "reservation", True),
    "memory-swap": ("memory", "swap", True),
    "pids-limit": ("pids", "limit", True),
}

FLAGS = [Flag("resources", "r"), *(Flag(name) for name in SHORTHANDS)]


def command(g: Globals, argv: list[str]) -> int:
    from skiff.runtime.control import update

    p = parse(argv, FLAGS)
    container_id = need_id(g, p.args)
    update(g.root, container_id, resources_doc(p))
    return 0


def resources_doc(p: Parsed) -> dict[str, object]:
    from skiff.errors import InvalidArgument

    doc: dict[str, object] = {}
    source = p.opt("resources")
    if source is not None:
        try:
            if source == "-":
                doc = json.loads(sys.stdin.read())
            else:
                with open(source, "rb") as f:
                    doc = json.loads(f.read())
        except ValueError as e:
            raise InvalidArgument(f"--resources: not valid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise InvalidArgument("--resources: expected a JSON object")
    for flag, (section, field, numeric) in SHORTHANDS.items():
        text = p.opt(flag)
        if text is None:
            continue
        part = doc.setdefault(section, {})
        if not isinstance(part, dict):
            raise InvalidArgument(f"--resources: {section}: expected an object")
        part[field] = p.number(flag) if numeric else text
    return doc
