"""A small single-threaded event loop over epoll, for the shim.

asyncio would do, but a shim must stay small and is forked from a frozen
parent: every object it touches becomes a private copy of a page, so the shim
runs on this loop (a selector, a handful of handlers and timers) and touches
little. Each fd has one handler, which says through `events()` what it waits
for; `refresh(handler)` brings the selector in line after its state changed.
"""

from __future__ import annotations

import heapq
import select
import time

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable

READ = select.EPOLLIN
WRITE = select.EPOLLOUT
# Hang-up and error wake a reader too: its read then sees the end or the error.
_READABLE = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR


class Handler:
    """Something with an fd the loop watches."""

    fd: int = -1

    def events(self) -> int:
        return 0

    def on_readable(self) -> None:
        pass

    def on_writable(self) -> None:
        pass


class Timer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: Timer) -> bool:
        return self.when < other.when


class Loop:
    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._watched: dict[int, tuple[int, Handler]] = {}
        self._timers: list[Timer] = []
        self.running = False

    def refresh(self, handler: Handler) -> None:
        fd = handler.fd
        events = handler.events() if fd >= 0 else 0
        current = self._watched.get(fd)
        if events == 0:
            if current is not None and current[1] is handler:
                self._epoll.unregister(fd)
                del self._watched[fd]
            return
        if current is None:
            self._epoll.register(fd, events)
        elif current != (events, handler):
            self._epoll.modify(fd, events)
        self._watched[fd] = (events, handler)

    def forget(self, handler: Handler) -> None:
        """Stop watching the handler's fd; call before closing it."""
        current = self._watched.get(handler.fd)
        if current is not None and current[1] is handler:
            self._epoll.unregister(handler.fd)
            del self._watched[handler.fd]

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + delay, callback)
        heapq.heappush(self._timers, timer)
        return timer

    def run(self) -> None:
        self.running = True
        while self.running:
            timeout = -1.0
            if self._timers:
                timeout = max(0.0, self._timers[0].when - time.monotonic())
            for fd, mask in self._epoll.poll(timeout):
                watched = self._watched.get(fd)
                if watched is None:
                    continue
                events, handler = watched
                if mask & _READABLE and events & READ:
                    handler.on_readable()
                if (
                    mask & (WRITE | select.EPOLLERR)
                    and events & WRITE
                    and self._is_watched(handler)
                ):
                    handler.on_writable()
            now = time.monotonic()
            while self._timers and self._timers[0].when <= now:
                timer = heapq.heappop(self._timers)
                if not timer.cancelled:
                    timer.callback()

    def _is_watched(self, handler: Handler) -> bool:
        current = self._watched.get(handler.fd)
        return current is not None and current[1] is handler

    def handlers(self) -> list[Handler]:
        """The handlers watched now."""
        return [handler for _, handler in self._watched.values()]

    def close(self) -> None:
        self._epoll.close()
