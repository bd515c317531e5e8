"""The in-process event bus behind `GET /events`.

Services publish what happened; subscribers (each `/events` request) receive it:

    bus.publish(Event("container", "start", actor_id=cid, attributes={"name": "web"}))

    async with bus.subscribe(since=t0, until=None, filter=EventFilter.parse(...)) as sub:
        async for event in sub:           # first the replay of recent events >= since,
            ...                           # then live ones, until `until` passes

A bounded history (as dockerd keeps the last 256) lets `since` replay the past. Publishing
never blocks: a subscriber that falls too far behind is dropped rather than slowing services.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import MappingProxyType

from skiff.errors import InvalidArgument

HISTORY = 256
QUEUE_LIMIT = 1024

EVENT_TYPES = frozenset(
    {
        "builder",
        "config",
        "container",
        "daemon",
        "image",
        "network",
        "node",
        "plugin",
        "secret",
        "service",
        "volume",
    }
)

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Event:
    type: str  # "container", "image", ... (EVENT_TYPES)
    action: str  # "create", "start", "die", "pull", "tag", ...
    actor_id: str = ""
    attributes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    scope: str = "local"
    time_nano: int = field(default_factory=time.time_ns)

    @property
    def time(self) -> int:
        return self.time_nano // 1_000_000_000


# Filter keys and which attribute of an event each one matches (dockerd's events/filter.go).
_FILTER_KEYS = frozenset(
    {
        "config",
        "container",
        "daemon",
        "event",
        "image",
        "label",
        "network",
        "node",
        "plugin",
        "scope",
        "secret",
        "service",
        "type",
        "volume",
    }
)


@dataclass(frozen=True)
class EventFilter:
    """A parsed `filters` value: within a key any value may match; every key must match."""

    terms: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def parse(cls, raw: Mapping[str, Iterable[str]]) -> EventFilter:
        for key in raw:
            if key not in _FILTER_KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")
        return cls(MappingProxyType({k: frozenset(v) for k, v in raw.items() if v}))

    def matches(self, event: Event) -> bool:
        return all(_match_term(key, values, event) for key, values in self.terms.items())


def _match_term(key: str, values: frozenset[str], event: Event) -> bool:
    if key == "type":
        return event.type in values
    if key == "event":
        # "exec_start: sh -c ..." matches the filter "exec_start"
        action = event.action.split(":", 1)[0]
        return event.action in values or action in values
    if key == "scope":
        return event.scope in values
    if key == "label":
        return any(_match_label(v, event.attributes) for v in values)
    if event.type != key:
        return False
    name = event.attributes.get("name", "")
    for value in values:
        if value in (event.actor_id, name) or (
            len(value) >= 1 and event.actor_id.startswith(value)
        ):
            return True
        if key == "image" and value in (event.attributes.get("image", ""),):
            return True
    return False


def _match_label(term: str, attributes: Mapping[str, str]) -> bool:
    key, sep, value = term.partition("=")
    if key not in attributes:
        return False
    return not sep or attributes[key] == value


class Subscription:
    """One subscriber's view: replayed history, then live events, until `until`."""

    def __init__(
        self, replay: list[Event], until_nano: int | None, event_filter: EventFilter
    ) -> None:
        self._replay = deque(replay)
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_LIMIT)
        self._until = until_nano
        self._filter = event_filter
        self.overflowed = False

    def _offer(self, event: Event) -> None:
        if not self._filter.matches(event):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self._close()

    def _close(self) -> None:
        # Make room for the sentinel even when the queue is full.
        while self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while self._replay:
            yield self._replay.popleft()
        while True:
            timeout = None
            if self._until is not None:
                timeout = max(0.0, (self._until - time.time_ns()) / 1e9)
            try:
                event = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                return
            if event is None:
                return
            if self._until is not None and event.time_nano > self._until:
                return
            yield event


class EventBus:
    def __init__(self, history: int = HISTORY) -> None:
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: set[Subscription] = set()

    @property
    def listeners(self) -> int:
        return len(self._subscribers)

    def publish(self, event: Event) -> None:
        self._history.append(event)
        for sub in list(self._subscribers):
            sub._offer(event)

    @asynccontextmanager
    async def subscribe(
        self,
        since_nano: int | None = None,
        until_nano: int | None = None,
        event_filter: EventFilter | None = None,
    ) -> AsyncIterator[Subscription]:
        flt = event_filter or EventFilter()
        replay: list[Event] = []
        if since_nano is not None:
            replay = [
                e
                for e in self._history
                if e.time_nano >= since_nano
                and (until_nano is None or e.time_nano <= until_nano)
                and flt.matches(e)
            ]
        sub = Subscription(replay, until_nano, flt)
        # With an `until` in the past there is nothing live to wait for.
        if until_nano is not None and until_nano <= time.time_ns():
            sub._close()
        else:
            self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    def close(self) -> None:
        """End every subscription (daemon shutdown)."""
        for sub in list(self._subscribers):
            sub._close()
        self._subscribers.clear()
