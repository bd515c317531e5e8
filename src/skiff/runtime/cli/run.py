"""run [--detach] --bundle DIR [--pid-file F] [--console-socket S] [--keep] ID

create + start; in the foreground, wait for the container, forward signals,
delete it afterwards and exit with its status (128+N when killed by signal N).
"""

from __future__ import annotations

import os

from skiff.runtime.cli.args import Flag, parse
from skiff.runtime.cli.main import need_id

TYPE_CHECKING = False

if TYPE_CHECKING:
    import socket

    from skiff.runtime.cli.main import Globals

FLAGS = [
    Flag("bundle", "b", default="."),
    Flag("pid-file"),
    Flag("console-socket"),
    Flag("detach", "d", boolean=True),
    Flag("preserve-fds"),
    Flag("keep", boolean=True),
    Flag("no-subreaper", boolean=True),
    Flag("no-pivot", boolean=True),
    Flag("no-new-keyring", boolean=True),
]


def command(g: Globals, argv: list[str]) -> int:
    from skiff.errors import InvalidArgument
    from skiff.runtime import foreground as fg
    from skiff.runtime.control import destroy, start
    from skiff.runtime.create import create, load_bundle

    p = parse(argv, FLAGS)
    container_id = need_id(g, p.args)
    bundle = p.text("bundle", ".")
    detach = p.flag("detach")
    config, _, _ = load_bundle(os.path.abspath(bundle))
    assert config.process is not None
    ours: socket.socket | None = None
    theirs: socket.socket | None = None
    if config.process.terminal:
        if p.opt("console-socket"):
            theirs = fg.connect_console_socket(p.text("console-socket"))
        elif detach:
            raise InvalidArgument("cannot allocate a tty when detached without --console-socket")
        else:
            ours, theirs = fg.console_pair()
    if not detach:
        fg.become_subreaper()
    try:
        state = create(
            g.root,
            container_id,
            bundle,
            pid_file=p.opt("pid-file"),
            console=theirs,
            preserve_fds=p.number("preserve-fds"),
            systemd_cgroup=g.systemd_cgroup,
        )
    finally:
        if theirs is not None:
            theirs.close()
    try:
        master = fg.receive_master(ours) if ours is not None else None
        start(g.root, container_id)
    except BaseException:
        destroy(state)
        raise
    if detach:
        return 0
    code = fg.wait_foreground(state.pid, master)
    if not p.flag("keep"):
        destroy(state)
    return code
