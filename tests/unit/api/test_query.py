from __future__ import annotations

import pytest
from multidict import MultiDict

from skiff.api.query import (
    parse_filters,
    parse_timestamp,
    query_bool,
    query_filters,
    query_int,
    query_list,
)
from skiff.errors import InvalidArgument


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("True", True), ("0", False), ("false", False), ("", False)],
)
def test_bool(raw: str, expected: bool) -> None:
    assert query_bool(MultiDict({"all": raw}), "all") is expected


def test_bool_default_and_bad_value() -> None:
    assert query_bool(MultiDict(), "all", default=True) is True
    with pytest.raises(InvalidArgument, match=r'invalid value for all: .*"yes please"'):
        query_bool(MultiDict({"all": "yes please"}), "all")


def test_int() -> None:
    assert query_int(MultiDict({"t": "10"}), "t") == 10
    assert query_int(MultiDict(), "t", 3) == 3
    with pytest.raises(InvalidArgument, match=r'strconv\.Atoi: parsing "ten"'):
        query_int(MultiDict({"t": "ten"}), "t")
    with pytest.raises(InvalidArgument, match="below 0"):
        query_int(MultiDict({"t": "-1"}), "t", minimum=0)


def test_list() -> None:
    q: MultiDict[str] = MultiDict([("type", "image"), ("type", "volume"), ("type", "")])
    assert query_list(q, "type") == ["image", "volume"]


def test_filters_map_form_as_the_docker_cli_sends() -> None:
    raw = '{"type":{"container":true},"label":{"a=b":true,"c":false}}'
    assert parse_filters(raw) == {"type": ["container"], "label": ["a=b"]}


def test_filters_list_form() -> None:
    assert parse_filters('{"event":["start","die"]}') == {"event": ["start", "die"]}


def test_filters_empty_and_absent() -> None:
    assert query_filters(MultiDict(), ["type"]) == {}
    assert query_filters(MultiDict({"filters": ""}), ["type"]) == {}
    assert query_filters(MultiDict({"filters": "{}"}), ["type"]) == {}


@pytest.mark.parametrize("raw", ["{not json", "[1,2]", '{"type": 3}', '{"type": {"a": "yes"}}'])
def test_filters_malformed(raw: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid filter"):
        parse_filters(raw)


def test_filters_unknown_key() -> None:
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        parse_filters('{"colour":["red"]}', allowed=["type"])


def test_timestamps() -> None:
    assert parse_timestamp("1700000000") == 1_700_000_000_000_000_000
    assert parse_timestamp("1700000000.5") == 1_700_000_000_500_000_000
    assert parse_timestamp("1700000000.000000001") == 1_700_000_000_000_000_001
    for bad in ("abc", "1.2.3", "1.x", "1.0000000001"):
        with pytest.raises(InvalidArgument):
            parse_timestamp(bad)
