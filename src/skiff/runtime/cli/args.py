"""A small flag parser with runc's conventions, cheaper to import than argparse.

Flags are `--name value`, `--name=value` or `-n value`; booleans take no value
(or `=true`/`=false`); `--` ends the flags. Unknown flags are errors.
"""

from __future__ import annotations

from skiff.errors import InvalidArgument


class Flag:
    __slots__ = ("boolean", "default", "names", "repeat")

    def __init__(
        self, *names: str, boolean: bool = False, repeat: bool = False, default: str = ""
    ) -> None:
        self.names = names
        self.boolean = boolean
        self.repeat = repeat
        self.default = default


class Parsed:
    __slots__ = ("args", "values")

    def __init__(self) -> None:
        self.values: dict[str, list[str]] = {}
        self.args: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        got = self.values.get(name)
        return got[-1] if got else default

    def opt(self, name: str) -> str | None:
        got = self.values.get(name)
        return got[-1] if got else None

    def all(self, name: str) -> list[str]:
        return self.values.get(name, [])

    def flag(self, name: str) -> bool:
        return self.text(name, "false") == "true"

    def number(self, name: str, default: int = 0) -> int:
        text = self.opt(name)
        if text is None:
            return default
        try:
            return int(text)
        except ValueError:
            raise InvalidArgument(f"invalid value {text!r} for flag --{name}") from None


def parse(argv: list[str], flags: list[Flag], stop_at_first_arg: bool = False) -> Parsed:
    """Parse flags anywhere among the arguments (runc/urfave style allows both)."""
    table: dict[str, Flag] = {}
    for flag in flags:
        for name in flag.names:
            table[name] = flag
    out = Parsed()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            out.args.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            out.args.append(arg)
            if stop_at_first_arg:
                out.args.extend(argv[i:])
                break
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        found = table.get(name)
        if found is None:
            raise InvalidArgument(f"flag provided but not defined: {arg.split('=')[0]}")
        flag = found
        key = flag.names[0]
        if flag.boolean:
            if eq and value not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid boolean value {value!r} for flag {arg}")
            value = "false" if eq and value in ("false", "0") else "true"
        elif not eq:
            if i >= len(argv):
                raise InvalidArgument(f"flag needs an argument: {arg}")
            value = argv[i]
            i += 1
        if flag.repeat:
            out.values.setdefault(key, []).append(value)
        else:
            out.values[key] = [value]
    return out
