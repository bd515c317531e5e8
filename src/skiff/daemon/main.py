"""`skiffd`: parse flags, set up logging, compose the services, serve until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import sys

from skiff.daemon.compose import compose
from skiff.daemon.config import build_parser, config_from_args
from skiff.daemon.logs import setup_logging
from skiff.daemon.server import serve
from skiff.errors import SkiffError
from skiff.version import API_VERSION, __version__


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    if ns.version:
        print(f"skiffd version {__version__}, API {API_VERSION}")
        return 0
    try:
        config = config_from_args(ns)
    except SkiffError as exc:
        print(f"skiffd: {exc}", file=sys.stderr)
        return 1

    try:
        setup_logging(config.log_file, config.debug)
    except OSError as exc:
        print(f"skiffd: cannot open log file {config.log_file}: {exc}", file=sys.stderr)
        return 1
    log = logging.getLogger("skiff.daemon")
    try:
        asyncio.run(serve(compose(config)))
    except SkiffError as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error("failed to start daemon: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
