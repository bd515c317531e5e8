"""pause ID / resume ID: freeze and thaw the container's cgroup."""

from __future__ import annotations

from skiff.runtime.cli.args import parse
from skiff.runtime.cli.main import need_id

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.runtime.cli.main import Globals


def command(g: Globals, argv: list[str]) -> int:
    from skiff.runtime.control import pause, resume

    container_id = need_id(g, parse(argv, []).args)
    (pause if g.command == "pause" else resume)(g.root, container_id)
    return 0
