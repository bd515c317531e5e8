"""`skiff login [-u USER] [-p PASS | --password-stdin] [SERVER]`, like `docker login`.

The daemon checks the credentials against the registry; the CLI then keeps
them in its own Docker-format config.json (see skiff.cli.credentials).
"""

from __future__ import annotations

import sys

from skiff.cli.args import parser
from skiff.cli.context import CliContext
from skiff.errors import InvalidArgument

DEFAULT_SERVER = "https://index.docker.io/v1/"


def run(ctx: CliContext, argv: list[str], prog: str = "login") -> int:
    from skiff.cli.credentials import config_path, store
    from skiff.distribution.credentials import Credentials, normalize_server

    p = parser(prog, "Log in to a registry")
    p.add_argument("server", nargs="?", default="", metavar="SERVER")
    p.add_argument("-u", "--username", default="", help="username")
    p.add_argument("-p", "--password", default="", help="password")
    p.add_argument("--password-stdin", action="store_true", help="take the password from stdin")
    ns = p.parse_args(argv)
    password = ns.password
    if ns.password_stdin:
        if password:
            raise InvalidArgument("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.read().rstrip("\n")
    username = ns.username
    if not username:
        username = input("Username: ")
    if not password:
        import getpass

        password = getpass.getpass("Password: ")
    if not username or not password:
        raise InvalidArgument("Username and password are required")
    server = ns.server or DEFAULT_SERVER
    result = ctx.client().login(username, password, server)
    store().store(normalize_server(server), Credentials(username=username, password=password))
    print(result.get("Status") or "Login Succeeded")
    print(f"Credentials are stored in {config_path()}", file=sys.stderr)
    return 0
