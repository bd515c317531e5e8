"""state ID: print the runtime spec's state JSON."""

from __future__ import annotations

import json

from skiff.runtime.cli.args import parse
from skiff.runtime.cli.main import need_id

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.runtime.cli.main import Globals


def command(g: Globals, argv: list[str]) -> int:
    from skiff.runtime.state import ContainerState

    state = ContainerState.load(g.root, need_id(g, parse(argv, []).args))
    doc = state.oci_state()
    doc["rootfs"] = state.rootfs
    doc["created"] = state.created
    doc["owner"] = ""
    print(json.dumps(doc, indent=2))
    return 0
