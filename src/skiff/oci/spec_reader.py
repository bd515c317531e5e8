"""Read untrusted JSON into typed objects, naming the field on every error.

`Reader` wraps one JSON object and the dotted path that led to it, so a parser
says `process.user.uid: expected an integer, got "root"` instead of a KeyError.
It deliberately avoids `dataclasses` and `typing` at run time: the runtime
binary is started once per container operation and Python's start-up is the
budget (importing `dataclasses` alone costs more than the interpreter).
"""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")


class SpecError(ValueError):
    """A config document is not valid; `field` is the dotted path of the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Reader:
    """Typed access to one JSON object found at `path`."""

    __slots__ = ("data", "path")

    def __init__(self, data: object, path: str = "") -> None:
        if not isinstance(data, dict):
            raise SpecError(path, f"expected an object, got {_kind(data)}")
        self.data: dict[str, object] = data
        self.path = path

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def _get(self, key: str, required: bool) -> object:
        value = self.data.get(key)
        if value is None and required:
            raise SpecError(child_path(self.path, key), "is required")
        return value

    def text(self, key: str, default: str = "", required: bool = False) -> str:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise SpecError(child_path(self.path, key), f"expected a string, got {_kind(value)}")
        return value

    def opt_str(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def integer(
        self,
        key: str,
        default: int = 0,
        required: bool = False,
        lo: int | None = None,
        hi: int | None = None,
    ) -> int:
        value = self._get(key, required)
        if value is None:
            return default
        return check_int(value, child_path(self.path, key), lo, hi)

    def opt_int(self, key: str, lo: int | None = None, hi: int | None = None) -> int | None:
        return self.integer(key, lo=lo, hi=hi) if self.has(key) else None

    def flag(self, key: str, default: bool = False) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise SpecError(child_path(self.path, key), f"expected a boolean, got {_kind(value)}")
        return value

    def opt_bool(self, key: str) -> bool | None:
        return self.flag(key) if self.has(key) else None

    def obj(self, key: str, required: bool = False) -> Reader | None:
        value = self._get(key, required)
        if value is None:
            return None
        return Reader(value, child_path(self.path, key))

    def items(self, key: str, required: bool = False) -> list[tuple[str, object]]:
        """The items of an array with their paths, for the caller to parse."""
        value = self._get(key, required)
        if value is None:
            return []
        where = child_path(self.path, key)
        if not isinstance(value, list):
            raise SpecError(where, f"expected an array, got {_kind(value)}")
        return [(child_path(where, i), item) for i, item in enumerate(value)]

    def objs(self, key: str, parse: Callable[[Reader], T], required: bool = False) -> list[T]:
        return [parse(Reader(item, where)) for where, item in self.items(key, required)]

    def strs(self, key: str, required: bool = False) -> list[str]:
        out = []
        for where, item in self.items(key, required):
            if not isinstance(item, str):
                raise SpecError(where, f"expected a string, got {_kind(item)}")
            out.append(item)
        return out

    def ints(self, key: str, lo: int | None = None, hi: int | None = None) -> list[int]:
        return [check_int(item, where, lo, hi) for where, item in self.items(key)]

    def str_map(self, key: str) -> dict[str, str]:
        value = self._get(key, False)
        if value is None:
            return {}
        where = child_path(self.path, key)
        if not isinstance(value, dict):
            raise SpecError(where, f"expected an object, got {_kind(value)}")
        for k, v in value.items():
            if not isinstance(v, str):
                raise SpecError(child_path(where, k), f"expected a string, got {_kind(v)}")
        return dict(value)

    def enum(
        self,
        key: str,
        allowed: frozenset[str] | tuple[str, ...],
        required: bool = False,
        default: str = "",
    ) -> str:
        value = self.text(key, default=default, required=required)
        if value == default and not required:
            return value
        if value not in allowed:
            raise SpecError(
                child_path(self.path, key),
                f"{value!r} is not one of {', '.join(sorted(allowed))}",
            )
        return value


def check_int(value: object, where: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        # JSON numbers like 1.0 are integers to a Go decoder; accept exact floats too.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise SpecError(where, f"expected an integer, got {_kind(value)}")
    if lo is not None and value < lo:
        raise SpecError(where, f"{value} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise SpecError(where, f"{value} is above the maximum {hi}")
    return value


INT64 = (-(2**63), 2**63 - 1)
UINT64 = (0, 2**64 - 1)
UINT32 = (0, 2**32 - 1)
INT32 = (-(2**31), 2**31 - 1)
