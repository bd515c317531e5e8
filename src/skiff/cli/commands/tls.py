"""`skiff tls init DIR`: a CA, a server and a client certificate for remote access."""

from __future__ import annotations

import os
import sys

from skiff.cli.args import parser
from skiff.cli.context import CliContext


def init(argv: list[str]) -> int:
    p = parser("tls init", "Write a CA, a server and a client certificate into DIR")
    p.add_argument("directory", metavar="DIR")
    p.add_argument(
        "--host",
        dest="hosts",
        action="append",
        default=[],
        help="another name or IP the server certificate is valid for (repeatable)",
    )
    p.add_argument("--days", type=int, default=365, help="validity in days")
    p.add_argument("--force", action="store_true", help="replace existing files")
    ns = p.parse_args(argv)
    from skiff.pki import init_tls

    d = os.path.abspath(ns.directory)
    init_tls(d, hosts=ns.hosts, days=ns.days, force=ns.force)
    print(f"Wrote CA, server and client certificates to {d}\n")
    print("Daemon:")
    print(
        f"  skiffd -H tcp://0.0.0.0:2376 --tlsverify --tlscacert {d}/ca.pem "
        f"--tlscert {d}/server-cert.pem --tlskey {d}/server-key.pem"
    )
    print("Client (skiff or docker):")
    print(f"  export SKIFF_HOST=tcp://HOST:2376 SKIFF_TLS_VERIFY=1 SKIFF_CERT_PATH={d}")
    print(f"  export DOCKER_HOST=tcp://HOST:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={d}")
    return 0


def run(ctx: CliContext, argv: list[str]) -> int:
    if argv and argv[0] == "init":
        return init(argv[1:])
    print("Usage:  skiff tls init DIR [--host NAME] [--days N] [--force]", file=sys.stderr)
    return 1 if argv and argv[0] not in ("-h", "--help") else 0
