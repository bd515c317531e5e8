"""The Docker Engine API edge of skiffd.

    registry.py   Route, ApiRegistry: where resources register route tables and providers
    app.py        the aiohttp application: one wrapper around every handler
    errors.py     the one table from skiff.errors categories to HTTP statuses
    query.py      typed query parsing (bools, ints, timestamps, `filters`) -> 400 on bad input
    streams.py    JSON-lines progress streams with in-band errors
    framing.py    Docker's 8-byte multiplexed stdout/stderr framing (pure; the client uses it)
    hijack.py     `Upgrade: tcp` connection hijack for attach and exec
    system.py     /_ping, /version, /info, /events, /system/df

Only this package knows Docker's CamelCase JSON. This __init__ imports nothing, so the
client can use skiff.api.framing without loading aiohttp.
"""
