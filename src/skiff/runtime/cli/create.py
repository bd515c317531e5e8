"""create --bundle DIR [--pid-file F] [--console-socket S] [--preserve-fds N] ID"""

from __future__ import annotations

from skiff.runtime.cli.args import Flag, parse
from skiff.runtime.cli.main import need_id

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.runtime.cli.main import Globals

FLAGS = [
    Flag("bundle", "b", default="."),
    Flag("pid-file"),
    Flag("console-socket"),
    Flag("preserve-fds"),
    Flag("no-pivot", boolean=True),
    Flag("no-new-keyring", boolean=True),
]


def command(g: Globals, argv: list[str]) -> int:
    from skiff.runtime.create import create

    p = parse(argv, FLAGS)
    container_id = need_id(g, p.args)
    console = None
    if p.opt("console-socket"):
        from skiff.runtime.foreground import connect_console_socket

        console = connect_console_socket(p.text("console-socket"))
    try:
        create(
            g.root,
            container_id,
            p.text("bundle", "."),
            pid_file=p.opt("pid-file"),
            console=console,
            preserve_fds=p.number("preserve-fds"),
            systemd_cgroup=g.systemd_cgroup,
        )
    finally:
        if console is not None:
            console.close()
    return 0
