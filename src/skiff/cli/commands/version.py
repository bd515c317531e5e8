"""`skiff version`: client and server versions, like `docker version`."""

from __future__ import annotations

import os
import sys

from skiff.cli.args import add_format, parser
from skiff.cli.context import CliContext
from skiff.cli.output import print_formatted
from skiff.client import ClientError
from skiff.version import API_VERSION, __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def client_version() -> dict[str, Any]:
    machine = os.uname().machine  # not the platform module: it imports re, subprocess, ...
    return {
        "Platform": {"Name": "skiff"},
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": "",
        "GoVersion": "python" + sys.version.split()[0],
        "Os": "linux",
        "Arch": _ARCH.get(machine, machine),
        "BuildTime": "",
        "Context": "default",
    }


def _print_plain(client: dict[str, Any], server: dict[str, Any] | None) -> None:
    print("Client:")
    rows = [
        ("Version", client["Version"]),
        ("API version", client["ApiVersion"]),
        ("Python version", client["GoVersion"]),
        ("OS/Arch", f"{client['Os']}/{client['Arch']}"),
        ("Context", client["Context"]),
    ]
    for key, value in rows:
        print(f" {key + ':':<18} {value}")
    if server is None:
        return
    print(f"\nServer: {server.get('Platform', {}).get('Name', '')}")
    for component in server.get("Components") or []:
        details = component.get("Details") or {}
        print(f" {component.get('Name')}:")
        print(f"  {'Version:':<17} {component.get('Version', '')}")
        if "ApiVersion" in details:
            api = f"{details['ApiVersion']} (minimum version {details.get('MinAPIVersion', '')})"
            print(f"  {'API version:':<17} {api}")
        if "GoVersion" in details:
            print(f"  {'Python version:':<17} {details['GoVersion'].removeprefix('python')}")
        if "Os" in details:
            print(f"  {'OS/Arch:':<17} {details['Os']}/{details.get('Arch', '')}")
        if "Experimental" in details:
            print(f"  {'Experimental:':<17} {details['Experimental']}")


def run(ctx: CliContext, argv: list[str]) -> int:
    p = parser("version", "Show the skiff version information")
    add_format(p)
    p.add_argument("--short-banner", action="store_true", help="print one line and exit")
    ns = p.parse_args(argv)
    client = client_version()
    if ns.short_banner:
        print(f"skiff version {__version__}, API {API_VERSION}")
        return 0
    server: dict[str, Any] | None = None
    error: ClientError | None = None
    try:
        server = ctx.client().version()
    except ClientError as exc:
        error = exc
    if ns.format:
        print_formatted(ns.format, [{"Client": client, "Server": server}])
    else:
        _print_plain(client, server)
    if error is not None:
        print(str(error), file=sys.stderr)
        return 1
    return 0
