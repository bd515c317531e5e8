"""delete [--force] ID"""

from __future__ import annotations

from skiff.runtime.cli.args import Flag, parse
from skiff.runtime.cli.main import need_id

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.runtime.cli.main import Globals

FLAGS = [Flag("force", "f", boolean=True)]


def command(g: Globals, argv: list[str]) -> int:
    from skiff.runtime.control import delete

    p = parse(argv, FLAGS)
    delete(g.root, need_id(g, p.args), force=p.flag("force"))
    return 0
