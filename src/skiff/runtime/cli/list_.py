"""list [--format table|json] [--quiet]"""

from __future__ import annotations

import json

from skiff.runtime.cli.args import Flag, parse

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.runtime.cli.main import Globals

FLAGS = [Flag("format", "f", default="table"), Flag("quiet", "q", boolean=True)]


def command(g: Globals, argv: list[str]) -> int:
    from skiff.runtime.control import list_states

    p = parse(argv, FLAGS)
    states = list_states(g.root)
    if p.flag("quiet"):
        for s in states:
            print(s.id)
        return 0
    rows = []
    for s in states:
        doc = s.oci_state()
        doc["rootfs"] = s.rootfs
        doc["created"] = s.created
        doc["owner"] = s.owner
        rows.append(doc)
    if p.text("format", "table") == "json":
        print(json.dumps(rows))
        return 0
    table = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    table += [
        [
            str(r["id"]),
            str(r["pid"]),
            str(r["status"]),
            str(r["bundle"]),
            str(r["created"]),
            str(r["owner"]),
        ]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
