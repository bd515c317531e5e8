"""kill [--all] ID [SIGNAL]"""

from __future__ import annotations

from skiff.runtime.cli.args import Flag, parse
from skiff.runtime.cli.main import need_id

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.runtime.cli.main import Globals

FLAGS = [Flag("all", "a", boolean=True)]


def command(g: Globals, argv: list[str]) -> int:
    from skiff.runtime.control import kill, parse_signal

    p = parse(argv, FLAGS)
    container_id = need_id(g, p.args)
    sig = parse_signal(p.args[1] if len(p.args) > 1 else "SIGTERM")
    kill(g.root, container_id, sig, all_processes=p.flag("all"))
    return 0
