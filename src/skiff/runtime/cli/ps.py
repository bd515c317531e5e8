"""ps [--format table|json] ID [ps options]: the container's processes."""

from __future__ import annotations

import json

from skiff.runtime.cli.args import Flag, parse
from skiff.runtime.cli.main import need_id

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.runtime.cli.main import Globals

FLAGS = [Flag("format", "f", default="table")]


def command(g: Globals, argv: list[str]) -> int:
    import subprocess

    from skiff.runtime.control import container_pids

    p = parse(argv, FLAGS, stop_at_first_arg=True)
    container_id = need_id(g, p.args)
    pids = container_pids(g.root, container_id)
    if p.text("format", "table") == "json":
        print(json.dumps(pids))
        return 0
    ps_args = p.args[1:] or ["-ef"]
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    if not lines:
        return 0
    header = lines[0]
    try:
        pid_col = header.split().index("PID")
    except ValueError:
        raise ValueError(f"ps output has no PID column: {header}") from None
    print(header)
    wanted = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in wanted:
            print(line)
    return 0
