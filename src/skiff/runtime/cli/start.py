"""start ID"""

from __future__ import annotations

from skiff.runtime.cli.args import parse
from skiff.runtime.cli.main import need_id

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.runtime.cli.main import Globals


def command(g: Globals, argv: list[str]) -> int:
    from skiff.runtime.control import start

    start(g.root, need_id(g, parse(argv, []).args))
    return 0
