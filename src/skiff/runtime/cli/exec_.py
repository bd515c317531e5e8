"""exec [--process F | flags -- CMD...] [--tty] [--detach] [--pid-file F] ID [CMD...]"""

from __future__ import annotations

from skiff.runtime.cli.args import Flag, parse
from skiff.runtime.cli.main import need_id

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.runtime.cli.main import Globals

FLAGS = [
    Flag("process", "p"),
    Flag("tty", "t", boolean=True),
    Flag("detach", "d", boolean=True),
    Flag("pid-file"),
    Flag("console-socket"),
    Flag("cwd"),
    Flag("env", "e", repeat=True),
    Flag("user", "u"),
    Flag("additional-gids", "g", repeat=True),
    Flag("cap", "c", repeat=True),
    Flag("no-new-privs", boolean=True),
    Flag("preserve-fds"),
    Flag("process-label"),
    Flag("apparmor"),
    Flag("ignore-paused", boolean=True),
    Flag("cgroup"),
]


def command(g: Globals, argv: list[str]) -> int:
    from skiff.errors import InvalidArgument
    from skiff.runtime.control import saved_config
    from skiff.runtime.execute import ExecOptions, exec_in, load_process_file, process_from_args
    from skiff.runtime.state import ContainerState

    p = parse(argv, FLAGS, stop_at_first_arg=True)
    container_id = need_id(g, p.args)
    if p.opt("process"):
        process = load_process_file(p.text("process"))
    else:
        if len(p.args) < 2:
            raise InvalidArgument("exec needs --process or a command to run")
        config = saved_config(ContainerState.load(g.root, container_id))
        try:
            gids = [int(x) for x in p.all("additional-gids")]
        except ValueError:
            raise InvalidArgument("--additional-gids takes numbers") from None
        process = process_from_args(
            config,
            p.args[1:],
            tty=p.flag("tty"),
            cwd=p.opt("cwd"),
            env=p.all("env"),
            user=p.opt("user"),
            additional_gids=gids,
            caps=p.all("cap"),
            no_new_privs=p.flag("no-new-privs"),
        )
    opts = ExecOptions(
        detach=p.flag("detach"),
        pid_file=p.opt("pid-file"),
        console_socket=p.opt("console-socket"),
        preserve_fds=p.number("preserve-fds"),
    )
    return exec_in(g.root, container_id, process, opts)
