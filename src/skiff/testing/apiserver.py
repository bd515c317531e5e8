"""The API served in-process on a temporary unix socket from a background thread, so
synchronous tests can drive it with the real client, raw sockets or the Docker SDK.

    with serve_api(path, extra_routes=[...]) as server:
        server.client().version()
        server.publish(Event("container", "start", actor_id="abc"))
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import web

from skiff.api.app import build_app
from skiff.api.registry import ApiRegistry, Route
from skiff.api.system import SystemApi
from skiff.client import Client
from skiff.hosts import Host
from skiff.services.events import Event, EventBus


@dataclass
class ApiServer:
    path: str
    loop: asyncio.AbstractEventLoop
    events: EventBus
    registry: ApiRegistry

    def client(self) -> Client:
        return Client(Host("unix", path=self.path), timeout=10)

    def publish(self, event: Event) -> None:
        """Publish from the test thread, on the server's loop."""
        self.loop.call_soon_threadsafe(self.events.publish, event)


@contextmanager
def serve_api(
    path: str, extra_routes: Iterable[Route] = (), events: EventBus | None = None
) -> Iterator[ApiServer]:
    """`events`: the bus the routes under test publish on (one is made if not given)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="skiff-test-api", daemon=True)
    thread.start()
    events = events if events is not None else EventBus()
    registry = ApiRegistry()
    registry.add_routes(SystemApi(registry, events).routes())
    registry.add_routes(extra_routes)

    async def start() -> web.AppRunner:
        runner = web.AppRunner(build_app(registry), handler_cancellation=True, access_log=None)
        await runner.setup()
        await web.UnixSite(runner, path).start()
        return runner

    async def stop(runner: web.AppRunner) -> None:
        events.close()
        await runner.cleanup()

    try:
        runner = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        try:
            yield ApiServer(path, loop, events, registry)
        finally:
            asyncio.run_coroutine_threadsafe(stop(runner), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
