from __future__ import annotations

import asyncio
import time

import pytest

from skiff.errors import InvalidArgument
from skiff.services.events import Event, EventBus, EventFilter


def ev(type_: str, action: str, actor: str = "abc123", **attrs: str) -> Event:
    return Event(type_, action, actor_id=actor, attributes=attrs)


@pytest.mark.parametrize(
    ("raw", "event", "expected"),
    [
        ({"type": ["container"]}, ev("container", "start"), True),
        ({"type": ["image"]}, ev("container", "start"), False),
        ({"event": ["start", "die"]}, ev("container", "die"), True),
        ({"event": ["exec_start"]}, ev("container", "exec_start: sh -c x"), True),
        ({"container": ["web"]}, ev("container", "start", name="web"), True),
        ({"container": ["abc"]}, ev("container", "start"), True),
        ({"container": ["web"]}, ev("image", "tag", name="web"), False),
        ({"image": ["busybox"]}, ev("image", "pull", actor="busybox:latest", name="busybox"), True),
        ({"label": ["app=web"]}, ev("container", "start", app="web"), True),
        ({"label": ["app"]}, ev("container", "start", app="db"), True),
        ({"label": ["app=web"]}, ev("container", "start", app="db"), False),
        ({"type": ["container"], "event": ["stop"]}, ev("container", "start"), False),
        ({"scope": ["local"]}, ev("network", "create"), True),
    ],
)
def test_filter(raw: dict[str, list[str]], event: Event, expected: bool) -> None:
    assert EventFilter.parse(raw).matches(event) is expected


def test_filter_rejects_unknown_key() -> None:
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        EventFilter.parse({"colour": ["red"]})


def test_replay_live_and_until() -> None:
    async def scenario() -> list[str]:
        bus = EventBus(history=2)
        t0 = time.time_ns()
        bus.publish(ev("container", "create"))
        bus.publish(ev("container", "start"))
        bus.publish(ev("container", "die"))  # history keeps the last two
        seen: list[str] = []
        async with bus.subscribe(since_nano=t0, until_nano=time.time_ns() + 300_000_000) as sub:
            assert bus.listeners == 1

            async def later() -> None:
                await asyncio.sleep(0.05)
                bus.publish(ev("container", "destroy"))

            task = asyncio.create_task(later())
            seen = [e.action async for e in sub]
            await task
        assert bus.listeners == 0
        return seen

    assert asyncio.run(scenario()) == ["start", "die", "destroy"]


def test_past_until_ends_at_once_and_close_ends_live() -> None:
    async def scenario() -> None:
        bus = EventBus()
        bus.publish(ev("container", "start"))
        async with bus.subscribe(since_nano=0, until_nano=time.time_ns()) as sub:
            assert [e.action async for e in sub] == ["start"]
        async with bus.subscribe() as sub:
            asyncio.get_running_loop().call_later(0.02, bus.close)
            assert [e.action async for e in sub] == []

    asyncio.run(scenario())


def test_slow_subscriber_is_dropped_not_blocking() -> None:
    async def scenario() -> None:
        bus = EventBus()
        async with bus.subscribe() as sub:
            for i in range(5000):
                bus.publish(ev("container", f"a{i}"))
            assert sub.overflowed
            assert len([e async for e in sub]) < 5000

    asyncio.run(scenario())
