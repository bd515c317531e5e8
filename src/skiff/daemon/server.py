"""Serving: pid file, listeners (unix sockets, TCP with mutual TLS), signals, clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl

from aiohttp import web

from skiff.api.app import build_app
from skiff.daemon.compose import Daemon
from skiff.daemon.config import TlsFiles
from skiff.errors import Conflict
from skiff.hosts import Host

log = logging.getLogger("skiff.daemon")

SOCKET_MODE = 0o660
SHUTDOWN_TIMEOUT = 5.0
READ_BUFSIZE = 1 << 20


def server_tls_context(files: TlsFiles) -> ssl.SSLContext:
    """Mutual TLS: a client without a certificate signed by our CA fails the handshake."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=files.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(files.cert, files.key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def write_pidfile(path: str) -> None:
    try:
        with open(path, encoding="ascii") as f:
            old = int(f.read().strip() or "0")
    except (FileNotFoundError, ValueError):
        old = 0
    if old and old != os.getpid() and _alive(old):
        raise Conflict(f"pid file found, ensure skiffd is not running or delete {path} (pid {old})")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim_unix_socket(path: str) -> None:
    """Remove a stale socket left by a crash, but never steal a live daemon's."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path) or ".", mode=0o711, exist_ok=True)
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
    else:
        raise Conflict(f"another daemon is listening on unix://{path}")
    finally:
        probe.close()


async def _start_site(runner: web.AppRunner, host: Host, daemon: Daemon) -> web.BaseSite:
    if host.scheme == "unix":
        _claim_unix_socket(host.path)
        site: web.BaseSite = web.UnixSite(runner, host.path)
        await site.start()
        os.chmod(host.path, SOCKET_MODE)
        log.info("listening", extra={"address": str(host)})
        return site
    tls = server_tls_context(daemon.config.tls) if daemon.config.tls else None
    if tls is None:
        log.warning(
            "!!! LISTENING ON %s WITHOUT TLS (--insecure-tcp): anyone who can reach this "
            "port controls skiffd and therefore has root on this machine !!!",
            host,
        )
    site = web.TCPSite(runner, host.address, host.port, ssl_context=tls, reuse_address=True)
    await site.start()
    log.info("listening", extra={"address": str(host), "tls": tls is not None})
    return site


async def serve(daemon: Daemon) -> None:
    config = daemon.config
    write_pidfile(config.pidfile)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started: list[web.BaseSite] = []
    runner = web.AppRunner(
        build_app(daemon.registry),
        handler_cancellation=True,  # a client that leaves ends its handler (events, wait)
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        # request bodies (build contexts, image loads) are read in bigger steps: aiohttp's
        # 64 KiB default pauses and resumes the socket every 128 KiB (~20% of the CPU of
        # taking in a 40 MB build context)
        read_bufsize=READ_BUFSIZE,
    )
    hooks_run = 0
    try:
        for hook in daemon.on_start:
            await hook()
            hooks_run += 1
        await runner.setup()
        for host in config.hosts:
            started.append(await _start_site(runner, host, daemon))
        log.info("skiffd started", extra={"pid": os.getpid(), "data_root": config.data_root})
        await stop.wait()
        log.info("skiffd stopping")
    finally:
        daemon.events.close()
        await runner.cleanup()
        for hook in reversed(daemon.on_stop[:hooks_run] if hooks_run else []):
            with contextlib.suppress(Exception):
                await hook()
        for host in config.hosts:
            if host.scheme == "unix":
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(host.path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(config.pidfile)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("skiffd stopped")
