"""`skiff logout [SERVER]`: forget a registry's credentials, like `docker logout`."""

from __future__ import annotations

from skiff.cli.args import parser
from skiff.cli.context import CliContext


def run(ctx: CliContext, argv: list[str], prog: str = "logout") -> int:
    from skiff.cli.credentials import store
    from skiff.distribution.credentials import normalize_server

    p = parser(prog, "Log out from a registry")
    p.add_argument("server", nargs="?", default="https://index.docker.io/v1/", metavar="SERVER")
    ns = p.parse_args(argv)
    server = normalize_server(ns.server)
    if store().erase(server):
        print(f"Removing login credentials for {server}")
    else:
        print(f"Not logged in to {server}")
    return 0
