"""Typed query parameters: each helper returns a Python value or raises InvalidArgument
(-> 400) with a message in Docker's style. Handlers never read `request.query` raw.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from multidict import MultiMapping

from skiff.errors import InvalidArgument

_TRUE = frozenset({"1", "t", "true"})
_FALSE = frozenset({"0", "f", "false"})


def query_str(query: MultiMapping[str], name: str, default: str = "") -> str:
    return query.get(name, default)


def query_bool(query: MultiMapping[str], name: str, default: bool = False) -> bool:
    """Go's strconv.ParseBool values (1/t/true/0/f/false, any case); empty means default."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise InvalidArgument(
        f'invalid value for {name}: strconv.ParseBool: parsing "{raw}": invalid syntax'
    )


def query_int(
    query: MultiMapping[str], name: str, default: int | None = None, *, minimum: int | None = None
) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        raise InvalidArgument(
            f'invalid value for {name}: strconv.Atoi: parsing "{raw}": invalid syntax'
        ) from None
    if minimum is not None and value < minimum:
        raise InvalidArgument(f"invalid value for {name}: {value} is below {minimum}")
    return value


def query_list(query: MultiMapping[str], name: str) -> list[str]:
    """A repeated parameter (`?type=image&type=volume`)."""
    return [v for v in query.getall(name, []) if v != ""]


def query_timestamp(query: MultiMapping[str], name: str) -> int | None:
    """A Docker timestamp ("seconds[.nanoseconds]", as the CLI sends it) in nanoseconds."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    return parse_timestamp(raw, name)


def parse_timestamp(raw: str, name: str = "timestamp") -> int:
    seconds, _, fraction = raw.strip().partition(".")
    neg = seconds.startswith("-")
    digits = seconds[1:] if neg else seconds
    if not digits.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 9:
        raise InvalidArgument(
            f'invalid value for {name}: strconv.ParseInt: parsing "{raw}": invalid syntax'
        )
    nanos = int(digits) * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))
    return -nanos if neg else nanos


def query_filters(
    query: MultiMapping[str], allowed: Iterable[str] | None = None, name: str = "filters"
) -> dict[str, list[str]]:
    """Docker's `filters` JSON, in either encoding clients send:

    map form (docker CLI):  {"type": {"container": true}, "label": {"a=b": true}}
    list form (older SDKs): {"type": ["container"], "label": ["a=b"]}

    With `allowed`, an unknown key is "invalid filter 'KEY'" as in dockerd.
    """
    raw = query.get(name)
    if raw is None or raw.strip() == "":
        return {}
    return parse_filters(raw, allowed)


def parse_filters(raw: str, allowed: Iterable[str] | None = None) -> dict[str, list[str]]:
    try:
        decoded = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid filter: {exc}") from None
    if not isinstance(decoded, dict):
        raise InvalidArgument("invalid filter: filters must be a JSON object")
    result: dict[str, list[str]] = {}
    for key, value in decoded.items():
        result[key] = _filter_values(key, value)
    if allowed is not None:
        permitted = set(allowed)
        for key in result:
            if key not in permitted:
                raise InvalidArgument(f"invalid filter '{key}'")
    return result


def _filter_values(key: str, value: object) -> list[str]:
    if isinstance(value, Mapping):
        out = []
        for item, enabled in value.items():
            if not isinstance(enabled, bool):
                raise InvalidArgument(f"invalid filter: value of '{key}' must map to booleans")
            if enabled:
                out.append(str(item))
        return out
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, str):
        return [value]
    raise InvalidArgument(f"invalid filter: bad value for '{key}'")
